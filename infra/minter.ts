/**
 * The `RegistryTokenMinter` construct: everything one regtoken deployment needs on AWS. Its
 * parts are in infra/minter/, one file each:
 *
 * - buckets.ts: a config bucket holding the grants file (versioned, private, TLS only), and a
 *   token bucket (Block Public Access, SSE-S3, no versioning, retained) whose bucket policy
 *   belongs to the function, which rebuilds it from the grants on every run
 *   (lambda/core/policy.ts), so CDK never defines one;
 * - signing-root.ts: an ECC_NIST_P256 SIGN_VERIFY KMS key that only the function may use;
 * - function.ts: the function (lambda/handler.ts, bundled by local esbuild) with its role, logs
 *   and SQS failure destination, and its triggers (an EventBridge Scheduler schedule and an S3
 *   notification on the grants object);
 * - settings.ts: one least-privilege statement per environment variable, set side by side;
 * - alarms.ts: four CloudWatch alarms;
 * - realm.ts: the optional token endpoint (the registry's `realm`) as a Lambda function URL;
 * - token-reads.ts: the optional CloudTrail data events of token reads (who fetched which token);
 * - checks.ts: what synth checks first (names, schedule, token lifetimes against it);
 * - support-functions.ts: cdk-nag acknowledgements for CDK's own deploy-time functions.
 *
 * This module keeps the construct's props, its public members and the grant helpers. The parts
 * create their resources in this construct's scope, so construct paths and logical IDs are
 * those of one construct (test/infra/logical-ids.test.ts).
 *
 * See docs/deploy.md for the deployment paths this supports.
 */

import {
  type aws_cloudwatch as cloudwatch,
  Duration,
  aws_iam as iam,
  type aws_kms as kms,
  type aws_logs as logs,
  type aws_lambda_nodejs as nodejs,
  type aws_s3 as s3,
  type aws_scheduler as scheduler,
  type aws_sns as sns,
  type aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { parseGrantsSync } from '../lambda/core/config-positions.js';
import { parsePrincipal, tokenKey } from '../lambda/core/principal.js';
import { createAlarms, serviceNameOf } from './minter/alarms.js';
import { createBuckets } from './minter/buckets.js';
import {
  checkConfigKey,
  checkLifetimes,
  checkPrefix,
  checkSchedule,
  under,
} from './minter/checks.js';
import { createFanOut, type FanOut, type FanOutOptions, fanOutSettings } from './minter/fan-out.js';
import { bindFanOutSettings } from './minter/fan-out-settings.js';
import { createFunction, createTriggers, deployGrants } from './minter/function.js';
import { ownPrincipal, principalArn } from './minter/principals.js';
import { createRealm, type Realm, type RealmOptions } from './minter/realm.js';
import { bindSettings, type SettingsSource } from './minter/settings.js';
import { createRootKey } from './minter/signing-root.js';
import { acknowledgeSupportFunctions } from './minter/support-functions.js';
import { recordTokenReads, type TokenReads, type TokenReadsOptions } from './minter/token-reads.js';

export { METRICS_NAMESPACE, serviceNameOf } from './minter/alarms.js';
export { LIFETIME_MARGIN, lifetimeProblem, shortestLifetime } from './minter/checks.js';
export type { FanOut, FanOutFunction, FanOutOptions } from './minter/fan-out.js';
export type { Realm, RealmOptions } from './minter/realm.js';
export { createRootKey } from './minter/signing-root.js';
export type { TokenReads, TokenReadsOptions } from './minter/token-reads.js';

/** Log levels the Powertools logger accepts in POWERTOOLS_LOG_LEVEL. */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Where a Distribution registry keeps its images in S3 (its `storage.s3` settings). */
export interface RegistryStorage {
  /** The registry's storage bucket (`storage.s3.bucket`). */
  readonly bucket: s3.IBucket;
  /**
   * The registry's `storage.s3.rootdirectory`, without leading or trailing slash.
   * @default '' (the bucket root)
   */
  readonly prefix?: string;
}

/** Settings of a {@link RegistryTokenMinter}. */
export interface RegistryTokenMinterProps {
  /**
   * How often every token is re-minted. Whole minutes. A config upload also mints at once.
   * @default Duration.hours(1)
   */
  readonly schedule?: Duration;
  /**
   * The shortest token lifetime the grants use (the smallest `ttl`, or `tokenTtl` when a
   * principal has none). Synth fails when it is shorter than 2 × `schedule` + margin, so one
   * failed run never lets a token expire before its replacement is written.
   * @default - the shortest lifetime in `grantsFile`; required when `grantsFile` is not set
   */
  readonly minTokenTtl?: Duration;
  /**
   * A grants file in this repository, validated at synth and uploaded to the config bucket
   * with the stack. Leave it out when a config repository uploads the grants (its CI).
   * @default - none: the grants object is uploaded by someone else
   */
  readonly grantsFile?: string;
  /**
   * Key of the grants object in the config bucket.
   * @default 'grants.yaml'
   */
  readonly configKey?: string;
  /**
   * Key prefix of everything regtoken writes to the token bucket (tokens/, trust/, state/).
   * @default '' (the bucket root)
   */
  readonly tokenPrefix?: string;
  /**
   * The signing root. A key defined in the same app (use {@link createRootKey}) gets key
   * policy statements that let this function, and nobody else, sign; for an imported key, its
   * owner must allow the function's role `kms:Sign` and `kms:GetPublicKey`.
   * @default - a new key made by {@link createRootKey}
   */
  readonly signingKey?: kms.IKey;
  /**
   * Older (or next) roots that stay in the trust bundle, for rotating the signing key without
   * a gap (docs/deploy.md, "Rotating the root"). Same key policy rules as `signingKey`.
   * @default - none
   */
  readonly trustedKeys?: readonly kms.IKey[];
  /**
   * A role that administers the signing key this construct creates, next to the role that
   * deploys the stack (docs/aws.md, "Who administers the key"). Neither can sign.
   * @default - only the deployment role
   */
  readonly keyAdminRole?: iam.IRole;
  /**
   * The registry's S3 storage, so wildcard patterns (`team-a/*`) are expanded against the
   * repositories that exist.
   * @default - no inventory: wildcard patterns grant nothing
   */
  readonly registryStorage?: RegistryStorage;
  /**
   * Roles or users besides the function that the token bucket policy treats as minters:
   * exempt from its Denies, so they can repair or inspect the bucket (break glass). They get no
   * permissions from this construct.
   * @default - only the function
   */
  readonly additionalMinters?: readonly (iam.IRole | iam.IUser)[];
  /**
   * The function's timeout; the run lock's lease is this plus one minute. With `fanOut`, the
   * timeout of each of the workflow's functions.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * The function's memory, in MiB. With `fanOut`, the plan step's (the workers have 1024, the
   * finish step 512).
   * @default 512; 2048 for the plan step of `fanOut`
   */
  readonly memorySize?: number;
  /**
   * Mint through a Step Functions workflow instead of one function: a plan step, a Distributed
   * Map of shard workers (one account per shard, split at `shardSize`) and a finish step, for
   * more principals than one function carries (docs/aws.md, "Fan-out"). The schedule and the
   * grants upload start an execution; `function` is then the plan step's.
   * @default - off: one function mints every token
   */
  readonly fanOut?: FanOutOptions;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The function's log level (POWERTOOLS_LOG_LEVEL).
   * @default 'INFO'
   */
  readonly logLevel?: LogLevel;
  /**
   * Where the alarms notify (alarm and OK transitions).
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Bucket receiving S3 server access logs of the config and token buckets: who read which
   * token, who uploaded which grants.
   * @default - a new bucket (retained; logs expire after one year)
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Serve the registry's token endpoint (its `auth.token.realm`) from a Lambda function URL,
   * so `docker login`, containerd and Kubernetes nodes can use regtoken tokens as passwords
   * (docs/registry.md, "The token endpoint"). Its URL is {@link RegistryTokenMinter.realm}.
   * @default - no token endpoint
   */
  readonly realm?: RealmOptions;
  /**
   * Record who reads tokens: CloudTrail S3 data events (read-only) for the token bucket's
   * `tokens/` prefix, on the given trail or on a dedicated one with a CloudWatch log group to
   * query (docs/aws.md, "Who read which token"). CloudTrail bills data events per event.
   * @default - not recorded (the S3 server access logs still are)
   */
  readonly recordTokenReads?: TokenReadsOptions;
}

/**
 * A complete regtoken deployment: buckets, signing root, the scheduled function, its
 * triggers, failure destination and alarms. Grant helpers give readers exactly the
 * identity-side permission they need.
 */
export class RegistryTokenMinter extends Construct {
  /** Holds the grants object; versioned, so every uploaded config stays recoverable. */
  readonly configBucket: s3.Bucket;
  /** Holds tokens, the trust bundle and the run lock; its policy is written by the function. */
  readonly tokenBucket: s3.Bucket;
  /** The key tokens are currently certified with. */
  readonly signingKey: kms.IKey;
  /** The minting function; with `fanOut`, the workflow's plan step. */
  readonly function: nodejs.NodejsFunction;
  /** The function's execution role (a minter principal of the token bucket policy). */
  readonly role: iam.Role;
  /** The function's log group. */
  readonly logGroup: logs.LogGroup;
  /** Receives invocations (with `fanOut`: workflow starts) that failed after their retries. */
  readonly deadLetterQueue: sqs.Queue;
  /** With `fanOut`: the workflow, its functions and its alarms. */
  readonly fanOut?: FanOut;
  /** The schedule that re-mints every token. */
  readonly schedule: scheduler.Schedule;
  /** How often the schedule re-mints every token. */
  readonly period: Duration;
  /** A run failed: the function errored (RunsFailed or Lambda Errors). */
  readonly failedRunsAlarm: cloudwatch.Alarm;
  /** No run succeeded during two schedule periods. */
  readonly noSuccessfulRunAlarm: cloudwatch.Alarm;
  /** Some principal in the grants does not exist in IAM, so it got no token. */
  readonly unknownPrincipalsAlarm: cloudwatch.Alarm;
  /** Some token lifetime in the grants is shorter than 2 × schedule + margin. */
  readonly shortLifetimesAlarm: cloudwatch.Alarm;
  /** S3 refused some accounts of the grants in the bucket policy; they were left out. */
  readonly policyAccountsLeftOutAlarm: cloudwatch.Alarm;
  /** The signing root's certificate expires within a year. */
  readonly rootCertificateExpiringAlarm: cloudwatch.Alarm;
  /** The token endpoint, when the `realm` prop asks for one. */
  readonly realm?: Realm;
  /** The trail recording token reads, when the `recordTokenReads` prop asks for it. */
  readonly tokenReads?: TokenReads;
  /** Key of the grants object in the config bucket. */
  readonly configKey: string;
  /** `s3://CONFIG_BUCKET/KEY` of the grants object (REGTOKEN_CONFIG). */
  readonly configUrl: string;
  /** `s3://TOKEN_BUCKET[/PREFIX]` (REGTOKEN_OUT). */
  readonly tokenStoreUrl: string;
  /** `s3://TOKEN_BUCKET/[PREFIX/]trust/bundle.pem`: the registry's `auth.token.rootcertbundle`. */
  readonly trustBundleUrl: string;

  private readonly tokenPrefix: string;

  constructor(scope: Construct, id: string, props: RegistryTokenMinterProps = {}) {
    super(scope, id);
    const period = props.schedule ?? Duration.hours(1);
    this.period = period;
    const timeout = props.timeout ?? Duration.minutes(5);
    this.configKey = props.configKey ?? 'grants.yaml';
    this.tokenPrefix = checkPrefix('tokenPrefix', props.tokenPrefix ?? '');
    checkConfigKey(this.configKey);

    // Token lifetime vs. schedule, checked before anything is built. A fanned-out run may take
    // as long as its execution's timeout before it writes.
    const fanOut = props.fanOut ? fanOutSettings(props.fanOut) : undefined;
    checkSchedule(period, timeout);
    const grantsText = checkLifetimes(props, period, fanOut ? fanOut.timeout : timeout);

    const buckets = createBuckets(this, props.accessLogsBucket);
    this.configBucket = buckets.configBucket;
    this.tokenBucket = buckets.tokenBucket;

    this.signingKey =
      props.signingKey ??
      createRootKey(this, 'SigningKey', props.keyAdminRole ? [props.keyAdminRole] : []);
    const trustedKeys = props.trustedKeys ?? [];

    this.configUrl = `s3://${this.configBucket.bucketName}/${this.configKey}`;
    this.tokenStoreUrl = `s3://${this.tokenBucket.bucketName}${this.tokenPrefix ? `/${this.tokenPrefix}` : ''}`;
    this.trustBundleUrl = `s3://${this.tokenBucket.bucketName}/${under(this.tokenPrefix)}trust/bundle.pem`;
    const grantsObject = { bucket: this.configBucket, key: this.configKey };
    const settings: Omit<SettingsSource, 'minterArns'> = {
      configBucket: this.configBucket,
      configKey: this.configKey,
      configUrl: this.configUrl,
      tokenBucket: this.tokenBucket,
      tokenPrefix: this.tokenPrefix,
      tokenStoreUrl: this.tokenStoreUrl,
      signingKey: this.signingKey,
      trustedKeys,
      ...(props.registryStorage ? { registryStorage: props.registryStorage } : {}),
      timeout,
      period,
      logLevel: props.logLevel ?? 'INFO',
      serviceName: serviceNameOf(this),
    };
    const minting = createMinting(this, {
      props,
      fanOut,
      settings,
      grants: grantsObject,
      additionalMinters: (props.additionalMinters ?? []).map(principalArn),
    });
    this.fanOut = minting.fanOut;
    this.function = minting.function;
    this.role = minting.role;
    this.logGroup = minting.logGroup;
    this.deadLetterQueue = minting.deadLetterQueue;
    this.schedule = minting.schedule;
    if (grantsText !== undefined) deployGrants(this, grantsObject, grantsText);
    const alarms = createAlarms(this, this.function, period, props.alarmTopic);
    this.failedRunsAlarm = alarms.failedRuns;
    this.noSuccessfulRunAlarm = alarms.noSuccessfulRun;
    this.unknownPrincipalsAlarm = alarms.unknownPrincipals;
    this.shortLifetimesAlarm = alarms.shortLifetimes;
    this.policyAccountsLeftOutAlarm = alarms.policyAccountsLeftOut;
    this.rootCertificateExpiringAlarm = alarms.rootCertificateExpiring;
    if (props.realm) {
      const registry =
        grantsText === undefined ? undefined : parseGrantsSync(grantsText, 'grantsFile').registry;
      const service = props.realm.service ?? registry?.service;
      const issuer = props.realm.issuer ?? registry?.issuer;
      if (!service || !issuer)
        throw new Error(
          "RegistryTokenMinter: realm needs service and issuer (the registry's auth.token.service and auth.token.issuer), or a grantsFile to take them from",
        );
      this.realm = createRealm(this, {
        service,
        issuer,
        tokenBucket: this.tokenBucket,
        under: under(this.tokenPrefix),
        tokenStoreUrl: this.tokenStoreUrl,
        serviceName: serviceNameOf(this),
        logLevel: props.logLevel ?? 'INFO',
        memorySize: props.realm.memorySize,
        logRetention: props.logRetention,
        alarmTopic: props.alarmTopic,
      });
    }
    if (props.recordTokenReads)
      this.tokenReads = recordTokenReads(
        this,
        this.tokenBucket,
        `${under(this.tokenPrefix)}tokens/`,
        buckets.accessLogs,
        props.recordTokenReads,
      );
    acknowledgeSupportFunctions(this, this.configBucket);
  }

  /**
   * Lets `grantee` read exactly its own token: identity-side `s3:GetObject` on
   * `tokens/ACCOUNT/role|user/NAME.json`. The principal is `principalArn` when given (written
   * as in the grants), else the grantee's role or user when it is one (an EC2 instance or a
   * function grants through its role); for any other grantee the grant covers `tokens/*` and
   * the token bucket policy keeps each principal to its own token. Same-account grantees only:
   * a principal in another account needs this statement in its own account.
   */
  grantReadOwnToken(grantee: iam.IGrantable, principalArn?: string): iam.Grant {
    let key = `${under(this.tokenPrefix)}tokens/*`;
    if (principalArn !== undefined) {
      const parsed = parsePrincipal(principalArn);
      if (!parsed.ok) throw new Error(`grantReadOwnToken: ${parsed.reason}`);
      key = `${under(this.tokenPrefix)}${tokenKey(parsed.value)}`;
    } else {
      const own = ownPrincipal(grantee.grantPrincipal);
      if (own) key = `${under(this.tokenPrefix)}tokens/${own.account}/${own.type}/${own.name}.json`;
    }
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [this.tokenBucket.arnForObjects(key)],
    });
  }

  /**
   * Lets `grantee` (a registry host) read the trust bundle and the JWKS: `s3:GetObject` on
   * `trust/bundle.pem` and `trust/jwks.json`. Same-account grantees only.
   */
  grantReadTrustBundle(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [
        this.tokenBucket.arnForObjects(`${under(this.tokenPrefix)}trust/bundle.pem`),
        this.tokenBucket.arnForObjects(`${under(this.tokenPrefix)}trust/jwks.json`),
      ],
    });
  }

  /**
   * Lets `grantee` read the deployed grants (what `regtoken plan --from s3://…` needs):
   * `s3:GetObject` on the grants object, and `s3:ListBucket` on the config bucket so a grants
   * object not uploaded yet reads as "nothing deployed" (404) rather than "access denied".
   */
  grantReadConfig(grantee: iam.IGrantable): iam.Grant {
    const read = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [this.configBucket.arnForObjects(this.configKey)],
    });
    return read.combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['s3:ListBucket'],
        resourceArns: [this.configBucket.bucketArn],
      }),
    );
  }

  /** Lets `grantee` upload the grants object (`s3:PutObject` on it, nothing else). */
  grantUploadConfig(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [this.configBucket.arnForObjects(this.configKey)],
    });
  }
}

/** What mints: the function, or with `fanOut` the workflow (whose plan step stands for it). */
interface Minting {
  readonly fanOut?: FanOut;
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly deadLetterQueue: sqs.Queue;
  readonly schedule: scheduler.Schedule;
}

/** Creates the minting function and its triggers, or the fanned-out workflow. */
function createMinting(
  scope: Construct,
  o: {
    readonly props: RegistryTokenMinterProps;
    readonly fanOut: Required<FanOutOptions> | undefined;
    readonly settings: Omit<SettingsSource, 'minterArns'>;
    readonly grants: { readonly bucket: s3.Bucket; readonly key: string };
    readonly additionalMinters: readonly string[];
  },
): Minting {
  const { props, fanOut, settings } = o;
  const timeout = settings.timeout;
  if (!fanOut) {
    const minter = createFunction(scope, {
      timeout,
      memorySize: props.memorySize,
      logRetention: props.logRetention,
    });
    bindSettings(minter, {
      ...settings,
      minterArns: [minter.role.roleArn, ...o.additionalMinters],
    });
    return {
      function: minter.function,
      role: minter.role,
      logGroup: minter.logGroup,
      deadLetterQueue: minter.deadLetterQueue,
      schedule: createTriggers(scope, minter, o.grants, settings.period),
    };
  }
  const fan = createFanOut(scope, {
    settings: fanOut,
    timeout,
    memorySize: props.memorySize,
    logRetention: props.logRetention,
    period: settings.period,
    grants: o.grants,
    tokenBucket: settings.tokenBucket,
    tokenPrefix: settings.tokenPrefix,
    alarmTopic: props.alarmTopic,
  });
  bindFanOutSettings(fan, {
    ...settings,
    // The state machine reads the manifests under state/, which the bucket policy denies to
    // everyone but the minters.
    minterArns: [
      ...[fan.plan, fan.shard, fan.finish].map((f) => f.role.roleArn),
      fan.stateMachine.role.roleArn,
      ...o.additionalMinters,
    ],
    shardSize: fanOut.shardSize,
    lease: Duration.seconds(fanOut.timeout.toSeconds() + timeout.toSeconds() + 60),
  });
  return {
    fanOut: fan,
    function: fan.plan.function,
    role: fan.plan.role,
    logGroup: fan.plan.logGroup,
    deadLetterQueue: fan.deadLetterQueue,
    schedule: fan.schedule,
  };
}
