/**
 * No login step: the real clients get their credentials from regtoken's programs, through the
 * real registry and its token endpoint (regtoken realm), with tokens minted on the AWS stand-in.
 *
 * - skopeo with an auth file that only says `credHelpers: {HOST: "regtoken"}`: containers/image
 *   runs docker-credential-regtoken and pulls and pushes;
 * - the Docker engine (Debian docker.io) with `credHelpers` in its client config: pull and push
 *   with no `docker login`, and `docker login` / `docker logout` for the host succeed;
 * - the kubelet path: regtoken-credential-provider's response, as the kubelet passes it, in the
 *   CRI PullImage's AuthConfig over containerd's socket.
 *
 * The programs run by name from a PATH entry, as the installed package's bins would.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type RunningContainerd, startContainerd } from '../helpers/containerd.js';
import { type CredentialBins, credentialBins, runProgram } from '../helpers/credential-bins.js';
import { type CriClient, connectCri } from '../helpers/cri.js';
import { type DockerEngine, startDockerEngine } from '../helpers/docker.js';
import { ARN, FROM, KEY, type MintedWorld, startMintedWorld } from '../helpers/minted-world.js';
import { type RunningRealm, startRealm } from '../helpers/realm.js';
import { type RunningRegistry, startRegistry } from '../helpers/registry.js';
import { pullImage, pushImage } from '../helpers/skopeo.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const V1 = 'credentialprovider.kubelet.k8s.io/v1';

let world: MintedWorld;
let bins: CredentialBins;
let tmp: string;
let registry: RunningRegistry;
let realm: RunningRealm;
let engine: DockerEngine | undefined;
let containerd: RunningContainerd | undefined;
let cri: CriClient | undefined;
/** The CI role's token (pull and push team-a/app) and the instance role's (pull only). */
let ciToken = '';
let webToken = '';

const fail = (what: string): never => {
  throw new Error(what);
};
const ref = (repo: string, tag = 'latest') => `${registry.host}/${repo}:${tag}`;

beforeAll(async () => {
  tmp = await makeTempDir('credential-clients-');
  bins = await credentialBins(join(tmp, 'bin'));
  world = await startMintedWorld('registry.placeholder');
  // The registry and the endpoint start on the bundle the run published, as a registry host
  // does; the grants then name the registry as clients reach it (127.0.0.1:PORT).
  const bundle = join(tmp, 'bundle.pem');
  writeFileSync(bundle, await world.trustBundle());
  realm = await startRealm({ trust: bundle, service: 'registry.test', issuer: 'regtoken' });
  [registry, engine, containerd] = await Promise.all([
    startRegistry({
      service: 'registry.test',
      issuer: 'regtoken',
      rootCertBundlePath: bundle,
      realm: realm.tokenUrl,
    }),
    startDockerEngine(),
    startContainerd(),
  ]);
  cri = connectCri(containerd.socket);
  await world.mint(registry.host);
  ciToken = (await world.tokenDoc(KEY.ci)).token;
  webToken = (await world.tokenDoc(KEY.web)).token;
}, 240_000);

afterAll(async () => {
  cri?.close();
  await Promise.all([engine?.stop(), containerd?.stop(), registry?.stop(), realm?.stop()]);
  await world?.stop();
  await removeTempDir(tmp);
}, 60_000);

/**
 * What the helper needs in the client's environment: the programs on PATH, AWS credentials
 * and the stand-in's endpoint, a home for its cache, and the registry's token location.
 */
async function helperEnv(name: string, creds: Record<string, string>) {
  const home = join(tmp, name);
  mkdirSync(home, { recursive: true });
  return {
    ...world.childEnv(),
    ...creds,
    PATH: `${bins.dir}:${process.env.PATH}`,
    HOME: home,
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_CONFIG_HOME: join(home, '.config'),
    REGTOKEN_FROM: FROM,
    REGTOKEN_REGISTRY: registry.host,
  };
}

/** Token requests the endpoint answered for `sub`, by client. */
const issued = (sub: string) =>
  realm.logLines().filter((l) => l.sub === sub && l.outcome === 'issued');

describe('skopeo: an auth file with credHelpers and nothing else', () => {
  it('pushes and pulls as the CI role; the endpoint got the token from the helper', async () => {
    const env = await helperEnv('skopeo', await world.roleSession(ARN.ci, 'pipeline'));
    const auth = { credHelper: 'regtoken', env };
    const before = issued(ARN.ci).length;
    const push = await pushImage(registry.host, 'team-a/app', auth);
    expect(push.stderr).toBe('');
    expect(push.ok).toBe(true);
    const pull = await pullImage(registry.host, 'team-a/app', auth);
    expect(pull.stderr).toBe('');
    expect(pull.ok).toBe(true);
    // containers/image logs in with username + secret: GET with Basic auth at the realm.
    expect(issued(ARN.ci).length).toBeGreaterThan(before);
    expect(issued(ARN.ci).at(-1)).toMatchObject({ method: 'GET' });
    expect(realm.process.output()).not.toContain(ciToken);
  }, 120_000);

  it('a pull-only role is refused a push, and nothing at all without the helper on PATH', async () => {
    const env = await helperEnv('skopeo-web', await world.roleSession(ARN.web, 'i-0abc'));
    const auth = { credHelper: 'regtoken', env };
    expect((await pullImage(registry.host, 'team-a/app', auth)).ok).toBe(true);
    const push = await pushImage(registry.host, 'team-a/app', auth, undefined, { tag: 'web' });
    expect(push.ok).toBe(false);
    expect(push.stderr).toMatch(/denied|unauthorized/);
    const missing = await pullImage(registry.host, 'team-a/app', {
      credHelper: 'regtoken',
      env: { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    expect(missing.ok).toBe(false);
    expect(missing.stderr).toContain('docker-credential-regtoken');
  }, 120_000);
});

describe('Docker: credHelpers in the client config, no docker login', () => {
  it('pulls and pushes; docker login and docker logout for the host succeed', async () => {
    const docker = engine ?? fail('no dockerd');
    const env = await helperEnv('docker', await world.roleSession(ARN.ci, 'build'));
    const config = await docker.clientConfig({ credHelpers: { [registry.host]: 'regtoken' } });
    const run = (args: string[], input?: string) =>
      docker.docker(args, { config, env, ...(input === undefined ? {} : { input }) });

    const seeded = await pushImage(registry.host, 'team-a/app', ciToken);
    expect(seeded.ok).toBe(true);
    const pull = await run(['pull', ref('team-a/app')]);
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
    await docker.tag(ref('team-a/app'), ref('team-a/app', 'by-docker'));
    const push = await run(['push', ref('team-a/app', 'by-docker')]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);

    // `docker login HOST` with no flags takes the helper's credentials; with the token typed
    // in, the helper's store keeps nothing. Both log in at the endpoint and succeed.
    const login = await run(['login', registry.host]);
    expect(login.stdout).toContain('Login Succeeded');
    expect(login.code).toBe(0);
    const typed = await run(
      ['login', '-u', 'regtoken', '--password-stdin', registry.host],
      ciToken,
    );
    expect(typed.stdout).toContain('Login Succeeded');
    expect(typed.code).toBe(0);
    const logout = await run(['logout', registry.host]);
    expect(logout.stderr).toBe('');
    expect(logout.code).toBe(0);
    // Still no stored password, and pulls still work after the logout.
    const after = await run(['pull', ref('team-a/app', 'by-docker')]);
    expect(after.code).toBe(0);
    for (const r of [pull, push, login, typed, logout, after])
      expect(r.stdout + r.stderr).not.toContain(ciToken);
  }, 180_000);

  it('an identity that owns no token: the helper says why on stderr, the pull is refused', async () => {
    const docker = engine ?? fail('no dockerd');
    const env = await helperEnv('docker-carol', await world.userCreds('carol'));
    const config = await docker.clientConfig({ credHelpers: { [registry.host]: 'regtoken' } });
    const pull = await docker.docker(['pull', ref('team-a/app')], { config, env });
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toContain(
      'regtoken: no token for arn:aws:iam::123456789012:user/carol at s3://regtoken-tokens/tokens/123456789012/user/carol.json yet',
    );
  }, 120_000);
});

describe("Kubernetes: the provider's response in the CRI PullImage, as a kubelet passes it", () => {
  it("pulls with the instance role's token, and the request is refused in another apiVersion", async () => {
    const client = cri ?? fail('no CRI');
    const image = ref('team-a/app');
    const env = await helperEnv('node', await world.roleSession(ARN.web, 'i-0node'));
    const provide = (apiVersion: string) =>
      runProgram(
        bins.provider,
        [],
        JSON.stringify({ apiVersion, kind: 'CredentialProviderRequest', image }),
        env,
      );
    const r = await provide(V1);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const response = JSON.parse(r.stdout) as {
      cacheKeyType: string;
      auth: Record<string, { username: string; password: string }>;
    };
    expect(response.cacheKeyType).toBe('Registry');
    // The kubelet picks the auth entry whose key matches the image's registry.
    const entry = response.auth[registry.host] ?? fail('no auth for the registry');
    expect(entry).toEqual({ username: 'regtoken', password: webToken });
    const imageRef = await client.pullImage(image, {
      username: entry.username,
      password: entry.password,
    });
    expect(imageRef).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await client.imageStatus(image))?.id).toBe(imageRef);
    expect(issued(ARN.web).some((l) => l.method === 'POST')).toBe(true); // containerd POSTs

    const refused = await provide('credentialprovider.kubelet.k8s.io/v1beta1');
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(
      /^regtoken: unsupported apiVersion "credentialprovider\.kubelet\.k8s\.io\/v1beta1"/,
    );
  }, 120_000);
});
