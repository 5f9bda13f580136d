/**
 * The regtoken stack: one {@link RegistryTokenMinter}, its signing roots, an optional alarm
 * e-mail topic and optional GitHub roles for a config repository, with the outputs a first
 * deployment needs (docs/deploy.md). {@link propsFromContext} reads its settings from CDK
 * context (`-c name=value` or cdk.json), so a deployment needs no code change.
 */

import {
  CfnOutput,
  Duration,
  aws_iam as iam,
  type aws_kms as kms,
  Stack,
  type StackProps,
  aws_s3 as s3,
  aws_sns as sns,
  aws_sns_subscriptions as subscriptions,
} from 'aws-cdk-lib';
import type { Construct, Node } from 'constructs';
import { formatDuration, parseDuration } from '../lambda/core/duration.js';
import { parsePrincipal } from '../lambda/core/principal.js';
import { GitHubConfigRoles } from './github.js';
import { createRootKey, type FanOutOptions, RegistryTokenMinter } from './minter.js';

/** Settings of {@link RegtokenStack}. */
export interface RegtokenStackProps extends StackProps {
  /**
   * How often every token is re-minted.
   * @default Duration.hours(1)
   */
  readonly schedule?: Duration;
  /**
   * The shortest token lifetime in the grants (see {@link RegistryTokenMinter}).
   * @default - from `grantsFile`; required without it
   */
  readonly minTokenTtl?: Duration;
  /**
   * A grants file deployed with the stack.
   * @default - none: a config repository uploads the grants
   */
  readonly grantsFile?: string;
  /**
   * The function's timeout.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Mint through a Step Functions workflow that fans out over shards of principals (see
   * {@link RegistryTokenMinter}); for more principals than one function carries.
   * @default - off: one function mints every token
   */
  readonly fanOut?: FanOutOptions;
  /**
   * Labels of the signing roots this stack keeps (letters and digits). Each label is one KMS
   * key; the key of a label removed from the list is retained, not deleted.
   * @default ['1']
   */
  readonly rootKeys?: readonly string[];
  /**
   * The label of the root that signs; the other roots stay trusted (in the trust bundle).
   * @default - the first of `rootKeys`
   */
  readonly signingKey?: string;
  /**
   * ARN of a role that administers the root keys, next to the CDK deployment role; it cannot
   * sign. The role must exist when the stack is deployed (KMS refuses a policy naming an
   * unknown principal).
   * @default - only the deployment role
   */
  readonly keyAdminRoleArn?: string;
  /**
   * An e-mail address subscribed to the alarms.
   * @default - alarms without actions
   */
  readonly alarmEmail?: string;
  /**
   * The GitHub config repository (`OWNER/NAME`) whose workflow plans and uploads the grants.
   * @default - no GitHub roles
   */
  readonly githubRepository?: string;
  /**
   * The account's existing GitHub OIDC provider ARN.
   * @default - a new provider is created (an account holds only one)
   */
  readonly githubOidcProviderArn?: string;
  /**
   * The Distribution registry's S3 storage bucket, for expanding wildcard patterns.
   * @default - none
   */
  readonly registryBucket?: string;
  /**
   * The registry's `storage.s3.rootdirectory` inside `registryBucket`.
   * @default ''
   */
  readonly registryPrefix?: string;
  /**
   * Role or user ARNs the token bucket policy also treats as minters (break glass).
   * @default - none
   */
  readonly additionalMinterArns?: readonly string[];
  /**
   * Serve the registry's token endpoint from a Lambda function URL (output `RealmUrl`).
   * @default false
   */
  readonly realm?: boolean;
  /**
   * The registry's `auth.token.service`, for the token endpoint.
   * @default - `registry.service` of `grantsFile`; required with `realm` and no `grantsFile`
   */
  readonly realmService?: string;
  /**
   * The registry's `auth.token.issuer`, for the token endpoint.
   * @default - `registry.issuer` of `grantsFile`; required with `realm` and no `grantsFile`
   */
  readonly realmIssuer?: string;
  /**
   * Record who reads tokens with a dedicated CloudTrail trail (S3 data events of `tokens/`,
   * output `TokenReadsLogGroupName`).
   * @default false
   */
  readonly recordTokenReads?: boolean;
}

/** Shortest token lifetime assumed when none is given: a grants file's default `tokenTtl`. */
export const DEFAULT_MIN_TOKEN_TTL = '12h';

const LABEL_RE = /^[A-Za-z0-9]+$/;

/** The stack the app deploys: see the module comment. */
export class RegtokenStack extends Stack {
  readonly minter: RegistryTokenMinter;
  /** The signing roots by label. */
  readonly rootKeys: ReadonlyMap<string, kms.Key>;
  readonly github?: GitHubConfigRoles;

  constructor(scope: Construct, id: string, props: RegtokenStackProps = {}) {
    super(scope, id, {
      description: 'regtoken: keyless, IAM-based registry tokens',
      ...props,
    });
    const labels = props.rootKeys ?? ['1'];
    if (labels.length === 0) throw new Error('RegtokenStack: rootKeys must name at least one key');
    for (const label of labels)
      if (!LABEL_RE.test(label))
        throw new Error(`RegtokenStack: root key label "${label}" must be letters and digits`);
    if (new Set(labels).size !== labels.length)
      throw new Error(`RegtokenStack: rootKeys lists a label twice: ${labels.join(',')}`);
    const signing = props.signingKey ?? labels[0];
    if (signing === undefined || !labels.includes(signing))
      throw new Error(
        `RegtokenStack: signingKey "${signing}" is not one of rootKeys (${labels.join(',')})`,
      );
    const keys = new Map<string, kms.Key>();
    const keyAdmin = props.keyAdminRoleArn;
    if (keyAdmin !== undefined) {
      const parsed = parsePrincipal(keyAdmin);
      if (!parsed.ok || parsed.value.type !== 'role')
        throw new Error(`RegtokenStack: keyAdminRoleArn must be a role ARN: ${keyAdmin}`);
    }
    const keyAdmins = keyAdmin
      ? [iam.Role.fromRoleArn(this, 'KeyAdminRole', keyAdmin, { mutable: false })]
      : [];
    for (const label of labels) keys.set(label, createRootKey(this, `RootKey${label}`, keyAdmins));
    this.rootKeys = keys;

    let alarmTopic: sns.Topic | undefined;
    if (props.alarmEmail) {
      alarmTopic = new sns.Topic(this, 'Alarms', {
        displayName: 'regtoken alarms',
        enforceSSL: true,
      });
      alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const additionalMinters = (props.additionalMinterArns ?? []).map((arn, i) => {
      const parsed = parsePrincipal(arn);
      if (!parsed.ok) throw new Error(`RegtokenStack: additionalMinterArns: ${parsed.reason}`);
      return parsed.value.type === 'role'
        ? iam.Role.fromRoleArn(this, `AdditionalMinter${i}`, arn, { mutable: false })
        : iam.User.fromUserArn(this, `AdditionalMinter${i}`, arn);
    });

    this.minter = new RegistryTokenMinter(this, 'Minter', {
      ...(props.schedule ? { schedule: props.schedule } : {}),
      ...(props.minTokenTtl ? { minTokenTtl: props.minTokenTtl } : {}),
      ...(props.grantsFile ? { grantsFile: props.grantsFile } : {}),
      ...(props.timeout ? { timeout: props.timeout } : {}),
      ...(props.fanOut ? { fanOut: props.fanOut } : {}),
      signingKey: keys.get(signing) as kms.Key,
      trustedKeys: labels.filter((l) => l !== signing).map((l) => keys.get(l) as kms.Key),
      ...(alarmTopic ? { alarmTopic } : {}),
      ...(props.registryBucket
        ? {
            registryStorage: {
              bucket: s3.Bucket.fromBucketName(this, 'RegistryBucket', props.registryBucket),
              prefix: props.registryPrefix ?? '',
            },
          }
        : {}),
      additionalMinters,
      ...(props.realm
        ? {
            realm: {
              ...(props.realmService ? { service: props.realmService } : {}),
              ...(props.realmIssuer ? { issuer: props.realmIssuer } : {}),
            },
          }
        : {}),
      ...(props.recordTokenReads ? { recordTokenReads: {} } : {}),
    });

    if (props.githubRepository) {
      this.github = new GitHubConfigRoles(this, 'GitHub', {
        minter: this.minter,
        repository: props.githubRepository,
        ...(props.githubOidcProviderArn
          ? {
              oidcProvider: iam.OidcProviderNative.fromOidcProviderArn(
                this,
                'GitHubProvider',
                props.githubOidcProviderArn,
              ),
            }
          : {}),
      });
      new CfnOutput(this, 'GitHubPlanRoleArn', {
        description: 'Config repository variable REGTOKEN_PLAN_ROLE_ARN',
        value: this.github.planRole.roleArn,
      });
      new CfnOutput(this, 'GitHubUploadRoleArn', {
        description: 'Config repository variable REGTOKEN_UPLOAD_ROLE_ARN',
        value: this.github.uploadRole.roleArn,
      });
    }

    this.addOutputs(keys, signing);
  }

  /** The outputs a first deployment needs (docs/deploy.md). */
  private addOutputs(keys: ReadonlyMap<string, kms.Key>, signing: string): void {
    const m = this.minter;
    new CfnOutput(this, 'ConfigBucketName', {
      description: 'Config repository variable REGTOKEN_CONFIG_BUCKET',
      value: m.configBucket.bucketName,
    });
    new CfnOutput(this, 'Schedule', {
      description: 'Config repository variable REGTOKEN_SCHEDULE (how often tokens are re-minted)',
      value: formatDuration(m.period.toSeconds()),
    });
    new CfnOutput(this, 'ConfigObject', {
      description: 'Upload the grants file here; each upload mints at once',
      value: m.configUrl,
    });
    new CfnOutput(this, 'TokenBucketName', { value: m.tokenBucket.bucketName });
    new CfnOutput(this, 'TrustBundle', {
      description:
        "The registry's auth.token.rootcertbundle (restart the registry when it changes)",
      value: m.trustBundleUrl,
    });
    new CfnOutput(this, 'SigningKeyArn', {
      description: `The signing root (label ${signing})`,
      value: m.signingKey.keyArn,
    });
    for (const [label, key] of keys)
      new CfnOutput(this, `RootKey${label}Arn`, {
        description: `Root key "${label}"${label === signing ? ' (signing)' : ' (trusted)'}`,
        value: key.keyArn,
      });
    if (m.realm)
      new CfnOutput(this, 'RealmUrl', {
        description: "The registry's auth.token.realm: regtoken's token endpoint",
        value: m.realm.url,
      });
    if (m.tokenReads?.logGroup)
      new CfnOutput(this, 'TokenReadsLogGroupName', {
        description: 'CloudTrail events of token reads: who fetched which token (Logs Insights)',
        value: m.tokenReads.logGroup.logGroupName,
      });
    new CfnOutput(this, 'FunctionName', {
      ...(m.fanOut ? { description: "The workflow's plan step" } : {}),
      value: m.function.functionName,
    });
    new CfnOutput(this, 'LogGroupName', {
      description: m.fanOut
        ? "The plan step's logs (aws logs tail); the workers log to ShardLogGroupName"
        : "The function's logs (aws logs tail)",
      value: m.logGroup.logGroupName,
    });
    if (m.fanOut) {
      new CfnOutput(this, 'StateMachineArn', {
        description: 'The mint workflow (aws stepfunctions start-execution to mint now)',
        value: m.fanOut.stateMachine.stateMachineArn,
      });
      new CfnOutput(this, 'ShardLogGroupName', {
        description: "The shard workers' logs",
        value: m.fanOut.shard.logGroup.logGroupName,
      });
    }
    new CfnOutput(this, 'FailedInvocationsQueueUrl', {
      description: 'Invocations that failed after retries',
      value: m.deadLetterQueue.queueUrl,
    });
  }
}

/**
 * `fanOut=true` turns the workflow on; `shardSize` and `maxConcurrency` (whole numbers) and
 * `fanOutTimeout` (a duration) set it, and are refused without it.
 */
function fanOutFromContext(
  text: (name: string) => string | undefined,
  flag: (name: string) => boolean | undefined,
): FanOutOptions | undefined {
  const whole = (name: string): number | undefined => {
    const v = text(name);
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v)) throw new Error(`context ${name}="${v}" is not a whole number`);
    return Number(v);
  };
  const shardSize = whole('shardSize');
  const maxConcurrency = whole('maxConcurrency');
  const timeoutText = text('fanOutTimeout');
  const timeout = timeoutText === undefined ? undefined : parseDuration(timeoutText);
  if (timeout === 0 || (timeoutText !== undefined && !timeout))
    throw new Error(`context fanOutTimeout="${timeoutText}" is not a duration like 1h or 90m`);
  const on = flag('fanOut');
  const given = [
    ['shardSize', shardSize],
    ['maxConcurrency', maxConcurrency],
    ['fanOutTimeout', timeout],
  ].filter(([, v]) => v !== undefined);
  if (!on) {
    if (given.length > 0)
      throw new Error(`context ${given.map(([n]) => n).join(', ')} needs fanOut=true`);
    return undefined;
  }
  return {
    ...(shardSize === undefined ? {} : { shardSize }),
    ...(maxConcurrency === undefined ? {} : { maxConcurrency }),
    ...(timeout ? { timeout: Duration.seconds(timeout) } : {}),
  };
}

/**
 * Stack settings from CDK context, each a string as given with `-c name=value` or in cdk.json:
 * `grantsFile`, `minTokenTtl`, `schedule`, `timeout` (durations like 1h, 90m), `rootKeys`
 * (comma-separated labels), `signingKey`, `keyAdminRole` (a role ARN), `alarmEmail`, `githubRepository`,
 * `githubOidcProviderArn`, `registryBucket`, `registryPrefix`, `additionalMinterArns`
 * (comma-separated), `realm` (`true` for the token endpoint), `realmService`, `realmIssuer`,
 * `recordTokenReads` (`true` for a trail of token reads), `fanOut` (`true` for the Step
 * Functions workflow) with `shardSize`, `maxConcurrency` and `fanOutTimeout`. Without
 * `grantsFile` and `minTokenTtl`, the shortest lifetime is assumed to be
 * {@link DEFAULT_MIN_TOKEN_TTL}.
 */
export function propsFromContext(node: Node): RegtokenStackProps {
  const text = (name: string): string | undefined => {
    const v = node.tryGetContext(name);
    if (v === undefined || v === null) return undefined;
    const s = String(v).trim();
    return s === '' ? undefined : s;
  };
  const duration = (name: string): Duration | undefined => {
    const v = text(name);
    if (v === undefined) return undefined;
    const seconds = parseDuration(v);
    if (!seconds) throw new Error(`context ${name}="${v}" is not a duration like 1h or 90m`);
    return Duration.seconds(seconds);
  };
  const list = (name: string): string[] | undefined =>
    text(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const flag = (name: string): boolean | undefined => {
    const v = text(name);
    if (v === undefined) return undefined;
    if (v === 'true' || v === 'false') return v === 'true';
    throw new Error(`context ${name}="${v}" must be true or false`);
  };
  const grantsFile = text('grantsFile');
  const minTokenTtl =
    duration('minTokenTtl') ??
    (grantsFile ? undefined : Duration.seconds(parseDuration(DEFAULT_MIN_TOKEN_TTL) ?? 0));
  const props: Record<string, unknown> = {
    grantsFile,
    minTokenTtl,
    schedule: duration('schedule'),
    timeout: duration('timeout'),
    rootKeys: list('rootKeys'),
    signingKey: text('signingKey'),
    keyAdminRoleArn: text('keyAdminRole'),
    alarmEmail: text('alarmEmail'),
    githubRepository: text('githubRepository'),
    githubOidcProviderArn: text('githubOidcProviderArn'),
    registryBucket: text('registryBucket'),
    registryPrefix: text('registryPrefix'),
    additionalMinterArns: list('additionalMinterArns'),
    realm: flag('realm'),
    fanOut: fanOutFromContext(text, flag),
    realmService: text('realmService'),
    realmIssuer: text('realmIssuer'),
    recordTokenReads: flag('recordTokenReads'),
  };
  return Object.fromEntries(
    Object.entries(props).filter(([, v]) => v !== undefined),
  ) as RegtokenStackProps;
}
