import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  ACCOUNT,
  CONFIG_BUCKET,
  type Creds,
  createDeployment,
  type DeploymentParts,
  minterSettings,
  newAccessKey,
  quietHandler,
  roleSession,
  startAwsStandIn,
  TOKEN_BUCKET,
} from './aws-stand-in.js';
import type { FaultProxy } from './fault-proxy.js';
import { awsChildEnv, type Moto } from './moto.js';

export { ACCOUNT, type Creds, TOKEN_BUCKET };
export const FROM = `s3://${TOKEN_BUCKET}`;

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

/**
 * The world's IAM principals: the roles ci-runner, web/ec2-web and the minter's; the users
 * alice, team/bob and carol (not granted); the config bucket unversioned.
 */
export const WORLD: DeploymentParts = {
  roles: [
    ['ci-runner', '/'],
    ['ec2-web', '/web/'],
    ['regtoken-minter', '/'],
  ],
  users: [
    ['alice', '/'],
    ['bob', '/team/'],
    ['carol', '/'],
  ],
  versioned: false,
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
  const standIn = await startAwsStandIn({ metricsOff: true });
  const { moto, proxy } = standIn;
  const s3 = new S3Client({});
  const keyArn = await createDeployment({
    ...WORLD,
    trust: [{ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }],
  });
  const settings = () => minterSettings(keyArn);
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
      await quietHandler(settings, undefined, clock)({});
    },
    tokenDoc: async (k) => JSON.parse(await read(k)),
    trustBundle: () => read('trust/bundle.pem'),
    async userCreds(name) {
      // IAM allows two access keys per user: one per user serves every test.
      let creds = userKeys.get(name);
      if (!creds) {
        creds = await newAccessKey(name);
        userKeys.set(name, creds);
      }
      return creds;
    },
    roleSession,
    stop: () => standIn.stop(),
  };
  await world.mint(host);
  return world;
}
