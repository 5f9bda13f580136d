/**
 * The one module that reads the environment. Every setting regtoken takes from the environment
 * is named here, read once, and checked; a missing required one fails with its name.
 *
 * The same variables configure the CLI (flags override them) and the Lambda function, so a
 * local run and a cloud run read alike (docs/cli.md, "Environment"; docs/aws.md for the
 * function).
 */

import { EnvError } from './errors.js';

/** Environment variables regtoken reads, with what each one means. */
export const ENV_VARS = {
  REGTOKEN_CONFIG: 'grants file: a path or s3://BUCKET/KEY',
  REGTOKEN_OUT: 'where tokens go: a folder or s3://BUCKET[/PREFIX]',
  REGTOKEN_SIGNING_KEY: 'signing key: a PEM file or kms:KEY_ID_OR_ALIAS',
  REGTOKEN_REPOSITORIES:
    'repository inventory for wildcard patterns: a list file, a registry storage folder, or s3://BUCKET/PREFIX of the registry storage',
  REGTOKEN_MINTER_ARNS:
    'IAM roles or users (comma-separated ARNs) allowed to write the token bucket; required for s3:// output, where regtoken writes the bucket policy',
  REGTOKEN_TRUSTED_KEYS:
    'more KMS keys (comma-separated) whose root certificates stay in the trust bundle, for rotating the signing key',
  REGTOKEN_SIGNING_MODE:
    'with a KMS key: certificate (default: a per-run signing key certified by KMS) or direct (KMS signs every token)',
  REGTOKEN_LOCK_LEASE:
    'how long a run may hold the run lock, e.g. 15m (default 15m; at least 2m): it writes until a margin of 2 × the S3 request timeout before the end',
  REGTOKEN_SCHEDULE:
    'how often tokens are re-minted, e.g. 1h: a token lifetime shorter than 2 × this + REGTOKEN_LIFETIME_MARGIN is a warning (mint, validate, plan; --schedule wins)',
  REGTOKEN_LIFETIME_MARGIN:
    'the margin on top of two schedule periods in that check (default 5m; the Lambda function sets its timeout when longer; --margin wins)',
  REGTOKEN_SHARD_SIZE:
    'a fanned-out run (Step Functions): principals per shard, each shard holding one account (default 5000)',
  REGTOKEN_FROM:
    'where login, token and whoami find your token: s3://TOKEN_BUCKET[/PREFIX] (--from wins; else the user config file)',
  REGTOKEN_REGISTRY:
    'the registry host your token must be for (login, token); default: the host in the token',
  REGTOKEN_TRUST:
    'where the token endpoint (realm) reads the trust bundle: s3://TOKEN_BUCKET[/PREFIX] or a PEM file',
  REGTOKEN_SERVICE:
    "the token endpoint's service: the registry's auth.token.service (the tokens' aud)",
  REGTOKEN_ISSUER:
    "the token endpoint's issuer: the registry's auth.token.issuer (the tokens' iss)",
  REGTOKEN_LISTEN: 'where regtoken realm listens, HOST:PORT (default 127.0.0.1:5001)',
  DOCKER_CONFIG:
    "Docker's configuration directory; login writes its config.json (default ~/.docker)",
  XDG_CONFIG_HOME:
    "base directory of regtoken's user config file, XDG_CONFIG_HOME/regtoken/config.json (default ~/.config)",
  XDG_CACHE_HOME:
    'base directory of the token cache of docker-credential-regtoken and regtoken-credential-provider, XDG_CACHE_HOME/regtoken (default ~/.cache)',
  AWS_PROFILE:
    'the AWS profile (read by the AWS SDK; the credential helper also uses it to recognise you without asking AWS)',
  AWS_ACCESS_KEY_ID:
    'an access key (read by the AWS SDK; the credential helper keys its cache by it, never by the secret)',
  AWS_SECRET_ACCESS_KEY:
    "the access key's secret (read by the AWS SDK; regtoken only checks that it is set)",
  AWS_ROLE_ARN:
    'with AWS_WEB_IDENTITY_TOKEN_FILE, the role of a web identity (read by the AWS SDK and the credential helper)',
  AWS_WEB_IDENTITY_TOKEN_FILE:
    'with AWS_ROLE_ARN, a web identity token file (EKS IRSA; read by the AWS SDK and the credential helper)',
  AWS_CONFIG_FILE: 'the AWS config file (default ~/.aws/config)',
  AWS_SHARED_CREDENTIALS_FILE: 'the AWS credentials file (default ~/.aws/credentials)',
  AWS_ENDPOINT_URL:
    'another AWS endpoint (an AWS-compatible stand-in); part of the credential cache key, with AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_S3',
  HOME: 'your home directory, for ~/.docker, ~/.config and ~/.cache (default: from the password database)',
  PATH: 'where login --helper checks that Docker will find docker-credential-regtoken',
  REGTOKEN_DEBUG: 'set to 1 to print stack traces of unexpected errors',
  POWERTOOLS_SERVICE_NAME:
    "the Lambda function's service name in logs and its metrics' service dimension (default regtoken)",
  POWERTOOLS_METRICS_NAMESPACE:
    "the Lambda function's CloudWatch metric namespace (default regtoken)",
  NO_COLOR: 'set to anything to turn off colour in terminal output (no-color.org)',
} as const;

export type EnvName = keyof typeof ENV_VARS;

/**
 * The AWS SDK's own variables that decide who the caller is. The SDK reads them itself; the
 * credential helper reads them too, to tell without an AWS call which identity a cached token
 * belongs to (lambda/core/aws-source.ts). The secret key is never kept, only whether it is set.
 */
export interface AwsEnv {
  readonly profile: string | undefined;
  readonly accessKeyId: string | undefined;
  readonly secretAccessKeySet: boolean;
  readonly roleArn: string | undefined;
  readonly webIdentityTokenFile: string | undefined;
  readonly configFile: string | undefined;
  readonly credentialsFile: string | undefined;
  /** AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_S3 (unset ones left out). */
  readonly endpoints: readonly string[];
}

/** Settings taken from the environment; undefined when unset or empty. */
export interface EnvSettings {
  readonly config: string | undefined;
  readonly out: string | undefined;
  readonly signingKey: string | undefined;
  readonly repositories: string | undefined;
  readonly minterArns: readonly string[];
  readonly trustedKeys: readonly string[];
  readonly signingMode: string | undefined;
  readonly lockLease: string | undefined;
  /** How often tokens are re-minted (REGTOKEN_SCHEDULE), for the lifetime check. */
  readonly schedule: string | undefined;
  /** The margin of the lifetime check (REGTOKEN_LIFETIME_MARGIN). */
  readonly lifetimeMargin: string | undefined;
  /** A fanned-out run's principals per shard, REGTOKEN_SHARD_SIZE. */
  readonly shardSize: string | undefined;
  /** Client side: the token location (`s3://…`), REGTOKEN_FROM. */
  readonly from: string | undefined;
  /** Client side: the registry host the token must be for, REGTOKEN_REGISTRY. */
  readonly registry: string | undefined;
  /** Token endpoint: the trust bundle location, REGTOKEN_TRUST. */
  readonly trust: string | undefined;
  /** Token endpoint: the registry's auth.token.service, REGTOKEN_SERVICE. */
  readonly service: string | undefined;
  /** Token endpoint: the registry's auth.token.issuer, REGTOKEN_ISSUER. */
  readonly issuer: string | undefined;
  /** Token endpoint: HOST:PORT to listen on, REGTOKEN_LISTEN. */
  readonly listen: string | undefined;
  readonly dockerConfig: string | undefined;
  readonly xdgConfigHome: string | undefined;
  /** Base of the credential helper's token cache, XDG_CACHE_HOME. */
  readonly xdgCacheHome: string | undefined;
  readonly home: string | undefined;
  /** PATH, searched for docker-credential-regtoken by `login --helper`. */
  readonly path: string | undefined;
  /** What the credential helper needs to recognise the caller's AWS identity without asking AWS. */
  readonly aws: AwsEnv;
  readonly debug: boolean;
  readonly serviceName: string;
  readonly metricsNamespace: string;
  readonly noColor: boolean;
}

function value(env: NodeJS.ProcessEnv, name: EnvName): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function list(env: NodeJS.ProcessEnv, name: EnvName): string[] {
  return (value(env, name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Reads every regtoken setting from `env` (defaults to the process environment). */
export function readEnv(env: NodeJS.ProcessEnv = process.env): EnvSettings {
  return {
    config: value(env, 'REGTOKEN_CONFIG'),
    out: value(env, 'REGTOKEN_OUT'),
    signingKey: value(env, 'REGTOKEN_SIGNING_KEY'),
    repositories: value(env, 'REGTOKEN_REPOSITORIES'),
    minterArns: list(env, 'REGTOKEN_MINTER_ARNS'),
    trustedKeys: list(env, 'REGTOKEN_TRUSTED_KEYS'),
    signingMode: value(env, 'REGTOKEN_SIGNING_MODE'),
    lockLease: value(env, 'REGTOKEN_LOCK_LEASE'),
    schedule: value(env, 'REGTOKEN_SCHEDULE'),
    lifetimeMargin: value(env, 'REGTOKEN_LIFETIME_MARGIN'),
    shardSize: value(env, 'REGTOKEN_SHARD_SIZE'),
    from: value(env, 'REGTOKEN_FROM'),
    registry: value(env, 'REGTOKEN_REGISTRY'),
    trust: value(env, 'REGTOKEN_TRUST'),
    service: value(env, 'REGTOKEN_SERVICE'),
    issuer: value(env, 'REGTOKEN_ISSUER'),
    listen: value(env, 'REGTOKEN_LISTEN'),
    dockerConfig: value(env, 'DOCKER_CONFIG'),
    xdgConfigHome: value(env, 'XDG_CONFIG_HOME'),
    xdgCacheHome: value(env, 'XDG_CACHE_HOME'),
    home: value(env, 'HOME'),
    path: value(env, 'PATH'),
    aws: {
      profile: value(env, 'AWS_PROFILE'),
      accessKeyId: value(env, 'AWS_ACCESS_KEY_ID'),
      secretAccessKeySet: value(env, 'AWS_SECRET_ACCESS_KEY') !== undefined,
      roleArn: value(env, 'AWS_ROLE_ARN'),
      webIdentityTokenFile: value(env, 'AWS_WEB_IDENTITY_TOKEN_FILE'),
      configFile: value(env, 'AWS_CONFIG_FILE'),
      credentialsFile: value(env, 'AWS_SHARED_CREDENTIALS_FILE'),
      // Read only as part of the cache key (the SDK reads them to configure itself).
      endpoints: ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_STS', 'AWS_ENDPOINT_URL_S3']
        .map((name) => env[name]?.trim())
        .filter((v): v is string => Boolean(v)),
    },
    debug: value(env, 'REGTOKEN_DEBUG') === '1',
    serviceName: value(env, 'POWERTOOLS_SERVICE_NAME') ?? 'regtoken',
    metricsNamespace: value(env, 'POWERTOOLS_METRICS_NAMESPACE') ?? 'regtoken',
    noColor: env.NO_COLOR !== undefined,
  };
}

/** Returns a setting that must be present, or fails naming the variable and what it holds. */
export function required(setting: string | undefined, name: EnvName): string {
  if (setting === undefined) throw new EnvError(`${name} is not set: ${ENV_VARS[name]}`);
  return setting;
}

/**
 * Turns off the AWS SDK's notice about Node.js 20 on stderr: the CLI supports Node 20.19+ on
 * purpose (the Lambda runs Node 22), and the notice would interleave with its output.
 */
export function quietSdkNotices(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
