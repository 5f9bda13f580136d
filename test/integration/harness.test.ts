import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { applyAwsTestEnv, awsChildEnv, type Moto, startMoto } from '../helpers/moto.js';
import { buildTestImage, readTestImage } from '../helpers/oci.js';
import {
  livingProcessesInGroups,
  requireBinary,
  run,
  startedProcessGroups,
} from '../helpers/process.js';
import { type RunningRegistry, startRegistry } from '../helpers/registry.js';
import {
  listTags,
  pullImage,
  pushImage,
  registryGet,
  skopeo,
  skopeoBlobCacheIsolated,
} from '../helpers/skopeo.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import {
  type AccessEntry,
  createSigningKey,
  libtrustKeyId,
  signTestToken,
  type TestSigningKey,
} from '../helpers/tokens.js';

const SERVICE = 'registry.test';
const ISSUER = 'regtoken-harness';
const REPO = 'team-a/app';
const PULL_PUSH: AccessEntry[] = [{ type: 'repository', name: REPO, actions: ['pull', 'push'] }];

/** Paths the registry's filesystem driver uses for a repository's manifests. */
const repoDir = (registry: RunningRegistry, repo: string): string =>
  path.join(registry.storageDir, 'docker', 'registry', 'v2', 'repositories', repo);

describe('registry + skopeo harness', () => {
  let workDir = '';
  let trusted: TestSigningKey;
  let untrusted: TestSigningKey;
  let registry: RunningRegistry | undefined;
  const reg = (): RunningRegistry => {
    if (registry === undefined) throw new Error('registry not started');
    return registry;
  };
  const token = (access: AccessEntry[], key: TestSigningKey = trusted, kid?: string): string =>
    signTestToken(
      key.privateKey,
      { issuer: ISSUER, service: SERVICE, subject: 'harness', access },
      kid === undefined ? {} : { kid },
    );

  beforeAll(async () => {
    workDir = await makeTempDir('harness');
    [trusted, untrusted] = await Promise.all([
      createSigningKey(workDir, 'trusted'),
      createSigningKey(workDir, 'untrusted'),
    ]);
    registry = await startRegistry({
      service: SERVICE,
      issuer: ISSUER,
      rootCertBundlePath: trusted.certPath,
    });
  }, 30_000);

  afterAll(async () => {
    const storageDir = registry?.storageDir;
    await registry?.stop();
    if (storageDir !== undefined) expect(existsSync(storageDir)).toBe(false);
    await removeTempDir(workDir);
  });

  it('derives libtrust key ids in the 12x4 base32 format, distinct per key', () => {
    expect(trusted.kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    expect(untrusted.kid).not.toBe(trusted.kid);
    expect(libtrustKeyId(trusted.publicKey)).toBe(trusted.kid);
    expect(libtrustKeyId(untrusted.publicKey)).not.toBe(trusted.kid);
  });

  it('starts the registry with token auth: GET /v2/ is a Bearer challenge', async () => {
    const res = await fetch(`${reg().url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer realm="http://127.0.0.1:1/token",service="${SERVICE}"`,
    );
    expect(reg().host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('builds a valid OCI layout with stable digests', async () => {
    const a = await buildTestImage(path.join(workDir, 'img-a'));
    const b = await buildTestImage(path.join(workDir, 'img-b'));
    const c = await buildTestImage(path.join(workDir, 'img-c'), { content: 'other\n' });
    const [infoA, infoB, infoC] = await Promise.all([a, b, c].map(readTestImage));
    expect(infoA?.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(infoA).toEqual(infoB);
    expect(infoC?.manifestDigest).not.toBe(infoA?.manifestDigest);
    // skopeo itself must accept the layout (this validates tar, gzip, config and manifest).
    const skopeo = await requireBinary('skopeo', 'apt-get install -y docker-registry skopeo');
    const inspected = await run(skopeo, ['--insecure-policy', 'inspect', `oci:${a}:latest`], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workDir },
      timeoutMs: 20_000,
    });
    expect(inspected.stderr).toBe('');
    expect(JSON.parse(inspected.stdout)).toMatchObject({
      Digest: infoA?.manifestDigest,
      Os: 'linux',
    });
  }, 30_000);

  it('pushes to team-a/app with a pull+push token', async () => {
    const res = await pushImage(reg().host, REPO, token(PULL_PUSH));
    expect({ ok: res.ok, stderr: res.stderr }).toEqual({ ok: true, stderr: '' });
    expect(existsSync(path.join(repoDir(reg(), REPO), '_manifests', 'tags', 'latest'))).toBe(true);
  }, 30_000);

  it('pulls it back', async () => {
    const res = await pullImage(reg().host, REPO, token(PULL_PUSH));
    expect({ ok: res.ok, stderr: res.stderr }).toEqual({ ok: true, stderr: '' });
  }, 30_000);

  it('lists the tag', async () => {
    const res = await listTags(reg().host, REPO, token(PULL_PUSH));
    expect(res.ok).toBe(true);
    expect(JSON.parse(res.stdout)).toEqual({
      Repository: `${reg().host}/${REPO}`,
      Tags: ['latest'],
    });
  }, 30_000);

  it('refuses a push to a repository the token does not cover', async () => {
    const res = await pushImage(reg().host, 'other/app', token(PULL_PUSH));
    expect(res.ok).toBe(false);
    expect(res.stderr).toMatch(/authentication required|unauthorized|denied/i);
    expect(existsSync(repoDir(reg(), 'other/app'))).toBe(false);
  }, 30_000);

  it('keeps skopeo runs independent (no cross-repository probes from a shared blob cache)', async () => {
    const before = reg().logs().length;
    const teamB = token([{ type: 'repository', name: 'team-b/app', actions: ['pull', 'push'] }]);
    const res = await pushImage(reg().host, 'team-b/app', teamB);
    expect(res.ok).toBe(true);
    const requests = reg()
      .logs()
      .slice(before)
      .split('\n')
      .filter((line) => line.startsWith('127.0.0.1 - - '));
    expect(requests.some((line) => line.includes('PUT /v2/team-b/app/manifests/latest'))).toBe(
      true,
    );
    if (process.getuid?.() !== 0 || (await skopeoBlobCacheIsolated())) {
      // Only the anonymous /v2/ ping may be refused; nothing touches team-a/app.
      expect(requests.filter((line) => / 401 /.test(line) && !line.includes('GET /v2/ '))).toEqual(
        [],
      );
      expect(requests.filter((line) => line.includes('/v2/team-a/'))).toEqual([]);
    }
  }, 30_000);

  it('runs skopeo hermetically: config, auth and certs come from its sandbox only', async () => {
    const res = await skopeo((sandbox) => [
      '--debug',
      'list-tags',
      '--authfile',
      sandbox.authFile,
      '--cert-dir',
      sandbox.certDir,
      '--tls-verify=false',
      '--registry-token',
      token(PULL_PUSH),
      `docker://${reg().host}/${REPO}`,
    ]);
    expect(res.ok).toBe(true);
    const paths = [
      ...res.stderr.matchAll(/(?:configuration|found in|keys in|directory) \\?"?(\/[^\s"\\]+)/g),
    ]
      .map((m) => m[1] ?? '')
      .filter((p) => p !== '');
    expect(paths.length).toBeGreaterThanOrEqual(4);
    const outside = paths.filter((p) => !p.startsWith(path.join(tmpdir(), 'regtoken-skopeo-')));
    // Non-root users cannot hide the /etc/containers/registries.conf.d drop-ins.
    const tolerated = (await skopeoBlobCacheIsolated())
      ? []
      : ['/etc/containers/registries.conf.d/'];
    expect(outside.filter((p) => !tolerated.some((t) => p.startsWith(t)))).toEqual([]);
    // Only loopback is ever contacted.
    const urls = [...res.stderr.matchAll(/msg="(?:GET|HEAD|PUT|POST|PATCH) (\S+)"/g)].map(
      (m) => m[1],
    );
    expect(urls.length).toBeGreaterThan(0);
    expect(
      urls.filter(
        (u) => !u?.startsWith(`http://${reg().host}/`) && !u?.startsWith(`https://${reg().host}/`),
      ),
    ).toEqual([]);
  }, 30_000);

  it('refuses a pull-only token for a push', async () => {
    const pullOnly = token([{ type: 'repository', name: REPO, actions: ['pull'] }]);
    const res = await pushImage(reg().host, REPO, pullOnly, undefined, { tag: 'v2' });
    expect(res.ok).toBe(false);
    expect((await listTags(reg().host, REPO, pullOnly)).stdout).not.toContain('v2');
  }, 30_000);

  it('refuses tokens signed by a key outside the rootcertbundle', async () => {
    const ownKid = token(PULL_PUSH, untrusted);
    const forgedKid = token(PULL_PUSH, untrusted, trusted.kid);
    for (const bad of [ownKid, forgedKid]) {
      const pulled = await pullImage(reg().host, REPO, bad);
      expect(pulled.ok).toBe(false);
      expect(pulled.stderr).toMatch(/authentication required|unauthorized/i);
      expect((await registryGet(reg().url, `/v2/${REPO}/tags/list`, bad)).status).toBe(401);
    }
    // Control: the same request with a trusted token works.
    const good = await registryGet(reg().url, `/v2/${REPO}/tags/list`, token(PULL_PUSH));
    expect(good.status).toBe(200);
    expect(JSON.parse(good.body)).toEqual({ name: REPO, tags: ['latest'] });
  }, 30_000);

  it('refuses expired tokens and tokens for another audience or issuer', async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = { issuer: ISSUER, service: SERVICE, access: PULL_PUSH };
    const variants = [
      signTestToken(trusted.privateKey, {
        ...base,
        exp: now - 120,
        nbf: now - 600,
        iat: now - 600,
      }),
      signTestToken(trusted.privateKey, { ...base, audience: 'someone-else' }),
      signTestToken(trusted.privateKey, { ...base, issuer: 'not-the-issuer' }),
    ];
    for (const bad of variants) {
      expect((await registryGet(reg().url, `/v2/${REPO}/tags/list`, bad)).status).toBe(401);
    }
  });

  it('guards /v2/_catalog with registry:catalog:*', async () => {
    const denied = await registryGet(reg().url, '/v2/_catalog', token(PULL_PUSH));
    expect(denied.status).toBe(401);
    expect(denied.body).toContain('UNAUTHORIZED');
    const catalogToken = token([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    const allowed = await registryGet(reg().url, '/v2/_catalog', catalogToken);
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body)).toEqual({ repositories: [REPO, 'team-b/app'] });
  });

  it('captures the registry log, whose libtrust key id matches ours', () => {
    const logs = reg().logs();
    expect(logs).toContain(`listening on ${reg().host}`);
    // The registry computes the kid itself (libtrust) when it rejects the untrusted key.
    expect(logs).toContain(`token signed by untrusted key with ID: \\"${untrusted.kid}\\"`);
    expect(logs).toContain('unable to verify token signature: invalid signature');
    expect(logs).toContain('token intended for another audience: \\"someone-else\\"');
  });
});

describe('moto harness', () => {
  let moto: Moto | undefined;
  let restoreEnv: (() => void) | undefined;

  beforeAll(async () => {
    moto = await startMoto();
    restoreEnv = applyAwsTestEnv(moto.endpoint);
  }, 40_000);

  afterAll(async () => {
    restoreEnv?.();
    await moto?.stop();
  });

  it('serves S3 CreateBucket/ListBuckets to the SDK via AWS_ENDPOINT_URL, and resets', async () => {
    expect(moto?.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.AWS_PROFILE).toBeUndefined();
    const s3 = new S3Client({});
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'harness-bucket' }));
      const listed = await s3.send(new ListBucketsCommand({}));
      expect(listed.Buckets?.map((b) => b.Name)).toEqual(['harness-bucket']);
      await moto?.reset();
      const afterReset = await s3.send(new ListBucketsCommand({}));
      expect(afterReset.Buckets ?? []).toEqual([]);
    } finally {
      s3.destroy();
    }
  }, 20_000);

  it('gives child processes the same endpoint through awsChildEnv', async () => {
    const endpoint = moto?.endpoint ?? '';
    const python = await requireBinary('python3', "pip install 'moto[server]'");
    await moto?.reset();
    const res = await run(
      python,
      [
        '-c',
        "import boto3; s=boto3.client('s3'); s.create_bucket(Bucket='from-child'); " +
          "print(s.meta.endpoint_url, [b['Name'] for b in s.list_buckets()['Buckets']])",
      ],
      { env: awsChildEnv(endpoint), timeoutMs: 30_000 },
    );
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe(`${endpoint} ['from-child']`);
  }, 40_000);
});

describe('missing binaries', () => {
  it.each([
    [
      'docker-registry',
      () => startRegistry({ service: 's', issuer: 'i', rootCertBundlePath: '/x' }),
    ],
    ['skopeo', () => listTags('127.0.0.1:1', 'a/b', 't')],
    ['moto_server', () => startMoto()],
  ] as const)('fails loudly with an install hint when %s is not on PATH', async (name, start) => {
    const hint =
      name === 'moto_server'
        ? "pip install 'moto[server]'"
        : 'apt-get install -y docker-registry skopeo';
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent-regtoken-bin';
    try {
      await expect(start()).rejects.toThrow(
        `required binary '${name}' not found on PATH; install it with: ${hint}`,
      );
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe('process hygiene', () => {
  it('leaves no docker-registry, moto_server or skopeo process behind', async () => {
    const groups = startedProcessGroups();
    expect(groups.length).toBeGreaterThan(5);
    const leftovers = await livingProcessesInGroups(groups);
    expect(leftovers.filter((p) => !p.args.startsWith('ps '))).toEqual([]);
    const ps = await run('ps', ['-eo', 'pid=,pgid=,args='], { timeoutMs: 10_000 });
    const ours = new Set(groups);
    const named = ps.stdout
      .split('\n')
      .filter((line) => /docker-registry|moto_server|skopeo/.test(line))
      .filter((line) => ours.has(Number(line.trim().split(/\s+/)[1])));
    expect(named).toEqual([]);
  });
});
