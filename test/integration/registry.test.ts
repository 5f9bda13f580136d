/**
 * Acceptance: tokens minted by regtoken's local mode are accepted by the real Distribution
 * registry (Debian docker-registry 2.8) exactly where granted, driven by a real client (skopeo).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FileConfigSource, FileTokenStore } from '../../lambda/adapters/filesystem.js';
import { PemSigner } from '../../lambda/adapters/pem-signer.js';
import { noMetrics, silentLogger } from '../../lambda/core/ports.js';
import { mint } from '../../lambda/mint.js';
import { cli } from '../helpers/cli.js';
import { fixedEcKey } from '../helpers/keys.js';
import { type RunningRegistry, startRegistry } from '../helpers/registry.js';
import { pullImage, pushImage, registryGet } from '../helpers/skopeo.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const SERVICE = 'registry.test';
const ISSUER = 'regtoken';
const GRANTS = `version: 1
registry: {host: registry.test, service: ${SERVICE}, issuer: ${ISSUER}}
tokenTtl: 1h
grants:
  - principal: arn:aws:iam::111122223333:role/ci-runner
    access:
      - {repository: team-a/app, actions: [pull, push]}
      - {repository: base/alpine, actions: [push]}
  - principal: arn:aws:iam::111122223333:user/alice
    access:
      - {repository: team-a/app, actions: [pull]}
      - {repository: base/*, actions: [pull]}
  - principal: arn:aws:iam::111122223333:role/registry-admin
    access:
      - {repository: "**", actions: ["*"]}
      - catalog: true
`;

let dir: string;
let out: string;
let registry: RunningRegistry;
const token = (name: string): string =>
  JSON.parse(readFileSync(join(out, 'tokens/111122223333', name), 'utf8')).token;

async function mintAll(extra: string[] = []): Promise<void> {
  const r = await cli([
    'mint',
    '--config',
    join(dir, 'grants.yaml'),
    '--signing-key',
    join(dir, 'key.pem'),
    '--out',
    out,
    ...extra,
  ]);
  if (r.code !== 0) throw new Error(`mint failed: ${r.stderr}`);
}

beforeAll(async () => {
  dir = await makeTempDir('accept-');
  out = join(dir, 'out');
  writeFileSync(join(dir, 'grants.yaml'), GRANTS);
  writeFileSync(
    join(dir, 'key.pem'),
    fixedEcKey(7).export({ type: 'pkcs8', format: 'pem' }) as string,
    { mode: 0o600 }, // a key others could write is refused
  );
  await mintAll();
  registry = await startRegistry({
    service: SERVICE,
    issuer: ISSUER,
    rootCertBundlePath: join(out, 'trust-bundle.pem'),
  });
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  await removeTempDir(dir);
});

describe('the real registry and skopeo accept regtoken tokens where granted', () => {
  it('allows push where push is granted', async () => {
    const r = await pushImage(registry.host, 'team-a/app', token('role/ci-runner.json'));
    expect(r.stderr).toBe('');
    expect(r.ok).toBe(true);
  });

  it('allows push with push alone (pull is implied)', async () => {
    const r = await pushImage(registry.host, 'base/alpine', token('role/ci-runner.json'));
    expect(r.ok).toBe(true);
  });

  it('allows pull where pull is granted', async () => {
    const r = await pullImage(registry.host, 'team-a/app', token('user/alice.json'));
    expect(r.ok).toBe(true);
  });

  it('refuses push with a pull-only grant', async () => {
    const r = await pushImage(registry.host, 'team-a/app', token('user/alice.json'));
    expect(r.ok).toBe(false);
    expect(r.stderr).toContain('denied: requested access to the resource is denied');
  });

  it('refuses repositories that are not granted', async () => {
    const push = await pushImage(registry.host, 'team-b/app', token('role/ci-runner.json'));
    expect(push.ok).toBe(false);
    expect(push.stderr).toContain('denied');
    const pull = await pullImage(registry.host, 'base/alpine', token('role/ci-runner.json'));
    expect(pull.ok).toBe(true); // push implies pull
    const alicePull = await pullImage(registry.host, 'base/alpine', token('user/alice.json'));
    // base/* was minted before base/alpine existed and no inventory was given: not granted yet.
    expect(alicePull.ok).toBe(false);
  });

  it('expands patterns against the registry storage once repositories exist', async () => {
    await mintAll(['--repositories', registry.storageDir]);
    const doc = JSON.parse(readFileSync(join(out, 'tokens/111122223333/user/alice.json'), 'utf8'));
    expect(doc.access).toEqual([
      { type: 'repository', name: 'base/alpine', actions: ['pull'] },
      { type: 'repository', name: 'team-a/app', actions: ['pull'] },
    ]);
    expect((await pullImage(registry.host, 'base/alpine', token('user/alice.json'))).ok).toBe(true);
  });

  it('allows the catalog only with catalog: true', async () => {
    const admin = await registryGet(
      registry.url,
      '/v2/_catalog',
      token('role/registry-admin.json'),
    );
    expect(admin.status).toBe(200);
    expect(JSON.parse(admin.body)).toEqual({ repositories: ['base/alpine', 'team-a/app'] });
    const ci = await registryGet(registry.url, '/v2/_catalog', token('role/ci-runner.json'));
    expect(ci.status).toBe(401);
  });

  it('refuses an expired token', async () => {
    const expiredOut = join(dir, 'expired');
    await mint({
      config: new FileConfigSource(join(dir, 'grants.yaml')),
      store: new FileTokenStore(expiredOut),
      signer: new PemSigner(join(dir, 'key.pem'), { create: false }),
      logger: silentLogger,
      metrics: noMetrics,
      clock: () => new Date(Date.now() - 2 * 3600_000), // 1h tokens issued 2h ago
    });
    const expired = JSON.parse(
      readFileSync(join(expiredOut, 'tokens/111122223333/user/alice.json'), 'utf8'),
    ).token;
    expect((await pullImage(registry.host, 'team-a/app', expired)).ok).toBe(false);
    expect(registry.logs()).toContain('token not to be used after');
  });

  it('refuses a tampered token', async () => {
    const [h, claims, s] = token('user/alice.json').split('.');
    const payload = JSON.parse(Buffer.from(claims ?? '', 'base64url').toString());
    payload.access = [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }];
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    expect((await pushImage(registry.host, 'team-a/app', forged)).ok).toBe(false);
    expect(registry.logs()).toContain('unable to verify token signature');
  });

  it('refuses a token signed by a key the registry does not trust', async () => {
    const foreignOut = join(dir, 'foreign');
    writeFileSync(
      join(dir, 'foreign.pem'),
      fixedEcKey(8).export({ type: 'pkcs8', format: 'pem' }) as string,
      { mode: 0o600 },
    );
    const r = await cli([
      'mint',
      '--config',
      join(dir, 'grants.yaml'),
      '--signing-key',
      join(dir, 'foreign.pem'),
      '--out',
      foreignOut,
    ]);
    expect(r.code).toBe(0);
    const foreign = JSON.parse(
      readFileSync(join(foreignOut, 'tokens/111122223333/user/alice.json'), 'utf8'),
    ).token;
    expect((await pullImage(registry.host, 'team-a/app', foreign)).ok).toBe(false);
    expect(registry.logs()).toContain('token signed by untrusted key with ID');
  });

  it('refuses a token for another registry service', async () => {
    const otherOut = join(dir, 'other-service');
    writeFileSync(
      join(dir, 'other.yaml'),
      GRANTS.replace(`service: ${SERVICE}`, 'service: elsewhere'),
    );
    await cli([
      'mint',
      '--config',
      join(dir, 'other.yaml'),
      '--signing-key',
      join(dir, 'key.pem'),
      '--out',
      otherOut,
    ]);
    const other = JSON.parse(
      readFileSync(join(otherOut, 'tokens/111122223333/user/alice.json'), 'utf8'),
    ).token;
    expect((await pullImage(registry.host, 'team-a/app', other)).ok).toBe(false);
    expect(registry.logs()).toContain('token intended for another audience');
  });
});
