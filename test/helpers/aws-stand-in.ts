import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { createHandler } from '../../lambda/handler.js';
import type { RunSettings } from '../../lambda/run.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { applyAwsTestEnv, type Moto, startMoto } from './moto.js';

/** moto's account. */
export const ACCOUNT = '123456789012';
export const CONFIG_BUCKET = 'regtoken-config';
export const TOKEN_BUCKET = 'regtoken-tokens';
/** The minter's role, in REGTOKEN_MINTER_ARNS of every run. */
export const MINTER = `arn:aws:iam::${ACCOUNT}:role/regtoken-minter`;

/** AWS credentials as the SDK's environment variables. */
export type Creds = Record<'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY', string> & {
  AWS_SESSION_TOKEN?: string;
};

/** moto behind the fault proxy, this process's AWS SDK pointed at the proxy. */
export interface AwsStandIn {
  readonly moto: Moto;
  /** Every AWS call goes through it: it keeps bucket policies away from moto, injects faults. */
  readonly proxy: FaultProxy;
  /** Wipes moto and forgets the proxy's policies, rules, hits and invalid accounts. */
  reset(): Promise<void>;
  /** Gives the environment back and stops the proxy and moto. */
  stop(): Promise<void>;
}

/**
 * Starts moto_server and the fault proxy in front of it, and points this process's AWS SDK at
 * the proxy (the environment comes back with {@link AwsStandIn.stop}). With `metricsOff`, the
 * handler's metrics stay off the output (POWERTOOLS_METRICS_DISABLED until stop).
 */
export async function startAwsStandIn(options: { metricsOff?: boolean } = {}): Promise<AwsStandIn> {
  const moto = await startMoto();
  let proxy: FaultProxy;
  try {
    proxy = await startFaultProxy(moto.endpoint);
  } catch (err) {
    await moto.stop();
    throw err;
  }
  const restoreEnv = applyAwsTestEnv(proxy.endpoint);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  if (options.metricsOff) process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  return {
    moto,
    proxy,
    async reset() {
      await moto.reset();
      proxy.policies.clear();
      proxy.invalidAccounts.clear();
      proxy.setRules([]);
      proxy.hits.clear(); // counts per test, whatever ran before
    },
    async stop() {
      restoreEnv();
      if (options.metricsOff) delete process.env.POWERTOOLS_METRICS_DISABLED;
      await proxy.stop();
      await moto.stop();
    },
  };
}

/** What {@link createDeployment} makes besides the config and token buckets and the key. */
export interface DeploymentParts {
  /** Roles as `[name, path]`. */
  readonly roles: readonly (readonly [string, string])[];
  /** IAM users as `[name, path]`. */
  readonly users: readonly (readonly [string, string])[];
  /** The statements of every role's trust policy. @default none: nobody may assume them */
  readonly trust?: readonly object[];
  /** Whether the config bucket keeps versions, as the stack makes it. @default true */
  readonly versioned?: boolean;
  /** More buckets. */
  readonly buckets?: readonly string[];
}

/**
 * Creates the config bucket, the token bucket, the roles, users and buckets of `parts`, and a
 * KMS signing key; returns the key's ARN.
 */
export async function createDeployment(parts: DeploymentParts): Promise<string> {
  const s3 = new S3Client({});
  const iam = new IAMClient({});
  for (const b of [CONFIG_BUCKET, TOKEN_BUCKET, ...(parts.buckets ?? [])])
    await s3.send(new CreateBucketCommand({ Bucket: b }));
  if (parts.versioned ?? true)
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: CONFIG_BUCKET,
        VersioningConfiguration: { Status: 'Enabled' },
      }),
    );
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: parts.trust ?? [] });
  for (const [name, path] of parts.roles)
    await iam.send(
      new CreateRoleCommand({ RoleName: name, Path: path, AssumeRolePolicyDocument: trust }),
    );
  for (const [name, path] of parts.users)
    await iam.send(new CreateUserCommand({ UserName: name, Path: path }));
  const key = await new KMSClient({}).send(
    new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
  );
  return key.KeyMetadata?.Arn ?? '';
}

/**
 * The settings of a run against the stand-in's deployment, signing with the KMS key
 * `keyArn`, with `over` on top.
 */
export function minterSettings(keyArn: string, over: Partial<RunSettings> = {}): RunSettings {
  return {
    config: `s3://${CONFIG_BUCKET}/grants.yaml`,
    out: `s3://${TOKEN_BUCKET}`,
    signingKey: `kms:${keyArn}`,
    repositories: undefined,
    minterArns: [MINTER],
    trustedKeys: [],
    signingMode: undefined,
    lockLease: '2m',
    ...over,
  };
}

/** A logger and metrics that print nothing. */
export const quiet = () => ({
  logger: new Logger({ serviceName: 'regtoken', logLevel: 'SILENT' }),
  metrics: new Metrics({ namespace: 'regtoken', serviceName: 'regtoken', singleMetric: false }),
});

/** The Lambda handler with `settings`, printing nothing; `clock`, when given, is its clock. */
export function quietHandler(
  settings: () => RunSettings,
  aws = new AwsClients(),
  clock?: () => Date,
) {
  return createHandler({ settings, aws, ...quiet(), ...(clock ? { clock } : {}) });
}

/** A new access key of the IAM user `name`. */
export async function newAccessKey(name: string): Promise<Creds> {
  const k = await new IAMClient({}).send(new CreateAccessKeyCommand({ UserName: name }));
  return {
    AWS_ACCESS_KEY_ID: k.AccessKey?.AccessKeyId ?? '',
    AWS_SECRET_ACCESS_KEY: k.AccessKey?.SecretAccessKey ?? '',
  };
}

/** A new session of the role `roleArn` (STS AssumeRole), named `session`. */
export async function roleSession(roleArn: string, session: string): Promise<Creds> {
  const r = await new STSClient({}).send(
    new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: session }),
  );
  return {
    AWS_ACCESS_KEY_ID: r.Credentials?.AccessKeyId ?? '',
    AWS_SECRET_ACCESS_KEY: r.Credentials?.SecretAccessKey ?? '',
    AWS_SESSION_TOKEN: r.Credentials?.SessionToken ?? '',
  };
}
