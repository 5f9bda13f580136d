/**
 * The client side against moto_server: `regtoken login`, `token` and `whoami` as an IAM user
 * (an access key made in moto) and as assumed-role sessions (moto's STS AssumeRole), after the
 * Lambda handler minted into the token bucket. Every S3 call goes through the fault proxy: it
 * keeps the bucket policy the run writes away from moto (which would half-enforce it) and
 * answers 403 where a real bucket policy would refuse — moto evaluates no policy, so "access
 * denied" is injected there and the policy's meaning is checked with the independent evaluator.
 * The end-to-end test pushes and pulls with skopeo against the real registry.
 */

import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  DeleteBucketPolicyCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { RunSettings } from '../../lambda/run.js';
import {
  type AwsStandIn,
  CONFIG_BUCKET,
  type Creds,
  createDeployment,
  minterSettings,
  newAccessKey,
  quietHandler,
  roleSession,
  startAwsStandIn,
} from '../helpers/aws-stand-in.js';
import { cli } from '../helpers/cli.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { allow, decideS3 } from '../helpers/iam-eval.js';
import {
  ACCOUNT,
  ARN,
  FROM,
  KEY,
  TOKEN_BUCKET,
  WORLD,
  grants as worldGrants,
} from '../helpers/minted-world.js';
import { awsChildEnv } from '../helpers/moto.js';
import { run } from '../helpers/process.js';
import { type RunningRegistry, startRegistry } from '../helpers/registry.js';
import { runRegtoken } from '../helpers/regtoken.js';
import { pullImage, pushImage, registryRequest } from '../helpers/skopeo.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const grants = (host = 'registry.test') => worldGrants(host);

let standIn: AwsStandIn;
let proxy: FaultProxy;
let s3: S3Client;
let kmsKeyArn: string;
let tmp: string;
let home: string;
let dockerDir: string;

const CRED_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;

/**
 * Runs `fn` with these credentials in process.env (or none at all): the CLI's SDK clients are
 * created per command and resolve credentials from the environment then.
 */
async function as<T>(creds: Creds | 'no credentials', fn: () => Promise<T>): Promise<T> {
  const saved = CRED_VARS.map((k) => [k, process.env[k]] as const);
  for (const k of CRED_VARS) delete process.env[k];
  if (creds !== 'no credentials') Object.assign(process.env, creds);
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** One mint run of the Lambda handler (optionally with a clock of its own). */
async function mint(over: Partial<RunSettings> = {}, clock?: () => Date) {
  return quietHandler(() => minterSettings(kmsKeyArn, over), undefined, clock)({});
}

async function putGrants(text: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: 'grants.yaml', Body: text }));
}

async function tokenDoc(key: string) {
  const r = await s3.send(new GetObjectCommand({ Bucket: TOKEN_BUCKET, Key: key }));
  return JSON.parse((await r.Body?.transformToString()) ?? '');
}

/** The client environment: a private HOME and Docker config, the token location. */
const clientEnv = (extra: Record<string, string> = {}) => ({
  HOME: home,
  DOCKER_CONFIG: dockerDir,
  REGTOKEN_FROM: FROM,
  ...extra,
});
const dockerConfig = () => join(dockerDir, 'config.json');
const readDockerConfig = () => JSON.parse(readFileSync(dockerConfig(), 'utf8'));

/** Content, mode and mtime of a file: equal before and after means it was not touched. */
function fingerprint(path: string): string {
  const st = statSync(path);
  return `${readFileSync(path, 'utf8')}|${st.mode}|${st.mtimeMs}`;
}

beforeAll(async () => {
  standIn = await startAwsStandIn({ metricsOff: true });
  ({ proxy } = standIn);
  tmp = await makeTempDir('client-');
}, 60_000);

afterAll(async () => {
  await standIn?.stop();
  await removeTempDir(tmp);
});

let n = 0;
beforeEach(async () => {
  await standIn.reset();
  n += 1;
  home = join(tmp, `home-${n}`);
  dockerDir = join(home, '.docker');
  mkdirSync(home, { recursive: true });
  s3 = new S3Client({});
  kmsKeyArn = await createDeployment({
    ...WORLD,
    trust: [
      { Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' },
      { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ],
  });
  await putGrants(grants());
  await mint();
}, 30_000); // moto and the fault proxy start from scratch: slow on a loaded machine

const EXPIRY = /the token expires \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (59m( \d+s)?|1h)\)/;

describe('login as an IAM user', () => {
  it('creates the Docker config (and its directory) with the token, mode 0600', async () => {
    const alice = await newAccessKey('alice');
    const r = await as(alice, () => cli(['login'], clientEnv()));
    const { token } = await tokenDoc(KEY.alice);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [first, second] = r.stdout.split('\n');
    expect(first).toMatch(new RegExp(`^Logged in to registry\\.test as ${ARN.alice}; `));
    expect(first).toMatch(EXPIRY);
    expect(second).toBe(`Docker config: ${dockerConfig()}`);
    expect(r.stdout).not.toContain(token);
    expect(readDockerConfig()).toEqual({ auths: { 'registry.test': { registrytoken: token } } });
    expect(statSync(dockerConfig()).mode & 0o777).toBe(0o600);
    expect(statSync(dockerDir).mode & 0o777).toBe(0o700);
  });

  it('finds the token of a user with a path by its name alone', async () => {
    const bob = await newAccessKey('bob');
    const r = await as(bob, () => cli(['whoami', '--json'], clientEnv()));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      caller: ARN.bob,
      principal: ARN.bob,
      tokenKey: KEY.bob,
      tokenUrl: `${FROM}/${KEY.bob}`,
      registry: 'registry.test',
      status: 'valid',
      access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
    });
    expect(report.expiresInSeconds).toBeGreaterThan(3500);
    expect(r.stdout).not.toContain((await tokenDoc(KEY.bob)).token);
  });

  it('keeps every other entry, credsStore and credHelpers; replaces stored credentials for the host', async () => {
    mkdirSync(dockerDir, { recursive: true });
    const before = {
      auths: {
        'ghcr.io': { auth: 'Z2g6cGF0' },
        'registry.test': { auth: 'dXNlcjpwYXNzd29yZA==' },
      },
      credsStore: 'desktop',
      credHelpers: {
        'registry.test': 'secretservice',
        'x.dkr.ecr.eu-west-1.amazonaws.com': 'ecr-login',
      },
      currentContext: 'colima',
      psFormat: 'table {{.ID}}',
    };
    writeFileSync(dockerConfig(), JSON.stringify(before, null, 2), { mode: 0o644 });
    const r = await as(await newAccessKey('alice'), () => cli(['login'], clientEnv()));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      [
        `warning: replaced the stored credentials for registry.test in ${dockerConfig()} (auth): the token takes their place`,
        `warning: ${dockerConfig()} sends registry.test to the credential helper docker-credential-secretservice (credHelpers): Docker still uses the token, but fails the pull when that helper fails; remove credHelpers["registry.test"] unless you need it`,
        '',
      ].join('\n'),
    );
    const { token } = await tokenDoc(KEY.alice);
    expect(readDockerConfig()).toEqual({
      ...before,
      auths: { 'ghcr.io': { auth: 'Z2g6cGF0' }, 'registry.test': { registrytoken: token } },
    });
    expect(statSync(dockerConfig()).mode & 0o777).toBe(0o600);
    // Written the way Docker writes it, and nothing left behind (the temp file was renamed).
    expect(readFileSync(dockerConfig(), 'utf8')).toContain('\t"auths"');
    expect(readdirSync(dockerDir)).toEqual(['config.json']);
  });

  it('does not rewrite a config that already holds the token', async () => {
    const alice = await newAccessKey('alice');
    await as(alice, () => cli(['login'], clientEnv()));
    const before = fingerprint(dockerConfig());
    await new Promise((r) => setTimeout(r, 20));
    const r = await as(alice, () => cli(['login'], clientEnv()));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Docker config: ${dockerConfig()} (already up to date)\n`);
    expect(fingerprint(dockerConfig())).toBe(before);
  });

  it('replaces the target of a symlinked config.json and keeps the link', async () => {
    const real = join(home, 'dotfiles', 'docker-config.json');
    mkdirSync(join(home, 'dotfiles'));
    mkdirSync(dockerDir);
    writeFileSync(real, '{"auths": {"ghcr.io": {}}}');
    symlinkSync(real, dockerConfig());
    const r = await as(await newAccessKey('alice'), () => cli(['login'], clientEnv()));
    expect(r.code).toBe(0);
    expect(lstatSync(dockerConfig()).isSymbolicLink()).toBe(true);
    expect(Object.keys(JSON.parse(readFileSync(real, 'utf8')).auths)).toEqual([
      'ghcr.io',
      'registry.test',
    ]);
  });

  it.each([
    [
      'not valid JSON',
      () => writeFileSync(dockerConfig(), '{"auths": {'),
      /^regtoken: .+\/config\.json is not valid JSON \(.+\); fix or move it and retry — it was not changed\n$/,
    ],
    // Unreadable: a directory where the file should be. (A file with mode 000 would do for a
    // normal user, but these tests may run as root, who reads any file whatever its mode.)
    [
      'unreadable (a directory where the file should be)',
      () => mkdirSync(dockerConfig()),
      /^regtoken: cannot read .+\/config\.json \(EISDIR\); fix it and retry — it was not changed\n$/,
    ],
  ])('refuses a Docker config that is %s, and leaves it alone', async (_what, make, message) => {
    mkdirSync(dockerDir, { recursive: true });
    make();
    const st = statSync(dockerConfig());
    const before = st.isDirectory() ? 'dir' : fingerprint(dockerConfig());
    const r = await as(await newAccessKey('alice'), () => cli(['login'], clientEnv()));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(statSync(dockerConfig()).isDirectory() ? 'dir' : fingerprint(dockerConfig())).toBe(
      before,
    );
  });
});

describe('login as an assumed-role session', () => {
  it('uses the role token of the session (role without a path)', async () => {
    const session = await roleSession(ARN.ci, 'build-7');
    const r = await as(session, () => cli(['login'], clientEnv()));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Logged in to registry\\.test as ${ARN.ci}; `));
    expect(readDockerConfig().auths['registry.test'].registrytoken).toBe(
      (await tokenDoc(KEY.ci)).token,
    );
  });

  it('finds the token of a role with a path from an instance-profile-like session', async () => {
    const session = await roleSession(ARN.web, 'i-0abc123def');
    const r = await as(session, () => cli(['whoami'], clientEnv()));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      `Caller:     arn:aws:sts::${ACCOUNT}:assumed-role/ec2-web/i-0abc123def`,
      `Principal:  ${ARN.web}`,
      `Token:      ${FROM}/${KEY.web}`,
      'Registry:   registry.test',
      `Issued:     ${(await tokenDoc(KEY.web)).issuedAt.slice(0, 16).replace('T', ' ')} UTC`,
    ]);
    expect(lines[5]).toMatch(/^Expires: {4}\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (59m( \d+s)?|1h)\)$/);
    expect(lines.slice(6)).toEqual(['Access:', '  team-a/app  pull', '']);
    expect(r.stdout).not.toContain((await tokenDoc(KEY.web)).token);
  });

  it('token prints the raw token and nothing else', async () => {
    const session = await roleSession(ARN.ci, 'ci-job');
    const r = await as(session, () => cli(['token'], clientEnv()));
    expect(r).toEqual({ code: 0, stdout: `${(await tokenDoc(KEY.ci)).token}\n`, stderr: '' });
  });

  it('reads the location from the config file, with a prefix', async () => {
    // The bucket serves the store at its root; one bucket holds one store, so moving the store
    // to a prefix starts by deleting the bucket policy (docs/aws.md).
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: TOKEN_BUCKET }));
    await mint({ out: `${FROM}/prod` });
    const dir = join(home, '.config', 'regtoken');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ from: `${FROM}/prod`, registry: 'registry.test' }),
    );
    const env = { HOME: home, DOCKER_CONFIG: dockerDir };
    const r = await as(await roleSession(ARN.ci, 's'), () => cli(['whoami', '--json'], env));
    expect(JSON.parse(r.stdout).tokenUrl).toBe(`${FROM}/prod/${KEY.ci}`);
    expect(r.code).toBe(0);
  });
});

describe('errors: one line, exit 1, the Docker config untouched', () => {
  /** A Docker config holding an earlier token, to check that a failed login keeps it. */
  function lastGoodConfig(): string {
    mkdirSync(dockerDir, { recursive: true });
    writeFileSync(
      dockerConfig(),
      JSON.stringify({ auths: { 'registry.test': { registrytoken: 'last.good.token' } } }),
      { mode: 0o600 },
    );
    return fingerprint(dockerConfig());
  }

  async function fails(
    creds: Creds | 'no credentials',
    args: string[],
    message: string | RegExp,
    opts: { env?: Record<string, string>; clock?: () => Date } = {},
  ): Promise<void> {
    const before = lastGoodConfig();
    const r = await as(creds, () =>
      cli(args, clientEnv(opts.env), opts.clock ? { clock: opts.clock } : {}),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    if (typeof message === 'string') expect(r.stderr).toBe(`regtoken: ${message}\n`);
    else expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(fingerprint(dockerConfig())).toBe(before);
    // No error message holds a token (injected faults off, to read them all).
    proxy.setRules([]);
    for (const key of Object.values(KEY))
      expect(r.stderr).not.toContain((await tokenDoc(key)).token);
  }

  it('no credentials (no keys, no profile files, no instance metadata)', async () => {
    expect(process.env.AWS_EC2_METADATA_DISABLED).toBe('true');
    await fails(
      'no credentials',
      ['login'],
      'no AWS credentials found: run aws sso login (or set AWS_PROFILE), export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance profile or task role provides them',
    );
  });

  it('access denied: not granted (403 from the bucket policy, injected: moto evaluates none)', async () => {
    proxy.setRules([
      { method: 'GET', path: /ci-runner\.json/, status: 403, times: Number.POSITIVE_INFINITY },
    ]);
    await fails(
      await roleSession(ARN.ci, 's'),
      ['login'],
      `access denied reading ${FROM}/${KEY.ci} as arn:aws:sts::${ACCOUNT}:assumed-role/ci-runner/s: role ci-runner in account ${ACCOUNT} has no token there yet (not in the grants file, or not minted yet), or its IAM policy does not allow s3:GetObject on that key; ask the registry administrators`,
    );
    expect([...proxy.hits.values()]).toEqual([1]); // refused, not retried
  });

  it('no token yet (NoSuchKey): a user not in the grants', async () => {
    const carol = `arn:aws:iam::${ACCOUNT}:user/carol`;
    await fails(
      await newAccessKey('carol'),
      ['login'],
      `no token for ${carol} at ${FROM}/tokens/${ACCOUNT}/user/carol.json yet: ${carol} is not in the grants file, or the minter has not run since it was added`,
    );
  });

  it('expired token: the minter last ran 3 hours ago; the last good token is kept', async () => {
    const past = new Date(Date.now() - 3 * 3600_000);
    await mint({}, () => past);
    await fails(
      await roleSession(ARN.ci, 's'),
      ['login'],
      new RegExp(
        `^regtoken: the token at ${FROM}/${KEY.ci} expired at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC \\(2h( \\d+m)? ago\\): the minter has not replaced it; tell the registry administrators \\(its RunsFailed alarm\\)\\n$`,
      ),
    );
  });

  it("clock skew: this machine's clock is 10 minutes behind", async () => {
    const behind = () => new Date(Date.now() - 600_000);
    await fails(
      await roleSession(ARN.ci, 's'),
      ['login'],
      /^regtoken: this machine's clock is (9m \d+s|10m( \d+s)?) behind AWS: the token at .+ is valid from .+ UTC, .+ from now by this clock \(the registry allows 60 s\); set the clock right \(timedatectl set-ntp true, or chronyd\) and retry\n$/,
      { clock: behind },
    );
  });

  it("clock skew: this machine's clock is 2 hours ahead (the token only looks expired)", async () => {
    const ahead = () => new Date(Date.now() + 2 * 3600_000);
    await fails(
      await roleSession(ARN.ci, 's'),
      ['token'],
      /^regtoken: this machine's clock is (1h 59m|2h) ahead of AWS: the token at .+ looks expired here but is valid until .+ UTC; set the clock right/,
      { clock: ahead },
    );
  });

  it.each([
    [['login', '--registry', 'registry.example.com'], {}, '--registry'],
    [['token'], { REGTOKEN_REGISTRY: 'registry.example.com' }, 'REGTOKEN_REGISTRY'],
  ])('unknown registry host: %j', async (args, env, source) => {
    await fails(
      await roleSession(ARN.ci, 's'),
      args,
      `your token at ${FROM}/${KEY.ci} is for registry registry.test, not registry.example.com (${source}): use --registry registry.test, or ask for a grant on registry.example.com`,
      { env },
    );
  });

  it('an identity that owns no token (moto default user, like a root or federated caller)', async () => {
    await fails(
      { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
      ['login'],
      `arn:aws:sts::${ACCOUNT}:user/moto is neither an IAM user nor a role session, so it owns no registry token`,
    );
  });

  it('no AWS region anywhere (and no instance metadata to ask)', async () => {
    const alice = await newAccessKey('alice');
    const region = process.env.AWS_REGION;
    delete process.env.AWS_REGION;
    try {
      await fails(
        alice,
        ['login'],
        'no AWS region is set: set AWS_REGION or region in your AWS profile (any region reaches the token bucket; on EC2 the SDK asks the instance metadata)',
      );
    } finally {
      process.env.AWS_REGION = region;
    }
  });

  it('a missing bucket', async () => {
    await fails(
      await newAccessKey('alice'),
      ['login', '--from', 's3://no-such-bucket/x'],
      's3://no-such-bucket: no such bucket (check --from, REGTOKEN_FROM or your config file)',
    );
  });

  it('whoami shows what it found, then the problem (exit 1)', async () => {
    proxy.setRules([
      { method: 'GET', path: /alice\.json/, status: 403, times: Number.POSITIVE_INFINITY },
    ]);
    const r = await as(await newAccessKey('alice'), () => cli(['whoami', '--json'], clientEnv()));
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      caller: ARN.alice,
      principal: ARN.alice,
      tokenUrl: `${FROM}/${KEY.alice}`,
      registry: null,
      status: 'access-denied',
      error: { code: 'ACCESS_DENIED' },
    });
    expect(r.stderr).toMatch(/^regtoken: access denied reading /);
  });
});

describe('end to end: mint on AWS → regtoken token / login → the real registry', () => {
  let registry: RunningRegistry | undefined;
  afterAll(async () => registry?.stop());

  it('pushes and pulls with the token of each principal; another principal cannot read it', async () => {
    // The registry starts on the trust bundle fetched from the bucket, as a registry host does.
    const bundle = join(tmp, 'bundle.pem');
    const r = await s3.send(
      new GetObjectCommand({ Bucket: TOKEN_BUCKET, Key: 'trust/bundle.pem' }),
    );
    writeFileSync(bundle, (await r.Body?.transformToString()) ?? '');
    registry = await startRegistry({
      service: 'registry.test',
      issuer: 'regtoken',
      rootCertBundlePath: bundle,
    });
    // Clients reach the registry as 127.0.0.1:PORT: that is the host in the grants, so login
    // writes the Docker config entry a Docker client would look up.
    await putGrants(grants(registry.host));
    await mint();

    // `regtoken token` as the CI role, in its own process, credentials from its environment.
    const ci = await roleSession(ARN.ci, 'pipeline-1');
    const env = { ...awsChildEnv(proxy.endpoint), ...ci, ...clientEnv() };
    const token = await runRegtoken(['token'], env);
    expect(token.stderr).toBe('');
    expect(token.code).toBe(0);
    const ciToken = token.stdout.trim();
    expect(ciToken).toBe((await tokenDoc(KEY.ci)).token);
    const push = await pushImage(registry.host, 'team-a/app', ciToken);
    expect(push.stderr).toBe('');
    expect(push.ok).toBe(true);

    // `regtoken login` as the instance role: the Docker config entry works as a Bearer token.
    const web = await roleSession(ARN.web, 'i-0abc');
    const login = await runRegtoken(['login'], {
      ...awsChildEnv(proxy.endpoint),
      ...web,
      ...clientEnv(),
    });
    expect(login.code).toBe(0);
    const webToken = readDockerConfig().auths[registry.host].registrytoken;
    expect(
      (
        await registryRequest(registry.url, '/v2/team-a/app/manifests/latest', {
          token: webToken,
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).status,
    ).toBe(200);
    expect((await pullImage(registry.host, 'team-a/app', webToken)).ok).toBe(true);
    expect((await pushImage(registry.host, 'team-a/app', webToken)).ok).toBe(false); // pull only

    // The other principal: the bucket policy the run wrote refuses it the CI role's token.
    const policy = JSON.parse(proxy.policies.get(TOKEN_BUCKET) ?? 'null');
    expect(policy).not.toBeNull();
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: TOKEN_BUCKET, Key: KEY.ci }));
    const owner = tags.TagSet?.find((t) => t.Key === 'owner')?.Value;
    expect(owner).toBe(ARN.ci);
    const read = (principal: string, principalArn: string, key: string, ownerTag: string) =>
      decideS3({
        bucketPolicy: policy,
        bucket: TOKEN_BUCKET,
        bucketAccount: ACCOUNT,
        principal,
        principalArn,
        action: 's3:GetObject',
        key,
        ownerTag,
        identityPolicies: [allow('s3:GetObject', `arn:aws:s3:::${TOKEN_BUCKET}/tokens/*`)],
      });
    const ciSession = `arn:aws:sts::${ACCOUNT}:assumed-role/ci-runner/pipeline-1`;
    const webSession = `arn:aws:sts::${ACCOUNT}:assumed-role/ec2-web/i-0abc`;
    expect(await read(ciSession, ARN.ci, KEY.ci, ARN.ci)).toBe('Allowed');
    expect(await read(webSession, ARN.web, KEY.ci, ARN.ci)).toBe('ExplicitlyDenied');
    expect(await read(ARN.alice, ARN.alice, KEY.ci, ARN.ci)).toBe('ExplicitlyDenied');
    expect(await read(webSession, ARN.web, KEY.web, ARN.web)).toBe('Allowed');
    expect(existsSync(dockerConfig())).toBe(true);
  }, 120_000);
});

describe('README, "Get access to the registry", word for word', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.split('\n## Get access to the registry\n')[1]?.split('\n## ')[0] ?? '';
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  // The commands, without their trailing comments.
  const commands = block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);

  it('has the three steps: install, login, docker pull', () => {
    expect(commands).toEqual([
      'npm ci && npm install -g .',
      'regtoken login --from s3://TOKEN_BUCKET',
      'docker pull registry.example.com/team-a/app:latest',
    ]);
  });

  it('works against the AWS stand-in as a granted user', async () => {
    const repo = new URL('../..', import.meta.url).pathname;
    // 1. `npm ci` is how this suite is run (.ci/run); `npm install -g .` is run as written,
    //    into a scratch prefix instead of the machine's global one.
    const prefix = join(tmp, 'npm-global');
    const install = await run('npm', ['install', '-g', '.', '--prefix', prefix], {
      cwd: repo,
      env: { ...process.env, npm_config_cache: join(tmp, 'npm-cache') },
      timeoutMs: 120_000,
    });
    expect(install.code).toBe(0);
    expect(realpathSync(join(prefix, 'bin', 'regtoken'))).toBe(join(repo, 'bin', 'regtoken.js'));
    // …with the Docker credential helper and the kubelet provider, by the names clients run.
    for (const bin of ['docker-credential-regtoken', 'regtoken-credential-provider'])
      expect(realpathSync(join(prefix, 'bin', bin))).toBe(join(repo, 'bin', `${bin}.js`));

    // 2. The login line, with the bucket filled in, in its own process with only the user's
    //    environment: HOME, AWS credentials. (Run from source: the installed link runs the
    //    compiled copy of the same code, which `npm ci` builds.)
    await putGrants(grants('registry.example.com'));
    await mint();
    const [, login = '', pull = ''] = commands;
    const args = login.replace('TOKEN_BUCKET', TOKEN_BUCKET).split(' ').slice(1);
    const alice = await newAccessKey('alice');
    const env: NodeJS.ProcessEnv = { ...awsChildEnv(proxy.endpoint), ...alice, HOME: home };
    delete env.DOCKER_CONFIG;
    const r = await runRegtoken(args, env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const config = JSON.parse(readFileSync(join(home, '.docker', 'config.json'), 'utf8'));

    // 3. `docker pull HOST/REPO:TAG` (no Docker here): Docker looks up auths[HOST], which now
    //    holds a token granting pull on REPO.
    const [, host = '', path = ''] = /^docker pull ([^/]+)\/(.+):[^:]+$/.exec(pull) ?? [];
    const doc = await tokenDoc(KEY.alice);
    expect(config.auths[host]).toEqual({ registrytoken: doc.token });
    expect(doc.access).toContainEqual({ type: 'repository', name: path, actions: ['pull'] });
  }, 180_000);
});
