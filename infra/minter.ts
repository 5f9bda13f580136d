/**
 * The `RegistryTokenMinter` construct: everything one regtoken deployment needs on AWS.
 *
 * - a config bucket holding the grants file (versioned, private, TLS only);
 * - a token bucket (Block Public Access, SSE-S3, no versioning, retained). Its bucket policy
 *   belongs to the function, which rebuilds it from the grants on every run
 *   (lambda/core/policy.ts), so CDK never defines one here;
 * - the signing root: an ECC_NIST_P256 SIGN_VERIFY KMS key that only the function may use;
 * - the function (lambda/handler.ts, bundled by local esbuild), with one least-privilege
 *   statement per environment variable, set side by side in {@link RegistryTokenMinter.bind};
 * - triggers: an EventBridge Scheduler schedule and an S3 notification on the grants object;
 * - failure handling: an SQS failure destination and three CloudWatch alarms.
 *
 * See docs/deploy.md for the deployment paths this supports.
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  DefaultStackSynthesizer,
  Duration,
  aws_lambda_destinations as destinations,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  Names,
  aws_lambda_nodejs as nodejs,
  RemovalPolicy,
  Stack,
  aws_s3 as s3,
  aws_s3_deployment as s3deploy,
  aws_s3_notifications as s3n,
  aws_scheduler as scheduler,
  aws_scheduler_targets as schedulerTargets,
  type aws_sns as sns,
  aws_sqs as sqs,
  Token,
  Validations,
} from 'aws-cdk-lib';
import { Construct, type IConstruct } from 'constructs';
import { parseGrants } from '../lambda/core/config.js';
import { formatDuration, MAX_TTL_SECONDS } from '../lambda/core/duration.js';
import { resolveAccess } from '../lambda/core/grants.js';
import { parsePrincipal, tokenKey } from '../lambda/core/principal.js';
import type { EnvName } from '../lambda/env.js';
import { ConfigError } from '../lambda/errors.js';

/** The repository root, found from this file so the construct works from any working directory. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Metric namespace the function publishes under (lambda/handler.ts). */
export const METRICS_NAMESPACE = 'regtoken';
/**
 * The `service` dimension (and log field) of one deployment: unique per construct, so two
 * deployments in one account and region never share metrics or trip each other's alarms.
 */
export function serviceNameOf(scope: IConstruct): string {
  return `regtoken-${Names.uniqueId(scope)}`.slice(0, 128);
}

/** Slack on top of two schedule periods in the lifetime check: clock skew, client refresh. */
export const LIFETIME_MARGIN = Duration.minutes(5);

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
   * The function's timeout; the run lock's lease is this plus one minute.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * The function's memory, in MiB.
   * @default 512
   */
  readonly memorySize?: number;
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
}

/**
 * Creates an asymmetric KMS key fit to be a regtoken root (ECC_NIST_P256, SIGN_VERIFY,
 * retained when removed from the stack). Its key policy lets account administrators manage
 * the key (CDK's key-admin actions, which include no signing); the minter that uses it adds the
 * only `kms:Sign` permission, for its function.
 */
export function createRootKey(scope: Construct, id: string): kms.Key {
  return new kms.Key(scope, id, {
    description: `regtoken signing root (${id}): the registry trusts tokens certified by this key`,
    keySpec: kms.KeySpec.ECC_NIST_P256,
    keyUsage: kms.KeyUsage.SIGN_VERIFY,
    removalPolicy: RemovalPolicy.RETAIN,
    // An explicit policy replaces CDK's default one, which grants the account root `kms:*` and
    // so lets any IAM principal with kms:Sign on "*" sign. Admins get management only.
    policy: new iam.PolicyDocument(),
    admins: [new iam.AccountRootPrincipal()],
  });
}

/**
 * Checks that tokens outlive one failed scheduled run: the shortest lifetime must be at least
 * 2 × schedule + margin, the margin being the larger of {@link LIFETIME_MARGIN} and the
 * function's timeout (a run may take that long before it writes). Returns the problem in words,
 * or undefined when the lifetime is long enough.
 */
export function lifetimeProblem(options: {
  readonly minTokenTtl: Duration;
  readonly schedule: Duration;
  readonly timeout: Duration;
  /** Where the lifetime comes from, for the message (e.g. "grants.yaml, arn:…"). */
  readonly source: string;
}): string | undefined {
  const ttl = options.minTokenTtl.toSeconds();
  const period = options.schedule.toSeconds();
  const margin = Math.max(LIFETIME_MARGIN.toSeconds(), options.timeout.toSeconds());
  const needed = 2 * period + margin;
  if (ttl >= needed) return undefined;
  return (
    `token lifetime ${formatDuration(ttl)} (${options.source}) is shorter than 2 × schedule ` +
    `(${formatDuration(period)}) + margin (${formatDuration(margin)}) = ${formatDuration(needed)}: ` +
    'when one scheduled run fails, tokens would expire before their replacements are written. ' +
    `Raise the ttl in the grants to at least ${formatDuration(needed)} or shorten the schedule.`
  );
}

/** The shortest token lifetime in a grants file, and the principal that has it. */
export function shortestLifetime(
  text: string,
  file: string,
): { seconds: number; principal: string } | undefined {
  let config: ReturnType<typeof parseGrants>;
  try {
    config = parseGrants(text, file);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new Error(`RegistryTokenMinter: grantsFile ${file} is invalid:\n${err.message}`);
    throw err;
  }
  let shortest: { seconds: number; principal: string } | undefined;
  for (const p of resolveAccess(config, [], { literalPatterns: true }))
    if (!shortest || p.ttlSeconds < shortest.seconds)
      shortest = { seconds: p.ttlSeconds, principal: p.principal.arn };
  return shortest;
}

function readGrantsFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `RegistryTokenMinter: grantsFile ${file} cannot be read: ${(err as Error).message}`,
    );
  }
}

const KEY_PREFIX_RE = /^([A-Za-z0-9!._'()=+@,;&-]+(\/[A-Za-z0-9!._'()=+@,;&-]+)*)?$/;

function checkPrefix(name: string, value: string): string {
  // Same character set the runtime accepts in policies: no "*", "?" or "${" that would widen a
  // Resource or a condition.
  if (!KEY_PREFIX_RE.test(value))
    throw new Error(
      `RegistryTokenMinter: ${name} "${value}" must be '' or segments joined by "/", without leading or trailing slash or wildcards`,
    );
  return value;
}

/** `prefix/` or '' for the bucket root. */
function under(prefix: string): string {
  return prefix ? `${prefix}/` : '';
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
  /** The minting function. */
  readonly function: nodejs.NodejsFunction;
  /** The function's execution role (the minter principal of the token bucket policy). */
  readonly role: iam.Role;
  /** The function's log group. */
  readonly logGroup: logs.LogGroup;
  /** Receives asynchronous invocations that failed after their retries. */
  readonly deadLetterQueue: sqs.Queue;
  /** The schedule that re-mints every token. */
  readonly schedule: scheduler.Schedule;
  /** A run failed: the function errored (RunsFailed or Lambda Errors). */
  readonly failedRunsAlarm: cloudwatch.Alarm;
  /** No run succeeded during two schedule periods. */
  readonly noSuccessfulRunAlarm: cloudwatch.Alarm;
  /** Some principal in the grants does not exist in IAM, so it got no token. */
  readonly unknownPrincipalsAlarm: cloudwatch.Alarm;
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
    const timeout = props.timeout ?? Duration.minutes(5);
    this.configKey = props.configKey ?? 'grants.yaml';
    this.tokenPrefix = checkPrefix('tokenPrefix', props.tokenPrefix ?? '');
    if (!/^[A-Za-z0-9!._'()=+@,;&/-]+$/.test(this.configKey) || this.configKey.startsWith('/'))
      throw new Error(
        `RegistryTokenMinter: configKey "${this.configKey}" must be an S3 key without wildcards or leading slash`,
      );

    // Token lifetime vs. schedule, checked before anything is built.
    this.checkSchedule(period, timeout);
    const grantsText = this.checkLifetimes(props, period, timeout);

    // --- Buckets.
    const accessLogs = props.accessLogsBucket ?? this.createAccessLogsBucket();
    this.configBucket = new s3.Bucket(this, 'ConfigBucket', {
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: s3.BucketEncryption.S3_MANAGED,
      // CDK owns this bucket's policy: nothing else writes it.
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'config-bucket/',
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(365) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    this.tokenBucket = new s3.Bucket(this, 'TokenBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // SSE-S3: readers need no kms:Decrypt (an SSE-KMS key would have to be granted to each).
      encryption: s3.BucketEncryption.S3_MANAGED,
      // No versions: an old version would keep a replaced or revoked token readable.
      versioned: false,
      // No enforceSSL and no autoDeleteObjects: both would make CDK write the bucket policy,
      // which the function owns (it holds a TLS-only Deny of its own).
      enforceSSL: false,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'token-bucket/',
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
    Validations.of(this.tokenBucket).acknowledge({
      id: 'AwsSolutions-S10',
      reason:
        'The token bucket policy is written by the function at run time (lambda/core/policy.ts) and starts with a TLS-only Deny (aws:SecureTransport=false); CDK must not own that policy too, or each would overwrite the other.',
    });

    // --- Signing root.
    this.signingKey = props.signingKey ?? createRootKey(this, 'SigningKey');
    const trustedKeys = props.trustedKeys ?? [];

    // --- The function.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'regtoken minter: reads the grants, writes tokens and the token bucket policy',
    });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.logGroup = logGroup;
    // Scoped to this log group, instead of the AWSLambdaBasicExecutionRole managed policy
    // (logs:* on every log group).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    this.deadLetterQueue = new sqs.Queue(this, 'FailedInvocations', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is the function's on-failure destination (and the schedule's dead-letter queue): it is the dead-letter queue, a queue for it would hold nothing.",
    });

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: `${ROOT}lambda/handler.ts`,
      handler: 'handler',
      projectRoot: ROOT,
      depsLockFilePath: `${ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout,
      role: this.role,
      logGroup,
      description: 'regtoken: mints a registry token for every principal in the grants file',
      // Overlapping runs are handled by the run lock in the token bucket, not by reserved
      // concurrency (which fails to deploy on accounts with little unreserved concurrency).
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      bundling: {
        // Local esbuild (a dev dependency) only: synth must never need Docker.
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // Bundle the AWS SDK too, so the function runs the SDK version the tests ran.
        bundleAwsSDK: true,
        minify: true,
        sourceMap: true,
        // Some bundled CommonJS dependencies call require() for Node built-ins, which an ES
        // module does not have.
        banner:
          "import { createRequire as __regtokenCreateRequire } from 'node:module'; const require = __regtokenCreateRequire(import.meta.url);",
      },
      environment: { NODE_OPTIONS: '--enable-source-maps' },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to nodejs22.x, the runtime regtoken is built and tested for (esbuild target node22); it moves with the project, not with each new Lambda runtime.',
    });

    this.configUrl = `s3://${this.configBucket.bucketName}/${this.configKey}`;
    this.tokenStoreUrl = `s3://${this.tokenBucket.bucketName}${this.tokenPrefix ? `/${this.tokenPrefix}` : ''}`;
    this.trustBundleUrl = `s3://${this.tokenBucket.bucketName}/${under(this.tokenPrefix)}trust/bundle.pem`;
    this.bindSettings(props, trustedKeys, timeout);

    this.schedule = this.createTriggers(period);
    if (grantsText !== undefined) this.deployGrants(grantsText);
    const alarms = this.createAlarms(period, props.alarmTopic);
    this.failedRunsAlarm = alarms.failedRuns;
    this.noSuccessfulRunAlarm = alarms.noSuccessfulRun;
    this.unknownPrincipalsAlarm = alarms.unknownPrincipals;
    this.acknowledgeSupportFunctions();
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

  /**
   * Checks the shortest token lifetime (from minTokenTtl and/or grantsFile) against the
   * schedule; returns the grants file's text when there is one.
   */
  private checkLifetimes(
    props: RegistryTokenMinterProps,
    period: Duration,
    timeout: Duration,
  ): string | undefined {
    const grantsText = props.grantsFile ? readGrantsFile(props.grantsFile) : undefined;
    const fromFile =
      props.grantsFile && grantsText !== undefined
        ? shortestLifetime(grantsText, props.grantsFile)
        : undefined;
    if (props.minTokenTtl === undefined && props.grantsFile === undefined)
      throw new Error(
        'RegistryTokenMinter: set minTokenTtl (the shortest token lifetime your grants use) or grantsFile (grants deployed from this repository), so synth can check lifetimes against the schedule',
      );
    const lifetimes: { ttl: Duration; source: string }[] = [];
    if (props.minTokenTtl !== undefined)
      lifetimes.push({ ttl: props.minTokenTtl, source: 'minTokenTtl' });
    if (fromFile)
      lifetimes.push({
        ttl: Duration.seconds(fromFile.seconds),
        source: `${props.grantsFile}: ${fromFile.principal}`,
      });
    for (const { ttl, source } of lifetimes) {
      const problem = lifetimeProblem({ minTokenTtl: ttl, schedule: period, timeout, source });
      if (problem) throw new Error(`RegistryTokenMinter: ${problem}`);
    }
    return grantsText;
  }

  /**
   * Sets every environment variable of the function, each with the permissions it needs.
   */
  private bindSettings(
    props: RegistryTokenMinterProps,
    trustedKeys: readonly kms.IKey[],
    timeout: Duration,
  ): void {
    const bucketArn = this.tokenBucket.bucketArn;
    const out = under(this.tokenPrefix);

    this.bind(
      'REGTOKEN_CONFIG',
      this.configUrl,
      new iam.PolicyStatement({
        sid: 'ReadGrants',
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.configBucket.arnForObjects(this.configKey)],
      }),
      // Without ListBucket, S3 answers 403 instead of 404 for a grants object not uploaded yet,
      // and the run would report "access denied" instead of "no such object". The bucket holds
      // nothing but the grants.
      new iam.PolicyStatement({
        sid: 'SeeMissingGrants',
        actions: ['s3:ListBucket'],
        resources: [this.configBucket.bucketArn],
      }),
    );

    this.bind(
      'REGTOKEN_OUT',
      this.tokenStoreUrl,
      // One object per principal: names come from the grants at run time.
      new iam.PolicyStatement({
        sid: 'WriteTokens',
        actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject'],
        resources: [this.tokenBucket.arnForObjects(`${out}tokens/*`)],
      }),
      new iam.PolicyStatement({
        sid: 'PublishTrustAndLock',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [
          this.tokenBucket.arnForObjects(`${out}trust/bundle.pem`),
          this.tokenBucket.arnForObjects(`${out}trust/jwks.json`),
          this.tokenBucket.arnForObjects(`${out}state/lock.json`),
        ],
      }),
      // Lists tokens/ to remove tokens of principals no longer granted. Not narrowed with
      // s3:prefix: the first run reads trust/bundle.pem and state/lock.json before they exist,
      // and S3 answers that with 404 only to a caller allowed to list the bucket.
      new iam.PolicyStatement({
        sid: 'ListTokens',
        actions: ['s3:ListBucket'],
        resources: [bucketArn],
      }),
      new iam.PolicyStatement({
        sid: 'OwnTokenBucketPolicy',
        actions: ['s3:GetBucketPolicy', 's3:PutBucketPolicy'],
        resources: [bucketArn],
      }),
      // Minting into S3 checks every same-account principal against IAM. The list APIs have no
      // resource-level permissions; sts:GetCallerIdentity needs no permission.
      new iam.PolicyStatement({
        sid: 'CheckPrincipals',
        actions: ['iam:ListRoles', 'iam:ListUsers'],
        resources: ['*'],
      }),
    );

    const tokenBucketId = Stack.of(this).getLogicalId(
      this.tokenBucket.node.defaultChild as s3.CfnBucket,
    );
    Validations.of(this.role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${tokenBucketId}.Arn>/${out}tokens/*]`,
        reason:
          'The function writes and deletes one token object per principal under tokens/; the names come from the grants file at run time. It reads no token.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'iam:ListRoles and iam:ListUsers have no resource-level permissions: IAM only accepts "*" for them. They are the only actions on "*".',
      },
    );

    const minters = [this.role.roleArn, ...(props.additionalMinters ?? []).map(principalArn)];
    // The bucket policy exempts these from its Denies; no permission is needed for that.
    this.bind('REGTOKEN_MINTER_ARNS', minters.join(','));

    const signingStatement = (sid: string, keys: readonly kms.IKey[]) =>
      new iam.PolicyStatement({
        sid,
        actions: ['kms:GetPublicKey', 'kms:Sign'],
        resources: keys.map((k) => k.keyArn),
      });
    this.bind(
      'REGTOKEN_SIGNING_KEY',
      `kms:${this.signingKey.keyArn}`,
      signingStatement('SignWithRoot', [this.signingKey]),
    );
    this.allowOnlyThisFunctionToSign(this.signingKey);
    if (trustedKeys.length > 0) {
      this.bind(
        'REGTOKEN_TRUSTED_KEYS',
        trustedKeys.map((k) => k.keyArn).join(','),
        // Sign too: the root certificate of a trusted key is self-signed by that key once.
        signingStatement('CertifyTrustedRoots', trustedKeys),
      );
      for (const key of trustedKeys) this.allowOnlyThisFunctionToSign(key);
    }

    if (props.registryStorage) {
      const prefix = checkPrefix('registryStorage.prefix', props.registryStorage.prefix ?? '');
      const bucket = props.registryStorage.bucket;
      this.bind(
        'REGTOKEN_REPOSITORIES',
        `s3://${bucket.bucketName}${prefix ? `/${prefix}` : ''}`,
        new iam.PolicyStatement({
          sid: 'ListRepositories',
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: {
            StringLike: { 's3:prefix': `${under(prefix)}docker/registry/v2/repositories/*` },
          },
        }),
      );
    }

    // A lease outlasting the longest run, so a crashed run's lock frees itself.
    this.bind('REGTOKEN_LOCK_LEASE', formatDuration(timeout.toSeconds() + 60));
    this.bind('POWERTOOLS_LOG_LEVEL', props.logLevel ?? 'INFO');
    this.bind('POWERTOOLS_SERVICE_NAME', serviceNameOf(this));
    this.bind('POWERTOOLS_METRICS_NAMESPACE', METRICS_NAMESPACE);
  }

  /** The schedule, and the S3 notification that mints when the grants object is written. */
  private createTriggers(period: Duration): scheduler.Schedule {
    const schedulerRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: 'regtoken: lets EventBridge Scheduler invoke the minter',
    });
    Validations.of(schedulerRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason:
        "aws-cdk-lib's grantInvoke allows lambda:InvokeFunction on this one function and its qualified ARNs (versions, aliases: ':*'); no other function.",
    });
    const schedule = new scheduler.Schedule(this, 'Schedule', {
      schedule: scheduler.ScheduleExpression.rate(period),
      description: `regtoken: re-mint every token every ${formatDuration(period.toSeconds())}`,
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role: schedulerRole,
        input: scheduler.ScheduleTargetInput.fromObject({ source: 'regtoken.schedule' }),
        deadLetterQueue: this.deadLetterQueue,
        // A missed run is superseded by the next one.
        maxEventAge: period,
        retryAttempts: 3,
      }),
    });
    this.configBucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.LambdaDestination(this.function),
      // Prefix and suffix both equal to the key: only the grants object itself.
      { prefix: this.configKey, suffix: this.configKey },
    );
    return schedule;
  }

  /** Uploads grants kept in this repository with the stack (the grantsFile prop). */
  private deployGrants(grantsText: string): void {
    const deployment = new s3deploy.BucketDeployment(this, 'Grants', {
      sources: [s3deploy.Source.data(this.configKey, grantsText)],
      destinationBucket: this.configBucket,
      // Manage the grants object only: never delete anything else in the bucket, and leave
      // the last grants in place if this deployment is removed.
      prune: false,
      retainOnDelete: true,
      contentType: 'application/yaml',
    });
    // Upload after the notification exists, so the upload mints at once.
    deployment.node.addDependency(this.configBucket);
  }

  /** The three alarms, notifying `topic` when given. */
  private createAlarms(
    period: Duration,
    topic: sns.ITopic | undefined,
  ): {
    failedRuns: cloudwatch.Alarm;
    noSuccessfulRun: cloudwatch.Alarm;
    unknownPrincipals: cloudwatch.Alarm;
  } {
    const metric = (name: string, statistic: string, alarmPeriod: Duration) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: name,
        dimensionsMap: { service: serviceNameOf(this) },
        statistic,
        period: alarmPeriod,
      });
    const fiveMinutes = Duration.minutes(5);
    const failedRuns = new cloudwatch.MathExpression({
      expression: 'FILL(errors, 0) + FILL(failed, 0)',
      usingMetrics: {
        errors: this.function.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
        failed: metric('RunsFailed', 'Sum', fiveMinutes),
      },
      period: fiveMinutes,
      label: 'failed runs',
    }).createAlarm(this, 'FailedRunsAlarm', {
      alarmDescription:
        'regtoken: a mint run failed (some principal got no new token, or the function errored). See the function logs.',
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const noSuccessfulRun = metric(
      'RunsSucceeded',
      'Sum',
      Duration.seconds(2 * period.toSeconds()),
    ).createAlarm(this, 'NoSuccessfulRunAlarm', {
      alarmDescription: `regtoken: no successful mint run in two schedule periods (${formatDuration(2 * period.toSeconds())}); tokens expire unless a run succeeds soon.`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No data means no run reported success: that is the condition this alarm is for.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    const unknownPrincipals = metric('UnknownPrincipals', 'Maximum', period).createAlarm(
      this,
      'UnknownPrincipalsAlarm',
      {
        alarmDescription:
          'regtoken: the grants name a role or user that IAM does not know (or spelled differently); it got no token. See the "unknown principal" log lines.',
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    if (topic) {
      const action = new cloudwatchActions.SnsAction(topic);
      for (const alarm of [failedRuns, noSuccessfulRun, unknownPrincipals]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
    return { failedRuns, noSuccessfulRun, unknownPrincipals };
  }

  /** Sets an environment variable of the function together with the permissions it needs. */
  private bind(name: EnvName | PowertoolsEnv, value: string, ...statements: iam.PolicyStatement[]) {
    this.function.addEnvironment(name, value);
    for (const statement of statements) this.role.addToPrincipalPolicy(statement);
  }

  /**
   * For a key created in this stack: the key policy lets the function use the key and denies
   * `kms:Sign` to every other principal, grants included. The function is named in conditions
   * on `aws:PrincipalArn`, not as a Principal: KMS rejects a policy naming a role IAM has not
   * propagated yet, which a role created in the same deployment may be. So the account is the
   * principal, and the function's identity statement (REGTOKEN_SIGNING_KEY) completes the grant.
   * Keys from elsewhere keep their own policy (addToResourcePolicy is a no-op on them).
   */
  private allowOnlyThisFunctionToSign(key: kms.IKey): void {
    if (!(key instanceof kms.Key)) return;
    const isFunction = { 'aws:PrincipalArn': this.role.roleArn };
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'MinterSigns',
        principals: [new iam.AccountRootPrincipal()],
        actions: ['kms:GetPublicKey', 'kms:Sign'],
        resources: ['*'],
        conditions: { ArnEquals: isFunction },
      }),
    );
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'NobodyElseSigns',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Sign'],
        resources: ['*'],
        conditions: { ArnNotEquals: isFunction },
      }),
    );
  }

  private checkSchedule(period: Duration, timeout: Duration): void {
    const seconds = period.toSeconds();
    if (seconds < 60 || seconds % 60 !== 0)
      throw new Error(
        `RegistryTokenMinter: schedule must be whole minutes, at least 1 minute (got ${formatDuration(seconds)})`,
      );
    if (2 * seconds > MAX_TTL_SECONDS)
      throw new Error(
        `RegistryTokenMinter: schedule ${formatDuration(seconds)} is too long: tokens live at most ${formatDuration(MAX_TTL_SECONDS)}, which must cover two periods`,
      );
    if (timeout.toSeconds() > 900)
      throw new Error('RegistryTokenMinter: timeout must be at most 15 minutes (Lambda limit)');
  }

  private createAccessLogsBucket(): s3.Bucket {
    const bucket = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ expiration: Duration.days(365) }],
    });
    return bucket;
  }

  /**
   * The S3 notification and the grants upload run on CDK's own singleton functions at stack
   * level (deploy-time custom resources whose roles aws-cdk-lib defines); their findings are
   * acknowledged there, each with its reason.
   */
  private acknowledgeSupportFunctions(): void {
    const stack = Stack.of(this);
    const child = (prefix: string): IConstruct | undefined =>
      stack.node.children.find((c) => c.node.id.startsWith(prefix));
    const basicExecution =
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]';
    const notifications = child('BucketNotificationsHandler');
    if (notifications)
      Validations.of(notifications).acknowledge({
        id: basicExecution,
        reason:
          "CDK's S3 notification handler (a deploy-time custom resource that configures the grants notification) logs with the AWS managed basic execution policy; aws-cdk-lib does not let its role be replaced.",
      });
    const deployment = child('Custom::CDKBucketDeployment');
    if (!deployment) return;
    const handlerGrants =
      "aws-cdk-lib's BucketDeployment handler runs only during deployments; its role, not configurable, reads the staged grants asset from the CDK bootstrap bucket and syncs it into the config bucket (which holds nothing but the grants). prune is off, so it deletes nothing.";
    const name = (v: string, placeholder: string) =>
      Token.isUnresolved(v) ? `<AWS::${placeholder}>` : v;
    const synthesizer = stack.synthesizer;
    const qualifier =
      synthesizer instanceof DefaultStackSynthesizer
        ? (synthesizer.bootstrapQualifier ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER)
        : DefaultStackSynthesizer.DEFAULT_QUALIFIER;
    const assetBucket = `arn:${name(stack.partition, 'Partition')}:s3:::cdk-${qualifier}-assets-${name(stack.account, 'AccountId')}-${name(stack.region, 'Region')}/*`;
    const configBucketId = stack.getLogicalId(this.configBucket.node.defaultChild as s3.CfnBucket);
    Validations.of(deployment).acknowledge(
      {
        id: basicExecution,
        reason:
          "CDK's BucketDeployment handler (uploads the grants file at deploy time) logs with the AWS managed basic execution policy; aws-cdk-lib does not let its role be replaced.",
      },
      {
        id: 'AwsSolutions-L1',
        reason:
          "CDK's BucketDeployment handler runtime is chosen by aws-cdk-lib, not by this project; it runs only during deployments.",
      },
      ...[
        'Action::s3:GetObject*',
        'Action::s3:GetBucket*',
        'Action::s3:List*',
        'Action::s3:DeleteObject*',
        'Action::s3:Abort*',
        `Resource::${assetBucket}`,
        `Resource::<${configBucketId}.Arn>/*`,
      ].map((finding) => ({ id: `AwsSolutions-IAM5[${finding}]`, reason: handlerGrants })),
    );
  }
}

/** Powertools settings, read by the Powertools library rather than lambda/env.ts. */
type PowertoolsEnv =
  | 'POWERTOOLS_LOG_LEVEL'
  | 'POWERTOOLS_SERVICE_NAME'
  | 'POWERTOOLS_METRICS_NAMESPACE';

/** The ARN of a role or user, as the token bucket policy compares it with aws:PrincipalArn. */
function principalArn(p: iam.IRole | iam.IUser): string {
  return 'roleArn' in p ? p.roleArn : p.userArn;
}

/** The account, type and name of a grantee that is an IAM role or user, else undefined. */
function ownPrincipal(
  p: iam.IPrincipal,
): { account: string; type: 'role' | 'user'; name: string } | undefined {
  const r = p as Partial<iam.IRole> & Partial<iam.IUser>;
  if (typeof r.roleName === 'string' && typeof r.roleArn === 'string' && r.env)
    return { account: r.env.account, type: 'role', name: r.roleName };
  if (typeof r.userName === 'string' && typeof r.userArn === 'string' && r.env)
    return { account: r.env.account, type: 'user', name: r.userName };
  return undefined;
}
