import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { createHandler } from '../../lambda/handler.js';
import type { RunSettings } from '../../lambda/run.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { applyAwsTestEnv, awsChildEnv, type Moto, startMoto } from './moto.js';

/** moto's account. */
export const ACCOUNT = '123456789012';
export const TOKEN_BUCKET = 'regtoken-tokens';
export const FROM = `s3://${TOKEN_BUCKET}`;
const CONFIG_BUCKET = 'regtoken-config';
const MINTER = `arn:aws:iam::${ACCOUNT}:role/regtoken-minter`;

/** The principals of the world: two roles (one with a path), two users; carol is not granted. */
export const ARN = {
  ci: `arn:aws:iam::${ACCOUNT}:role/ci-runner`,
  web: `arn:aws:iam::${ACCOUNT}:role/web/ec2-web`,
  alice: `arn:aws:iam::${ACCOUNT}:user/alice`,
  bob: `arn:aws:iam::${ACCOUNT}:user/team/bob`,
} as const;
export const KEY = {
  ci: `tokens/${ACCOUNT}/role/ci-runner.json`,
  web: `tokens/${ACCOUNT}/role/ec2-web.json`,
  alice: `tokens/${ACCOUNT}/user/alice.json`,
  bob: `tokens/${ACCOUNT}/user/bob.json`,
} as const;

/** The grants: the CI role pulls and pushes team-a/app; the others pull it. */
export const grants = (host: string) => `version: 1
registry: {host: "${host}", service: registry.test, issuer: regtoken}
tokenTtl: 1h
grants:
  - principal: ${ARN.ci}
    access: [{repository: team-a/app, actions: [pull, push]}]
  - principals: [${ARN.web}, ${ARN.alice}, ${ARN.bob}]
    access: [{repository: team-a/app, actions: [pull]}]
`;

/** AWS credentials as the SDK's environment variables. */
export type Creds = Record<'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY', string> & {
  AWS_SESSION_TOKEN?: string;
};

/** The AWS stand-in with a deployment that has minted: see {@link startMintedWorld}. */
export interface MintedWorld {
  readonly moto: Moto;
  /** Every AWS call goes through it: `proxy.calls` counts them. */
  readonly proxy: FaultProxy;
  readonly s3: S3Client;
  /** Environment for a child process talking to the stand-in (no credentials of its own). */
  childEnv(): NodeJS.ProcessEnv;
  /** One mint run of the Lambda handler for `host`, optionally on a clock of its own. */
  mint(host: string, clock?: () => Date): Promise<void>;
  /** The token document at `key`. */
  tokenDoc(key: string): Promise<{ token: string; principal: string; registry: string }>;
  /** The PEM trust bundle the run published. */
  trustBundle(): Promise<string>;
  /** The access key of an IAM user (made on first use). */
  userCreds(name: string): Promise<Creds>;
  /** A new session of a role. */
  roleSession(roleArn: string, session: string): Promise<Creds>;
  stop(): Promise<void>;
}

/**
 * Starts moto behind the fault proxy (which keeps bucket policies away from moto and counts
 * calls), points this process's AWS SDK at the proxy, and creates a regtoken deployment: the
 * config and token buckets, the roles (ci-runner; web/ec2-web; the minter), the users (alice;
 * team/bob; carol, not granted), a KMS signing key, and the grants of {@link grants} for
 * `host`, minted once.
 */
export async function startMintedWorld(host: string): Promise<MintedWorld> {
  const moto = await startMoto();
  const proxy = await startFaultProxy(moto.endpoint);
  const restoreEnv = applyAwsTestEnv(proxy.endpoint);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true'; // keep the handler's metrics off the output
  const s3 = new S3Client({});
  const iam = new IAMClient({});
  for (const b of [CONFIG_BUCKET, TOKEN_BUCKET])
    await s3.send(new CreateBucketCommand({ Bucket: b }));
  const trust = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }],
  });
  for (const [name, path] of [
    ['ci-runner', '/'],
    ['ec2-web', '/web/'],
    ['regtoken-minter', '/'],
  ] as const)
    await iam.send(
      new CreateRoleCommand({ RoleName: name, Path: path, AssumeRolePolicyDocument: trust }),
    );
  for (const [name, path] of [
    ['alice', '/'],
    ['bob', '/team/'],
    ['carol', '/'],
  ] as const)
    await iam.send(new CreateUserCommand({ UserName: name, Path: path }));
  const key = await new KMSClient({}).send(
    new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
  );
  const settings = (): RunSettings => ({
    config: `s3://${CONFIG_BUCKET}/grants.yaml`,
    out: FROM,
    signingKey: `kms:${key.KeyMetadata?.Arn ?? ''}`,
    repositories: undefined,
    minterArns: [MINTER],
    trustedKeys: [],
    signingMode: undefined,
    lockLease: '2m',
  });
  const read = async (k: string) => {
    const r = await s3.send(new GetObjectCommand({ Bucket: TOKEN_BUCKET, Key: k }));
    return (await r.Body?.transformToString()) ?? '';
  };
  const userKeys = new Map<string, Creds>();
  const world: MintedWorld = {
    moto,
    proxy,
    s3,
    childEnv: () => {
      const env = awsChildEnv(proxy.endpoint);
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete env[k];
      return env;
    },
    async mint(h, clock) {
      await s3.send(
        new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: 'grants.yaml', Body: grants(h) }),
      );
      await createHandler({
        settings,
        aws: new AwsClients(),
        logger: new Logger({ serviceName: 'regtoken', logLevel: 'SILENT' }),
        metrics: new Metrics({
          namespace: 'regtoken',
          serviceName: 'regtoken',
          singleMetric: false,
        }),
        ...(clock ? { clock } : {}),
      })({});
    },
    tokenDoc: async (k) => JSON.parse(await read(k)),
    trustBundle: () => read('trust/bundle.pem'),
    async userCreds(name) {
      // IAM allows two access keys per user: one per user serves every test.
      let creds = userKeys.get(name);
      if (!creds) {
        const k = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
        creds = {
          AWS_ACCESS_KEY_ID: k.AccessKey?.AccessKeyId ?? '',
          AWS_SECRET_ACCESS_KEY: k.AccessKey?.SecretAccessKey ?? '',
        };
        userKeys.set(name, creds);
      }
      return creds;
    },
    async roleSession(roleArn, session) {
      const r = await new STSClient({}).send(
        new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: session }),
      );
      return {
        AWS_ACCESS_KEY_ID: r.Credentials?.AccessKeyId ?? '',
        AWS_SECRET_ACCESS_KEY: r.Credentials?.SecretAccessKey ?? '',
        AWS_SESSION_TOKEN: r.Credentials?.SessionToken ?? '',
      };
    },
    async stop() {
      restoreEnv();
      delete process.env.POWERTOOLS_METRICS_DISABLED;
      await proxy.stop();
      await moto.stop();
    },
  };
  await world.mint(host);
  return world;
}
