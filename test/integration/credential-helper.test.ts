/**
 * docker-credential-regtoken and regtoken-credential-provider against the AWS stand-in, each
 * run as its own process by name from PATH, as Docker and the kubelet run them: as an IAM user
 * and as assumed-role sessions, with credentials from the environment and from AWS profiles.
 * Every AWS call goes through the fault proxy, which counts them (proxy.calls), so the tests
 * can say exactly which calls a cold and a warm `get` make. The Lambda handler mints the tokens
 * into the token bucket first; moto evaluates no bucket policy (see client.test.ts).
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TokenCache } from '../../lambda/adapters/token-cache.js';
import { decodeClaims } from '../../lambda/core/token.js';
import { type CredentialBins, credentialBins, runProgram } from '../helpers/credential-bins.js';
import {
  ACCOUNT,
  ARN,
  type Creds,
  FROM,
  KEY,
  type MintedWorld,
  startMintedWorld,
} from '../helpers/minted-world.js';
import { runRegtoken } from '../helpers/regtoken.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const HOST = 'registry.test';
const NOT_FOUND = 'credentials not found in native keychain\n';
const V1 = 'credentialprovider.kubelet.k8s.io/v1';

let world: MintedWorld;
let bins: CredentialBins;
let tmp: string;
let homes = 0;
/** Every token minted so far: none may ever show in an error or warning. */
const minted = new Set<string>();

beforeAll(async () => {
  tmp = await makeTempDir('credential-helper-');
  bins = await credentialBins(join(tmp, 'bin'));
  world = await startMintedWorld(HOST);
}, 120_000);

afterAll(async () => {
  await world?.stop();
  await removeTempDir(tmp);
});

/** A fresh user: own HOME (so own ~/.cache/regtoken and ~/.config/regtoken). */
function freshHome(): string {
  homes += 1;
  const home = join(tmp, `home-${homes}`);
  mkdirSync(home, { recursive: true });
  return home;
}

/** The environment Docker would give the helper: the user's, with AWS credentials. */
const userEnv = (home: string, creds: Partial<Creds>, extra: NodeJS.ProcessEnv = {}) => ({
  ...world.childEnv(),
  ...creds,
  HOME: home,
  REGTOKEN_FROM: FROM,
  REGTOKEN_REGISTRY: HOST,
  ...extra,
});

async function tokenOf(key: string): Promise<string> {
  const { token } = await world.tokenDoc(key);
  minted.add(token);
  return token;
}

/** Runs `program ARGS` with `stdin`, and returns its result and the AWS calls it made. */
async function counted(program: string, args: string[], stdin: string, env: NodeJS.ProcessEnv) {
  const before = world.proxy.calls.length;
  const r = await runProgram(program, args, stdin, env);
  for (const t of minted) expect(r.stderr).not.toContain(t);
  return { ...r, calls: world.proxy.calls.slice(before) };
}
const get = (env: NodeJS.ProcessEnv, server = HOST) => counted(bins.helper, ['get'], server, env);
const answer = (token: string, server = HOST) =>
  `${JSON.stringify({ ServerURL: server, Username: 'regtoken', Secret: token })}\n`;
const S3_GET = (key: string) => `S3 GET /regtoken-tokens/${key}`;
const cacheOf = (home: string) => new TokenCache(join(home, '.cache', 'regtoken'));

describe("get: the caller's own token, then the cache", () => {
  it('as an IAM user: one STS and one S3 call, then none', async () => {
    const home = freshHome();
    const env = userEnv(home, await world.userCreds('alice'));
    const token = await tokenOf(KEY.alice);
    const cold = await get(env);
    expect(cold.stderr).toBe('');
    expect(cold).toMatchObject({ code: 0, stdout: answer(token) });
    expect(cold.calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.alice)]);
    const warm = await get(env);
    expect(warm).toMatchObject({ code: 0, stdout: answer(token), stderr: '', calls: [] });
    // Docker sends the host as it was typed, a URL for `docker login https://…`.
    const url = await get(env, `https://${HOST}`);
    expect(url).toMatchObject({ code: 0, stdout: answer(token, `https://${HOST}`), calls: [] });
  }, 60_000);

  it('as assumed-role sessions: the token is cached per role, not per session', async () => {
    const home = freshHome();
    const token = await tokenOf(KEY.ci);
    const first = userEnv(home, await world.roleSession(ARN.ci, 'job-1'));
    expect((await get(first)).calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.ci)]);
    expect(await get(first)).toMatchObject({ code: 0, stdout: answer(token), calls: [] });
    // A new session of the same role (the next CI job): STS says who it is, the token is cached.
    const second = userEnv(home, await world.roleSession(ARN.ci, 'job-2'));
    const next = await get(second);
    expect(next).toMatchObject({ code: 0, stdout: answer(token), stderr: '' });
    expect(next.calls).toEqual(['STS GetCallerIdentity']);
    expect((await get(second)).calls).toEqual([]);
    const files = readdirSync(join(home, '.cache', 'regtoken', 'tokens'));
    expect(files).toHaveLength(1);
    expect(readdirSync(join(home, '.cache', 'regtoken', 'identities'))).toHaveLength(2);
  }, 60_000);

  it("a role with a path: the session finds its role's token", async () => {
    const env = userEnv(freshHome(), await world.roleSession(ARN.web, 'i-0abc'));
    expect(await get(env)).toMatchObject({ code: 0, stdout: answer(await tokenOf(KEY.web)) });
  }, 60_000);

  it("never answers one identity with another's token", async () => {
    const home = freshHome(); // one machine user, two AWS identities
    const alice = userEnv(home, await world.userCreds('alice'));
    const bob = userEnv(home, await world.userCreds('bob'));
    const [aliceToken, bobToken] = [await tokenOf(KEY.alice), await tokenOf(KEY.bob)];
    expect((await get(alice)).stdout).toBe(answer(aliceToken));
    const asBob = await get(bob);
    expect(asBob.stdout).toBe(answer(bobToken));
    expect(asBob.calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.bob)]);
    expect(await get(alice)).toMatchObject({ stdout: answer(aliceToken), calls: [] });
    expect(await get(bob)).toMatchObject({ stdout: answer(bobToken), calls: [] });
  }, 60_000);
});

describe('the cache file', () => {
  /** The cached entry of the CI role, replaced by `token` (as if cached long ago). */
  async function plant(home: string, token: string): Promise<void> {
    const exp = decodeClaims(token)?.exp ?? 0;
    await cacheOf(home).putToken({
      owner: `arn:aws:iam::${ACCOUNT}:role/ci-runner`,
      host: HOST,
      from: FROM,
      principal: ARN.ci,
      token,
      expiresAt: exp,
      skewSeconds: 0,
    });
  }
  const cached = async (home: string) =>
    (await cacheOf(home).token(`arn:aws:iam::${ACCOUNT}:role/ci-runner`, HOST, FROM))?.token;

  it.each([
    ['4 minutes left (within 5 minutes of expiry)', 56 * 60_000],
    ['expired an hour ago', 2 * 3600_000],
  ])(
    'an entry with %s is refreshed',
    async (_what, age) => {
      const minutesAgo = new Date(Date.now() - age);
      await world.mint(HOST, () => minutesAgo);
      const old = await tokenOf(KEY.ci);
      await world.mint(HOST);
      const fresh = await tokenOf(KEY.ci);
      expect(fresh).not.toBe(old);
      const home = freshHome();
      const env = userEnv(home, await world.roleSession(ARN.ci, 'job'));
      expect((await get(env)).stdout).toBe(answer(fresh));
      await plant(home, old);
      expect(await cached(home)).toBe(old);
      const refreshed = await get(env);
      expect(refreshed).toMatchObject({ code: 0, stdout: answer(fresh), stderr: '' });
      expect(refreshed.calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.ci)]);
      expect(await cached(home)).toBe(fresh);
      expect((await get(env)).calls).toEqual([]);
    },
    120_000,
  );

  it('a corrupt token or identity file is ignored and replaced', async () => {
    const home = freshHome();
    const env = userEnv(home, await world.roleSession(ARN.ci, 'job'));
    const token = await tokenOf(KEY.ci);
    await get(env);
    const dir = join(home, '.cache', 'regtoken');
    const [tokenFile] = readdirSync(join(dir, 'tokens')).map((f) => join(dir, 'tokens', f));
    const [idFile] = readdirSync(join(dir, 'identities')).map((f) => join(dir, 'identities', f));
    if (!tokenFile || !idFile) throw new Error('no cache files');
    writeFileSync(tokenFile, readFileSync(tokenFile, 'utf8').slice(0, 50));
    const afterToken = await get(env);
    expect(afterToken).toMatchObject({ code: 0, stdout: answer(token), stderr: '' });
    expect(afterToken.calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.ci)]);
    expect(JSON.parse(readFileSync(tokenFile, 'utf8')).token).toBe(token);
    writeFileSync(idFile, '\0\0\0 not json');
    const afterIdentity = await get(env);
    expect(afterIdentity).toMatchObject({ code: 0, stdout: answer(token) });
    expect(afterIdentity.calls).toEqual(['STS GetCallerIdentity']);
    expect(JSON.parse(readFileSync(idFile, 'utf8')).caller).toBe(
      `arn:aws:sts::${ACCOUNT}:assumed-role/ci-runner/job`,
    );
    expect((await get(env)).calls).toEqual([]);
  }, 60_000);

  it('concurrent gets all answer, and leave whole files (0600) and no temporary ones', async () => {
    const home = freshHome();
    const env = userEnv(home, await world.roleSession(ARN.ci, 'job'));
    const token = await tokenOf(KEY.ci);
    const results = await Promise.all(Array.from({ length: 6 }, () => get(env)));
    for (const r of results)
      expect(r).toMatchObject({ code: 0, stdout: answer(token), stderr: '' });
    const dir = join(home, '.cache', 'regtoken');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const sub of ['tokens', 'identities']) {
      const names = readdirSync(join(dir, sub));
      expect(names).toHaveLength(1);
      for (const n of names) {
        expect(statSync(join(dir, sub, n)).mode & 0o777).toBe(0o600);
        expect(() => JSON.parse(readFileSync(join(dir, sub, n), 'utf8'))).not.toThrow();
      }
    }
    expect(await cached(home)).toBe(token);
    expect((await get(env)).calls).toEqual([]);
  }, 60_000);
});

describe('the rest of the protocol', () => {
  it.each(['docker.io', 'https://index.docker.io/v1/', 'registry.test:5000', 'ghcr.io'])(
    'a host it does not serve (%s): the exact "not found" answer, exit 1, no AWS call',
    async (server) => {
      const r = await get(userEnv(freshHome(), await world.userCreds('alice')), server);
      expect(r).toMatchObject({ code: 1, stdout: NOT_FOUND, stderr: '', calls: [] });
    },
    60_000,
  );

  it('store and erase succeed and keep nothing; list lists the configured hosts', async () => {
    const home = freshHome();
    mkdirSync(join(home, '.config', 'regtoken'), { recursive: true });
    writeFileSync(
      join(home, '.config', 'regtoken', 'config.json'),
      JSON.stringify({ registries: { 'other.test:5000': { from: 's3://elsewhere' } } }),
    );
    const env = userEnv(home, await world.userCreds('alice'));
    const creds = JSON.stringify({ ServerURL: HOST, Username: 'regtoken', Secret: 'typed' });
    for (const [action, input] of [
      ['store', creds],
      ['erase', HOST],
    ] as const)
      expect(await counted(bins.helper, [action], input, env)).toMatchObject({
        code: 0,
        stdout: '',
        stderr: '',
        calls: [],
      });
    expect(existsSync(join(home, '.cache'))).toBe(false);
    const list = await counted(bins.helper, ['list'], '', env);
    expect(list).toMatchObject({ code: 0, stderr: '', calls: [] });
    expect(JSON.parse(list.stdout)).toEqual({ 'other.test:5000': 'regtoken', [HOST]: 'regtoken' });
    const version = await counted(bins.helper, ['version'], '', env);
    expect(version.stdout).toMatch(/^docker-credential-regtoken \(regtoken\) \d+\.\d+\.\d+\n$/);
  }, 60_000);

  it('a bad action or config: one line on stderr that says what to do', async () => {
    const home = freshHome();
    const env = userEnv(home, await world.userCreds('alice'));
    const bad = await counted(bins.helper, ['fetch'], HOST, env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'regtoken: unknown action "fetch": docker-credential-regtoken takes get, store, erase, list, version\nUsage: docker-credential-regtoken get|store|erase|list|version\n',
    );
    mkdirSync(join(home, '.config', 'regtoken'), { recursive: true });
    const config = join(home, '.config', 'regtoken', 'config.json');
    writeFileSync(config, '{"registries": {"registry.test": {"form": "s3://x"}}}');
    const broken = await get(env);
    expect(broken).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `regtoken: ${config}: registries["registry.test"]: unknown key "form" (allowed: from, profile)\n`,
      calls: [],
    });
  }, 60_000);
});

describe('identities that own no token: the same one line as regtoken login', () => {
  const provide = (env: NodeJS.ProcessEnv) =>
    counted(
      bins.provider,
      [],
      JSON.stringify({
        apiVersion: V1,
        kind: 'CredentialProviderRequest',
        image: `${HOST}/team-a/app`,
      }),
      env,
    );

  it.each([
    [
      'an IAM user not in the grants (no token)',
      () => world.userCreds('carol'),
      `regtoken: no token for arn:aws:iam::${ACCOUNT}:user/carol at ${FROM}/tokens/${ACCOUNT}/user/carol.json yet: arn:aws:iam::${ACCOUNT}:user/carol is not in the grants file, or the minter has not run since it was added\n`,
    ],
    [
      'a session of a role not in the grants (no token)',
      () => world.roleSession(`arn:aws:iam::${ACCOUNT}:role/regtoken-minter`, 'job-9'),
      `regtoken: no token for arn:aws:sts::${ACCOUNT}:assumed-role/regtoken-minter/job-9 at ${FROM}/tokens/${ACCOUNT}/role/regtoken-minter.json yet: role regtoken-minter in account ${ACCOUNT} is not in the grants file, or the minter has not run since it was added\n`,
    ],
    [
      'an identity that is neither a user nor a role session',
      async () => ({ AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' }),
      `regtoken: arn:aws:sts::${ACCOUNT}:user/moto is neither an IAM user nor a role session, so it owns no registry token\n`,
    ],
  ])(
    '%s',
    async (_what, creds, line) => {
      const env = userEnv(freshHome(), await creds());
      const login = await runRegtoken(['login'], { ...env, DOCKER_CONFIG: join(tmp, 'unused') });
      expect(login).toMatchObject({ code: 1, stdout: '', stderr: line });
      expect(await get(env)).toMatchObject({ code: 1, stdout: '', stderr: line });
      expect(await provide(env)).toMatchObject({ code: 1, stdout: '', stderr: line });
    },
    60_000,
  );
});

describe('AWS profiles and regions', () => {
  /** AWS config and credentials files in `home`, and the regtoken config routing HOST. */
  function files(home: string, config: string, credentials: string, route: object) {
    writeFileSync(join(home, 'aws-config'), config);
    writeFileSync(join(home, 'aws-credentials'), credentials);
    mkdirSync(join(home, '.config', 'regtoken'), { recursive: true });
    writeFileSync(
      join(home, '.config', 'regtoken', 'config.json'),
      JSON.stringify({ registries: { [HOST]: { from: FROM, ...route } } }),
    );
    const env: NodeJS.ProcessEnv = {
      ...world.childEnv(),
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'aws-credentials'),
    };
    delete env.AWS_REGION;
    delete env.AWS_DEFAULT_REGION;
    return env;
  }
  const keys = (c: Creds) =>
    `aws_access_key_id = ${c.AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${c.AWS_SECRET_ACCESS_KEY}\n`;

  it("the registry's profile: its keys and its region (no AWS_REGION), then no call", async () => {
    const home = freshHome();
    const env = files(
      home,
      '[profile reader]\nregion = us-east-1\n',
      `[reader]\n${keys(await world.userCreds('alice'))}`,
      { profile: 'reader' },
    );
    const token = await tokenOf(KEY.alice);
    const cold = await get(env);
    expect(cold).toMatchObject({ code: 0, stdout: answer(token), stderr: '' });
    expect(cold.calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.alice)]);
    expect((await get(env)).calls).toEqual([]);
  }, 60_000);

  it('an assume-role profile: a warm get makes no call at all (not even AssumeRole)', async () => {
    const home = freshHome();
    const env = files(
      home,
      `[profile deploy]\nrole_arn = ${ARN.ci}\nsource_profile = base\nregion = us-east-1\n`,
      `[base]\n${keys(await world.userCreds('alice'))}`,
      { profile: 'deploy' },
    );
    const token = await tokenOf(KEY.ci);
    const cold = await get(env);
    expect(cold).toMatchObject({ code: 0, stdout: answer(token), stderr: '' });
    expect(cold.calls).toEqual(['STS AssumeRole', 'STS GetCallerIdentity', S3_GET(KEY.ci)]);
    expect((await get(env)).calls).toEqual([]);
    // The provider shares the cache: the same answer, no call.
    const request = { apiVersion: V1, kind: 'CredentialProviderRequest', image: `${HOST}/x` };
    const provided = await counted(bins.provider, [], JSON.stringify(request), env);
    expect(provided.calls).toEqual([]);
    expect(JSON.parse(provided.stdout).auth[HOST].password).toBe(token);
  }, 60_000);

  it('credential_process: the SDK resolves the credentials (locally), the key id names them', async () => {
    const home = freshHome();
    const alice = await world.userCreds('alice');
    const script = join(home, 'creds.sh');
    writeFileSync(
      script,
      `#!/bin/sh\necho '${JSON.stringify({ Version: 1, AccessKeyId: alice.AWS_ACCESS_KEY_ID, SecretAccessKey: alice.AWS_SECRET_ACCESS_KEY })}'\n`,
      { mode: 0o755 },
    );
    const env = files(
      home,
      `[profile proc]\ncredential_process = ${script}\nregion = us-east-1\n`,
      '',
      {
        profile: 'proc',
      },
    );
    const token = await tokenOf(KEY.alice);
    const cold = await get(env);
    expect(cold).toMatchObject({ code: 0, stdout: answer(token), stderr: '' });
    expect(cold.calls).toEqual(['STS GetCallerIdentity', S3_GET(KEY.alice)]);
    expect((await get(env)).calls).toEqual([]);
  }, 60_000);

  it('no region in the environment, the profile or the instance metadata: one line', async () => {
    const env = files(
      freshHome(),
      '[profile reader]\noutput = json\n',
      `[reader]\n${keys(await world.userCreds('alice'))}`,
      { profile: 'reader' },
    );
    expect(env.AWS_EC2_METADATA_DISABLED).toBe('true');
    expect(await get(env)).toMatchObject({
      code: 1,
      stdout: '',
      stderr:
        'regtoken: no AWS region is set: set AWS_REGION or region in your AWS profile (any region reaches the token bucket; on EC2 the SDK asks the instance metadata)\n',
    });
  }, 60_000);

  it('on EC2, the region from the instance metadata (IMDSv2, a loopback stand-in)', async () => {
    // IMDS cannot be reached here; this stand-in answers as it does, so the test shows that the
    // SDK's own region provider asks it when nothing else sets a region.
    const seen: string[] = [];
    const imds: Server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'PUT' && req.url === '/latest/api/token') res.end('imds-session');
      else if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session') res.writeHead(401).end();
      else if (req.url === '/latest/meta-data/placement/region') res.end('us-east-1');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    try {
      const env = files(freshHome(), '', '', {});
      delete env.AWS_EC2_METADATA_DISABLED;
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
      Object.assign(env, await world.userCreds('alice'));
      const r = await get(env);
      expect(r).toMatchObject({ code: 0, stdout: answer(await tokenOf(KEY.alice)), stderr: '' });
      expect(seen).toEqual(['PUT /latest/api/token', 'GET /latest/meta-data/placement/region']);
    } finally {
      await new Promise<void>((r) => imds.close(() => r()));
    }
  }, 60_000);
});

describe('regtoken login --helper', () => {
  it('sets credHelpers, routes the host in the config file, and leaves a warm cache', async () => {
    const home = freshHome();
    const creds = await world.roleSession(ARN.ci, 'laptop');
    const dockerDir = join(home, '.docker');
    mkdirSync(dockerDir);
    writeFileSync(
      join(dockerDir, 'config.json'),
      JSON.stringify({
        auths: { [HOST]: { registrytoken: 'stale' }, 'ghcr.io': {} },
        credsStore: 'pass',
      }),
    );
    const token = await tokenOf(KEY.ci);
    const login = await runRegtoken(['login', '--helper'], {
      ...userEnv(home, creds),
      PATH: `${bins.dir}:${process.env.PATH}`,
    });
    expect(login.code).toBe(0);
    expect(login.stderr).toBe(
      `warning: removed the stored credentials for ${HOST} from ${dockerDir}/config.json (registrytoken): Docker asks docker-credential-regtoken instead\n`,
    );
    const [first, ...rest] = login.stdout.split('\n');
    expect(first).toMatch(
      new RegExp(
        `^Docker asks docker-credential-regtoken for ${HOST} from now on \\(as ${ARN.ci}\\); the current token expires .+ UTC \\(in (\\d+m( \\d+s)?|1h)\\) and is renewed by itself\\.$`,
      ),
    );
    expect(rest).toEqual([
      `Docker config: ${dockerDir}/config.json`,
      `regtoken config: ${home}/.config/regtoken/config.json (registries["${HOST}"])`,
      '',
    ]);
    expect(JSON.parse(readFileSync(join(dockerDir, 'config.json'), 'utf8'))).toEqual({
      auths: { 'ghcr.io': {} },
      credsStore: 'pass',
      credHelpers: { [HOST]: 'regtoken' },
    });
    const config = join(home, '.config', 'regtoken', 'config.json');
    expect(JSON.parse(readFileSync(config, 'utf8'))).toEqual({
      registries: { [HOST]: { from: FROM } },
    });
    expect(statSync(config).mode & 0o777).toBe(0o600);
    // Docker's environment need not know the location: the config file routes the host, and
    // the first pull is answered from the cache.
    const env = { ...userEnv(home, creds), REGTOKEN_FROM: '', REGTOKEN_REGISTRY: '' };
    expect(await get(env)).toMatchObject({ code: 0, stdout: answer(token), calls: [] });
    const again = await runRegtoken(['login', '--helper'], userEnv(home, creds));
    expect(again.stdout).toContain('(already up to date)');
    expect(again.stdout).toContain('(already routes this registry)');
    expect(again.stderr).toContain('docker-credential-regtoken is not on PATH');
  }, 60_000);
});

describe("regtoken-credential-provider (the kubelet's exec protocol)", () => {
  const request = (fields: object) =>
    JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', ...fields });

  it.each([
    ['an IAM user', () => world.userCreds('alice'), KEY.alice],
    ['an instance role session', () => world.roleSession(ARN.web, 'i-0abc'), KEY.web],
  ])(
    'as %s: a v1 response with half the remaining lifetime',
    async (_what, creds, key) => {
      const env = userEnv(freshHome(), await creds());
      const before = Date.now() / 1000;
      const r = await counted(bins.provider, [], request({ image: `${HOST}/team-a/app:1` }), env);
      const after = Date.now() / 1000;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const response = JSON.parse(r.stdout);
      expect(Object.keys(response)).toEqual([
        'apiVersion',
        'kind',
        'cacheKeyType',
        'cacheDuration',
        'auth',
      ]);
      expect(response).toMatchObject({
        apiVersion: V1,
        kind: 'CredentialProviderResponse',
        cacheKeyType: 'Registry',
        auth: { [HOST]: { username: 'regtoken', password: await tokenOf(key) } },
      });
      // Half the token's remaining lifetime when the provider ran, as Go prints a duration
      // (the token was minted earlier in the run: its age depends on the machine's load).
      const duration = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(response.cacheDuration);
      if (!duration)
        throw new Error(`cacheDuration ${response.cacheDuration} is not a Go duration`);
      const [, h = '0', m = '0', s = '0'] = duration;
      const seconds = Number(h) * 3600 + Number(m) * 60 + Number(s);
      const exp = decodeClaims(await tokenOf(key))?.exp ?? 0;
      // One second either side: whole seconds, and moto's clock as AWS's.
      expect(seconds).toBeGreaterThanOrEqual(Math.floor((exp - after) / 2) - 1);
      expect(seconds).toBeLessThanOrEqual(Math.ceil((exp - before) / 2) + 1);
      expect(seconds).toBeGreaterThan(20 * 60); // an hour-long token, not long minted
      expect(r.calls).toHaveLength(2);
    },
    60_000,
  );

  it.each([
    [
      'another apiVersion',
      request({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1', image: `${HOST}/x` }),
      `regtoken: unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1beta1": regtoken-credential-provider speaks ${V1}; set apiVersion: ${V1} for it in the kubelet's CredentialProviderConfig\n`,
    ],
    ['no image', request({}), 'regtoken: the CredentialProviderRequest has no image\n'],
    [
      'an image of another registry',
      request({ image: 'docker.io/library/nginx:1' }),
      `regtoken: image "docker.io/library/nginx:1" is on registry docker.io, which regtoken does not serve (it serves ${HOST}): match only those hosts in matchImages of the kubelet's CredentialProviderConfig\n`,
    ],
    ['not JSON', 'image=x', /^regtoken: stdin is not a CredentialProviderRequest \(not JSON\)/],
  ])(
    'refuses %s: one line, exit 1, no AWS call',
    async (_what, stdin, message) => {
      const env = userEnv(freshHome(), await world.userCreds('alice'));
      const r = await counted(bins.provider, [], stdin, env);
      expect(r).toMatchObject({ code: 1, stdout: '', calls: [] });
      if (typeof message === 'string') expect(r.stderr).toBe(message);
      else expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    },
    60_000,
  );
});

describe("the package's bins (the compiled code `npm ci` builds)", () => {
  const ROOT = new URL('../..', import.meta.url).pathname;
  it.each([
    [
      'docker-credential-regtoken',
      ['version'],
      /^docker-credential-regtoken \(regtoken\) \d+\.\d+\.\d+\n$/,
    ],
    [
      'regtoken-credential-provider',
      ['--version'],
      /^regtoken-credential-provider \(regtoken\) \d+\.\d+\.\d+\n$/,
    ],
  ])('%s runs', async (bin, args, out) => {
    const r = await runProgram(process.execPath, [join(ROOT, 'bin', `${bin}.js`), ...args], '', {});
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(out);
  });

  it('docker-credential-regtoken answers "not found" for a host it does not serve', async () => {
    const r = await runProgram(
      process.execPath,
      [join(ROOT, 'bin', 'docker-credential-regtoken.js'), 'get'],
      'docker.io',
      { HOME: freshHome() },
    );
    expect(r).toMatchObject({ code: 1, stdout: NOT_FOUND, stderr: '' });
  });
});
