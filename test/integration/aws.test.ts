/**
 * The AWS runtime end to end against moto_server (S3, IAM, KMS, STS): the Lambda handler reads
 * the grants from a config bucket, mints with a KMS-rooted certificate, writes tagged token
 * objects and the bucket policy, and the real registry accepts what it minted. Bucket policy
 * semantics come from an independent evaluator, because moto stores policies without
 * evaluating them. Faults moto cannot produce (throttling, 5xx) come from a loopback proxy.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CreateRoleCommand, DeleteRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteObjectCommand,
  GetBucketPolicyCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { buildTokenBucketPolicy } from '../../lambda/core/policy.js';
import { ConfigError, RunIncompleteError } from '../../lambda/errors.js';
import { createHandler } from '../../lambda/handler.js';
import type { RunSettings } from '../../lambda/run.js';
import {
  ACCOUNT,
  type AwsStandIn,
  CONFIG_BUCKET,
  createDeployment,
  MINTER,
  minterSettings,
  quiet,
  quietHandler,
  startAwsStandIn,
  TOKEN_BUCKET,
} from '../helpers/aws-stand-in.js';
import { cli } from '../helpers/cli.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { allow, decideS3 } from '../helpers/iam-eval.js';
import { type RunningRegistry, startRegistry } from '../helpers/registry.js';
import { pullImage, pushImage, registryGet } from '../helpers/skopeo.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const OTHER = '444455556666';
const REGISTRY_BUCKET = 'registry-storage';
const ARN = {
  ci: `arn:aws:iam::${ACCOUNT}:role/ci-runner`,
  web: `arn:aws:iam::${ACCOUNT}:role/web/ec2-web`,
  alice: `arn:aws:iam::${ACCOUNT}:user/alice`,
  bob: `arn:aws:iam::${OTHER}:user/bob`,
  deleted: `arn:aws:iam::${ACCOUNT}:role/deleted-role`,
} as const;
const KEY = {
  ci: `tokens/${ACCOUNT}/role/ci-runner.json`,
  web: `tokens/${ACCOUNT}/role/ec2-web.json`,
  alice: `tokens/${ACCOUNT}/user/alice.json`,
  bob: `tokens/${OTHER}/user/bob.json`,
  deleted: `tokens/${ACCOUNT}/role/deleted-role.json`,
} as const;

const grants = (extra = '') => `version: 1
registry: {host: registry.test, service: registry.test, issuer: regtoken}
tokenTtl: 1h
grants:
  - principal: ${ARN.ci}
    access:
      - {repository: team-a/app, actions: [pull, push]}
      - {repository: base/*, actions: [pull]}
  - principals: [${ARN.web}, ${ARN.alice}]
    ttl: 30m
    access: [{repository: team-a/app, actions: [pull]}]
  - principal: ${ARN.bob}
    access: [{repository: team-a/app, actions: [pull]}]
  - principal: ${ARN.deleted}
    access: [{repository: team-a/app, actions: [pull]}]
${extra}`;

// Every case drives moto, the proxy and often several runs: on a loaded machine one takes more
// than jest's default 5 s. Cases that wait on purpose say so with their own timeout.
jest.setTimeout(60_000);

let standIn: AwsStandIn;
let proxy: FaultProxy;
let s3: S3Client;
let kmsKeyArn: string;
let dir: string;

const settings = (over: Partial<RunSettings> = {}): RunSettings =>
  minterSettings(kmsKeyArn, { repositories: `s3://${REGISTRY_BUCKET}`, ...over });

function handler(over: Partial<RunSettings> = {}, aws = new AwsClients()) {
  return quietHandler(() => settings(over), aws);
}

async function putConfig(text: string): Promise<string | undefined> {
  const r = await s3.send(
    new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: 'grants.yaml', Body: text }),
  );
  return r.VersionId;
}

async function getText(bucket: string, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await r.Body?.transformToString()) ?? '';
}

async function tokenDoc(key: string) {
  return JSON.parse(await getText(TOKEN_BUCKET, key));
}

/** Every object in the token bucket with its ETag, plus the bucket policy. */
async function bucketState(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const list = await s3.send(new ListObjectsV2Command({ Bucket: TOKEN_BUCKET }));
  for (const o of list.Contents ?? []) out[o.Key ?? ''] = o.ETag ?? '';
  out['(policy)'] = await s3
    .send(new GetBucketPolicyCommand({ Bucket: TOKEN_BUCKET }))
    .then((r) => r.Policy ?? '')
    .catch(() => '(none)');
  return out;
}

async function tokenKeys(): Promise<string[]> {
  const list = await s3.send(new ListObjectsV2Command({ Bucket: TOKEN_BUCKET, Prefix: 'tokens/' }));
  return (list.Contents ?? []).map((o) => o.Key ?? '').sort();
}

beforeAll(async () => {
  // Every AWS call goes through the proxy: it keeps bucket policies (see fault-proxy.ts) and
  // injects the faults some tests ask for.
  standIn = await startAwsStandIn();
  ({ proxy } = standIn);
  dir = await makeTempDir('aws-');
}, 60_000);

afterAll(async () => {
  await standIn?.stop();
  await removeTempDir(dir);
});

beforeEach(async () => {
  await standIn.reset();
  s3 = new S3Client({});
  kmsKeyArn = await createDeployment({
    roles: [
      ['ci-runner', '/'],
      ['ec2-web', '/web/'],
      ['regtoken-minter', '/'],
    ],
    users: [['alice', '/']],
    buckets: [REGISTRY_BUCKET],
  });
  // The registry's own S3 storage: two repositories under base/.
  for (const repo of ['base/alpine', 'base/debian', 'team-a/app'])
    await s3.send(
      new PutObjectCommand({
        Bucket: REGISTRY_BUCKET,
        Key: `docker/registry/v2/repositories/${repo}/_manifests/tags/latest/current/link`,
        Body: 'sha256:0',
      }),
    );
  await putConfig(grants());
});

describe('the handler mints into S3', () => {
  it('writes one tagged token object per known principal, the trust bundle and the policy', async () => {
    const result = await handler()({});
    expect(result).toMatchObject({ skipped: false, minted: 4, unknown: 1, removed: 0, passes: 1 });
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.alice, KEY.bob].sort());

    for (const [name, key] of Object.entries({
      ci: KEY.ci,
      web: KEY.web,
      alice: KEY.alice,
      bob: KEY.bob,
    })) {
      const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: TOKEN_BUCKET, Key: key }));
      expect(tags.TagSet).toEqual([{ Key: 'owner', Value: ARN[name as keyof typeof ARN] }]);
    }
    const ci = await tokenDoc(KEY.ci);
    expect(ci).toMatchObject({ principal: ARN.ci, registry: 'registry.test' });
    // base/* expanded against the registry's S3 storage.
    expect(ci.access).toEqual([
      { type: 'repository', name: 'base/alpine', actions: ['pull'] },
      { type: 'repository', name: 'base/debian', actions: ['pull'] },
      { type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] },
    ]);
    const web = await tokenDoc(KEY.web);
    expect(Date.parse(web.expiresAt) - Date.parse(web.issuedAt)).toBe(30 * 60_000);
    // The token carries a per-run certificate chain, not a kid.
    const header = decodeProtectedHeader(ci.token);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(header.x5c).toHaveLength(1);

    expect(await getText(TOKEN_BUCKET, 'trust/bundle.pem')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(JSON.parse(await getText(TOKEN_BUCKET, 'trust/jwks.json')).keys).toHaveLength(1);
    const policy = JSON.parse(
      (await s3.send(new GetBucketPolicyCommand({ Bucket: TOKEN_BUCKET }))).Policy ?? '',
    );
    expect(proxy.policies.get(TOKEN_BUCKET)).toBe(JSON.stringify(policy));
    expect(policy).toEqual(
      buildTokenBucketPolicy({
        bucket: TOKEN_BUCKET,
        prefix: '',
        partition: 'aws',
        readerAccounts: [ACCOUNT, OTHER],
        minterArns: [MINTER],
      }),
    );
  });

  it('reuses the root certificate and replaces the per-run signing certificate', async () => {
    await handler()({});
    const bundle = await getText(TOKEN_BUCKET, 'trust/bundle.pem');
    const first = decodeProtectedHeader((await tokenDoc(KEY.ci)).token).x5c;
    await handler()({});
    expect(await getText(TOKEN_BUCKET, 'trust/bundle.pem')).toBe(bundle);
    expect(decodeProtectedHeader((await tokenDoc(KEY.ci)).token).x5c).not.toEqual(first);
  });

  it('mints the grants it checked before the lock when no other run has held it since this container gave it back', async () => {
    const warm = handler();
    await warm({});
    const grantsReads = (from: number) =>
      proxy.calls.slice(from).filter((c) => c === `S3 GET /${CONFIG_BUCKET}/grants.yaml`).length;
    let calls = proxy.calls.length;
    expect(await warm({})).toMatchObject({ skipped: false, minted: 4, passes: 1 });
    expect(grantsReads(calls)).toBe(1);
    // Another container's run in between: this one reads the grants again under the lock.
    await handler()({});
    calls = proxy.calls.length;
    expect(await warm({})).toMatchObject({ skipped: false, minted: 4, passes: 1 });
    expect(grantsReads(calls)).toBe(2);
  });

  it('mints again when the grants change between their check and the lock it takes from its own release', async () => {
    const warm = handler();
    await warm({});
    let letThrough: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      letThrough = resolve;
    });
    proxy.setRules([{ method: 'PUT', path: /\/state\/lock\.json/, hold: held, times: 1 }]);
    const seenBefore = proxy.seen.length;
    const run = warm({});
    const taking = () =>
      proxy.seen.slice(seenBefore).some((l) => /^PUT \S*\/state\/lock\.json/.test(l));
    const deadline = Date.now() + 30_000;
    while (!taking()) {
      if (Date.now() > deadline) throw new Error('the run took no lock within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    // Alice's grant goes while the run takes the lock with the grants it read before.
    const v2 = await putConfig(grants().replace(`[${ARN.web}, ${ARN.alice}]`, `[${ARN.web}]`));
    proxy.setRules([]);
    letThrough();
    expect(await run).toMatchObject({ skipped: false, configVersion: v2, passes: 2 });
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.bob].sort());
  });

  it('writes every token while its listing of the stored tokens is held, then removes the stale one', async () => {
    await handler()({});
    const stale = 'tokens/123456789012/role/gone.json';
    await s3.send(new PutObjectCommand({ Bucket: TOKEN_BUCKET, Key: stale, Body: '{}' }));
    let letThrough: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      letThrough = resolve;
    });
    const listing = /^\/regtoken-tokens\/\?(.*&)?prefix=tokens%2F/;
    proxy.setRules([{ method: 'GET', path: listing, hold: held, times: 1 }]);
    const seenBefore = proxy.seen.length;
    const run = handler()({});
    const since = () => proxy.seen.slice(seenBefore);
    const tokenWrites = () => since().filter((l) => /^PUT \/regtoken-tokens\/tokens\//.test(l));
    // A run takes well under a second here; a run that waits for the listing never gets there.
    const deadline = Date.now() + 10_000;
    while (tokenWrites().length < 4 || !since().some((l) => listing.test(l.slice(4)))) {
      if (Date.now() > deadline) {
        letThrough();
        throw new Error(`no 4 token writes while the listing was held: ${since().join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    letThrough();
    expect(await run).toMatchObject({ skipped: false, minted: 4, removed: 1 });
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.alice, KEY.bob].sort());
  });

  it('takes the stored tokens from its last run while no other run has held the lock, and lists them otherwise', async () => {
    const warm = handler();
    await warm({});
    const listings = (from: number) =>
      proxy.seen
        .slice(from)
        .filter((l) => /^GET \/regtoken-tokens\/\?(.*&)?prefix=tokens%2F/.test(l));
    // Alice's grant goes: the container's next run removes her token without a listing.
    await putConfig(grants().replace(`[${ARN.web}, ${ARN.alice}]`, `[${ARN.web}]`));
    let seen = proxy.seen.length;
    expect(await warm({})).toMatchObject({ skipped: false, minted: 3, removed: 1 });
    expect(listings(seen)).toEqual([]);
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.bob].sort());
    // Another container's run in between, and a key no run of this one wrote: listed, removed.
    await handler()({});
    const stray = 'tokens/123456789012/role/gone.json';
    await s3.send(new PutObjectCommand({ Bucket: TOKEN_BUCKET, Key: stray, Body: '{}' }));
    seen = proxy.seen.length;
    expect(await warm({})).toMatchObject({ skipped: false, minted: 3, removed: 1 });
    expect(listings(seen)).toHaveLength(1);
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.bob].sort());
    // Alice back: written again, and the next run, its own lock's, lists nothing.
    await putConfig(grants());
    seen = proxy.seen.length;
    expect(await warm({})).toMatchObject({ skipped: false, minted: 4, removed: 0 });
    expect(listings(seen)).toEqual([]);
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.alice, KEY.bob].sort());
  });

  it('reads no trust file a warm container left as it is, and reads and restores one changed since', async () => {
    const warm = handler(); // one container: its clients, the KMS public key and what it saw are kept
    await warm({});
    const jwks = await getText(TOKEN_BUCKET, 'trust/jwks.json');
    const trustCalls = (from: number) =>
      proxy.calls.slice(from).filter((c) => c.startsWith(`S3 GET /${TOKEN_BUCKET}/trust/`));

    // Unchanged since the container wrote them: the listing of the tokens shows their ETags.
    let [calls, seen] = [proxy.calls.length, proxy.seen.length];
    expect(await warm({})).toMatchObject({ skipped: false, minted: 4 });
    expect(trustCalls(calls)).toEqual([]);
    // The policy: once before the lock (is the bucket this store's?), once under it.
    const policyReads = proxy.seen
      .slice(seen)
      .filter((l) => l.startsWith(`GET /${TOKEN_BUCKET}/?policy`));
    expect(policyReads).toHaveLength(2);

    // Changed by someone else since: read under the lock, and put back as this run publishes it.
    await s3.send(
      new PutObjectCommand({ Bucket: TOKEN_BUCKET, Key: 'trust/jwks.json', Body: '{"keys":[]}' }),
    );
    await s3.send(new DeleteObjectCommand({ Bucket: TOKEN_BUCKET, Key: 'trust/bundle.pem' }));
    [calls, seen] = [proxy.calls.length, proxy.seen.length];
    expect(await warm({})).toMatchObject({ skipped: false, minted: 4 });
    expect(trustCalls(calls).sort()).toEqual([
      `S3 GET /${TOKEN_BUCKET}/trust/bundle.pem`,
      `S3 GET /${TOKEN_BUCKET}/trust/jwks.json`,
    ]);
    // A bundle gone is published again (its root certificate made anew under the same key).
    expect(await getText(TOKEN_BUCKET, 'trust/bundle.pem')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(await getText(TOKEN_BUCKET, 'trust/jwks.json')).toBe(jwks);

    // What it wrote back is what it saw last: the next run reads neither again.
    calls = proxy.calls.length;
    await warm({});
    expect(trustCalls(calls)).toEqual([]);
  });

  it('removes the token of a principal dropped from the config, and only that one', async () => {
    await handler()({});
    await putConfig(grants().replace(`[${ARN.web}, ${ARN.alice}]`, `[${ARN.web}]`));
    const result = await handler()({});
    expect(result.removed).toBe(1);
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.bob].sort());
  });

  it('skips a deleted principal without blocking anyone, and deletes its old token', async () => {
    // The role existed at the first run, then was deleted.
    const iam = new IAMClient({});
    await iam.send(
      new CreateRoleCommand({ RoleName: 'deleted-role', AssumeRolePolicyDocument: '{}' }),
    );
    await handler()({});
    expect(await tokenKeys()).toContain(KEY.deleted);
    await iam.send(new DeleteRoleCommand({ RoleName: 'deleted-role' }));
    const result = await handler()({});
    expect(result).toMatchObject({ minted: 4, unknown: 1 });
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.alice, KEY.bob].sort());
  });

  it('fails a bad config object before any write, naming file, line and column', async () => {
    await handler()({});
    const before = await bucketState();
    await putConfig(grants().replace('actions: [pull, push]', 'actions: [pull, pusj]'));
    const err = await handler()({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `s3://${CONFIG_BUCKET}/grants.yaml:7:50: unknown action "pusj" (allowed: pull, push, delete, *)`,
    );
    expect(await bucketState()).toEqual(before);
  });

  it('fails loudly, by name, when a required setting is missing', async () => {
    const run = createHandler({
      settings: () => {
        throw new Error('unreachable');
      },
      ...quiet(),
    });
    await expect(run({})).rejects.toThrow('unreachable');
    const { lambdaSettings } = await import('../../lambda/handler.js');
    const { readEnv } = await import('../../lambda/env.js');
    expect(() => lambdaSettings(readEnv({ REGTOKEN_CONFIG: 's3://a-b/c' }))).toThrow(
      'REGTOKEN_OUT is not set',
    );
    const noMinters = handler({ minterArns: [] });
    await expect(noMinters({})).rejects.toThrow('REGTOKEN_MINTER_ARNS is not set');
  });

  it('never writes a token or key material to the log', async () => {
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      const logged = createHandler({
        settings: () => settings(),
        aws: new AwsClients(),
        logger: new Logger({ serviceName: 'regtoken', logLevel: 'DEBUG' }),
        metrics: new Metrics({ namespace: 'regtoken', serviceName: 'regtoken' }),
      });
      await logged({});
    } finally {
      process.stdout.write = write;
    }
    const log = lines.join('');
    expect(log).toContain('"message":"mint finished"');
    expect(log).toContain('"TokensMinted"');
    for (const key of [KEY.ci, KEY.web, KEY.alice, KEY.bob]) {
      const { token } = await tokenDoc(key);
      expect(log).not.toContain(token);
      expect(log).not.toContain(token.split('.')[2]); // not even the signature
    }
    expect(log).not.toMatch(/PRIVATE KEY|"d":"/);
  });
});

describe('the CLI runs the same code against S3 and KMS', () => {
  it('mints with s3:// and kms: locations and reports s3:// URLs', async () => {
    const r = await cli(
      [
        'mint',
        '--config',
        `s3://${CONFIG_BUCKET}/grants.yaml`,
        '--out',
        `s3://${TOKEN_BUCKET}/prod`,
        '--signing-key',
        `kms:${kmsKeyArn}`,
        '--repositories',
        `s3://${REGISTRY_BUCKET}`,
        '--json',
      ],
      { REGTOKEN_MINTER_ARNS: MINTER },
    );
    expect(r.stderr).toBe(
      `warning: unknown principal: no token minted (principal: ${ARN.deleted}, reason: no such role in account ${ACCOUNT})\n`,
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.trustBundle).toBe(`s3://${TOKEN_BUCKET}/prod/trust/bundle.pem`);
    expect(report.tokens.map((t: { path: string }) => t.path).sort()).toEqual(
      [KEY.ci, KEY.web, KEY.alice, KEY.bob].map((k) => `s3://${TOKEN_BUCKET}/prod/${k}`).sort(),
    );
    expect(report.unknown).toEqual([
      { principal: ARN.deleted, reason: `no such role in account ${ACCOUNT}` },
    ]);
    expect(report.configVersion).toMatch(/^[0-9a-f-]{36}$/); // the config object's version id
  });

  it('explains a missing bucket, object or setting in one line', async () => {
    const base = ['mint', '--out', `s3://${TOKEN_BUCKET}`, '--signing-key', `kms:${kmsKeyArn}`];
    const noObject = await cli([...base, '--config', `s3://${CONFIG_BUCKET}/nope.yaml`], {
      REGTOKEN_MINTER_ARNS: MINTER,
    });
    expect(noObject).toEqual({
      code: 1,
      stdout: '',
      stderr: `regtoken: s3://${CONFIG_BUCKET}/nope.yaml: no such object\n`,
    });
    const noMinter = await cli([...base, '--config', `s3://${CONFIG_BUCKET}/grants.yaml`]);
    expect(noMinter.code).toBe(1);
    expect(noMinter.stderr).toMatch(/^regtoken: REGTOKEN_MINTER_ARNS is not set: /);
    const badUrl = await cli(['validate', 's3://x/grants.yaml']);
    expect(badUrl.stderr).toBe(
      'regtoken: s3://x/grants.yaml: not an S3 location (expected s3://BUCKET/KEY)\n',
    );
    const plan = await cli([
      'plan',
      '--from',
      `s3://${CONFIG_BUCKET}/missing.yaml`,
      '--to',
      'examples/grants.yaml',
    ]);
    expect(plan.code).toBe(0);
    expect(plan.stderr).toBe(
      `note: s3://${CONFIG_BUCKET}/missing.yaml: no such object; planning as if nothing were deployed\n`,
    );
  });

  it('plans against a missing bucket or a denied object as an error, not as nothing deployed', async () => {
    // Only a missing object in a bucket that exists means nothing is deployed yet; a mistyped
    // bucket or a role that may not read the object must fail the check (exit 1).
    const noBucket = await cli([
      'plan',
      '--from',
      's3://regtoken-config-typo/grants.yaml',
      '--to',
      'examples/grants.yaml',
    ]);
    expect(noBucket).toEqual({
      code: 1,
      stdout: '',
      stderr: 'regtoken: s3://regtoken-config-typo/grants.yaml: no such bucket\n',
    });
    // What S3 answers when a bucket policy or the caller's IAM policy refuses the read (moto
    // never refuses, so the fault proxy answers for it).
    proxy.setRules([{ method: 'GET', path: /\/denied\.yaml/, status: 403, times: 10 }]);
    const denied = await cli([
      'plan',
      '--from',
      `s3://${CONFIG_BUCKET}/denied.yaml`,
      '--to',
      'examples/grants.yaml',
    ]);
    proxy.setRules([]);
    expect(denied).toEqual({
      code: 1,
      stdout: '',
      stderr: `regtoken: s3://${CONFIG_BUCKET}/denied.yaml: access denied\n`,
    });
  });

  it('refuses a grants object over the size limit by its length', async () => {
    const size = 10 * 1024 * 1024 + 1;
    await s3.send(
      new PutObjectCommand({
        Bucket: CONFIG_BUCKET,
        Key: 'huge.yaml',
        Body: Buffer.alloc(size, '#'),
      }),
    );
    const r = await cli(['validate', `s3://${CONFIG_BUCKET}/huge.yaml`]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `s3://${CONFIG_BUCKET}/huge.yaml:1:1: the file is 10,485,761 bytes, over the limit of 10,485,760 bytes (10 MiB) for a grants file\n`,
    });
  });

  it('refuses a bad --out prefix before any request', async () => {
    const before = proxy.seen.length;
    const r = await cli(
      [
        'mint',
        '--config',
        `s3://${CONFIG_BUCKET}/grants.yaml`,
        '--out',
        `s3://${TOKEN_BUCKET}/team a`,
        '--signing-key',
        `kms:${kmsKeyArn}`,
      ],
      { REGTOKEN_MINTER_ARNS: MINTER },
    );
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `regtoken: s3://${TOKEN_BUCKET}/team a: the prefix "team a" must be segments of letters, digits and ! - _ . ' ( ) = + @ , ; & joined by "/" (no spaces, wildcards or "$")\n`,
    });
    expect(proxy.seen.slice(before)).toEqual([]);
  });
});

describe('two token stores in one bucket', () => {
  const READER = `arn:aws:iam::${ACCOUNT}:role/read-only`;
  /** A same-account role allowed to read everything by IAM, reading prod's ci token. */
  const readerReadsProd = async () =>
    decideS3({
      bucketPolicy: JSON.parse(proxy.policies.get(TOKEN_BUCKET) ?? '{}'),
      bucket: TOKEN_BUCKET,
      bucketAccount: ACCOUNT,
      principal: READER,
      principalArn: READER,
      action: 's3:GetObject',
      key: `prod/${KEY.ci}`,
      ownerTag: ARN.ci,
      identityPolicies: [allow(['s3:Get*', 's3:List*'], '*')],
    });

  it.each([
    ['prod', 'staging'],
    ['staging', 'prod'],
  ])(
    'a run into %s, then one into %s: the second is refused and writes nothing',
    async (first, second) => {
      expect(await handler({ out: `s3://${TOKEN_BUCKET}/${first}` })({})).toMatchObject({
        skipped: false,
        minted: 4,
      });
      const before = await bucketState();
      const err = await handler({ out: `s3://${TOKEN_BUCKET}/${second}` })({}).catch(
        (e: unknown) => e,
      );
      // The attack: had the second run replaced the policy, a role with read rights on *
      // would read prod's tokens.
      if (first === 'prod') expect(await readerReadsProd()).toBe('ExplicitlyDenied');
      expect(err).toMatchObject({
        code: 'STORE',
        message: `s3://${TOKEN_BUCKET}/${second}: the bucket already serves the token store at s3://${TOKEN_BUCKET}/${first} (its bucket policy protects that one only); one bucket holds one token store: use another bucket for this one (docs/aws.md)`,
      });
      // Nothing of the second store exists, not even its lock; the policy is still the first's.
      expect(await bucketState()).toEqual(before);
      // The first store goes on minting.
      expect(await handler({ out: `s3://${TOKEN_BUCKET}/${first}` })({})).toMatchObject({
        skipped: false,
        minted: 4,
      });
    },
    60_000,
  );
});

describe('accounts S3 refuses as principals (MalformedPolicy: Invalid principal in policy)', () => {
  const GHOST = '555566667777';
  const FINE = '777788889999';
  const ghost = (account: string, name: string) =>
    `  - principal: arn:aws:iam::${account}:role/${name}\n    access: [{repository: team-a/app, actions: [pull]}]\n`;
  const readers = () => {
    const policy = JSON.parse(proxy.policies.get(TOKEN_BUCKET) ?? '{}') as {
      Statement: { Principal?: { AWS?: string | string[] } }[];
    };
    return policy.Statement.flatMap((st) => st.Principal?.AWS ?? [])
      .filter((p) => p.endsWith(':root'))
      .sort();
  };

  it('are left out with a warning and a metric; everyone else is minted', async () => {
    await handler()({});
    proxy.invalidAccounts.add(GHOST);
    await putConfig(grants(ghost(GHOST, 'ghost') + ghost(FINE, 'fine')));
    const seenBefore = proxy.seen.length;
    // The metrics as the function publishes them (CloudWatch embedded metric format).
    const { logger, metrics } = quiet();
    const emitted: Record<string, unknown>[] = [];
    (metrics as unknown as { console: { log(line: string): void } }).console = {
      log: (line) => emitted.push(JSON.parse(line)),
    };
    const result = await createHandler({
      settings: () => settings(),
      aws: new AwsClients(),
      logger,
      metrics,
    })({});
    expect(result).toMatchObject({ skipped: false, minted: 6 });
    expect(readers()).toEqual([ACCOUNT, OTHER, FINE].map((a) => `arn:aws:iam::${a}:root`).sort());
    // The whole list, then halves: a few writes, the last one the policy that stays.
    const policyPuts = proxy.seen
      .slice(seenBefore)
      .filter((l) => /^PUT \/regtoken-tokens\/?\?policy/.test(l));
    expect(policyPuts.length).toBeGreaterThan(1);
    expect(policyPuts.length).toBeLessThanOrEqual(6);
    expect(emitted.find((e) => 'PolicyAccountsLeftOut' in e)?.PolicyAccountsLeftOut).toBe(1);
  }, 60_000);

  it('when the search gives up, the run fails and the bucket keeps the policy it had', async () => {
    await handler()({});
    const before = proxy.policies.get(TOKEN_BUCKET);
    const ghosts = Array.from({ length: 20 }, (_, i) => `5555666677${String(i).padStart(2, '0')}`);
    for (const g of ghosts) proxy.invalidAccounts.add(g);
    await putConfig(grants(ghosts.map((g) => ghost(g, 'ghost')).join('')));
    const err = await handler()({}).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'STORE',
      message: `s3://${TOKEN_BUCKET} (bucket policy): S3 refuses the policy (MalformedPolicy: Invalid principal in policy) and 24 attempts did not find which reader accounts it refuses; the bucket keeps its previous policy`,
    });
    expect(proxy.policies.get(TOKEN_BUCKET)).toBe(before);
  }, 60_000);
});

describe('only the owner can read its token (policy as written, independent evaluator)', () => {
  let policy: unknown;
  beforeEach(async () => {
    await handler()({});
    policy = JSON.parse(
      (await s3.send(new GetBucketPolicyCommand({ Bucket: TOKEN_BUCKET }))).Policy ?? '',
    );
  });
  const tokens = `arn:aws:s3:::${TOKEN_BUCKET}/tokens/*`;
  const own = allow('s3:GetObject', tokens);
  const everything = allow('s3:*', '*');
  const A = 'Allowed';
  const I = 'ImplicitlyDenied';
  const X = 'ExplicitlyDenied';
  // who (request principal, aws:PrincipalArn) × object × action × identity policy → decision
  const TABLE: [
    string,
    string | undefined,
    string | undefined,
    keyof typeof KEY | 'bucket',
    string,
    unknown[],
    string,
  ][] = [
    ['role reads its own token', ARN.ci, ARN.ci, 'ci', 's3:GetObject', [own], A],
    ['role reads another token', ARN.ci, ARN.ci, 'alice', 's3:GetObject', [own], X],
    ['role with s3:* reads another token', ARN.ci, ARN.ci, 'web', 's3:GetObject', [everything], X],
    ['role with s3:* lists the bucket', ARN.ci, ARN.ci, 'bucket', 's3:ListBucket', [everything], X],
    [
      'role with s3:* re-tags another token',
      ARN.ci,
      ARN.ci,
      'alice',
      's3:PutObjectTagging',
      [everything],
      X,
    ],
    ['role without identity grant', ARN.ci, ARN.ci, 'ci', 's3:GetObject', [], I],
    ['role with a path reads its own token', ARN.web, ARN.web, 'web', 's3:GetObject', [own], A],
    [
      'EC2 instance-profile session of that role',
      `arn:aws:sts::${ACCOUNT}:assumed-role/ec2-web/i-0abc`,
      ARN.web,
      'web',
      's3:GetObject',
      [own],
      A,
    ],
    [
      'that session reads another token',
      `arn:aws:sts::${ACCOUNT}:assumed-role/ec2-web/i-0abc`,
      ARN.web,
      'ci',
      's3:GetObject',
      [own],
      X,
    ],
    ['IAM user reads its own token', ARN.alice, ARN.alice, 'alice', 's3:GetObject', [own], A],
    ['cross-account user with identity policy', ARN.bob, ARN.bob, 'bob', 's3:GetObject', [own], A],
    ['cross-account user without identity policy', ARN.bob, ARN.bob, 'bob', 's3:GetObject', [], I],
    [
      'cross-account user reads another token',
      ARN.bob,
      ARN.bob,
      'alice',
      's3:GetObject',
      [everything],
      X,
    ],
    [
      'account not in the config',
      'arn:aws:iam::999988887777:role/x',
      'arn:aws:iam::999988887777:role/x',
      'ci',
      's3:GetObject',
      [everything],
      X,
    ],
    ['anonymous', undefined, undefined, 'ci', 's3:GetObject', [], I],
    ['the minter writes', MINTER, MINTER, 'ci', 's3:PutObject', [everything], A],
    ['the minter lists', MINTER, MINTER, 'bucket', 's3:ListBucket', [everything], A],
  ];
  it.each(TABLE)(
    '%s',
    async (_what, principal, principalArn, object, action, identity, expected) => {
      const owner = object === 'bucket' ? undefined : ARN[object];
      const decision = await decideS3({
        bucketPolicy: policy,
        bucket: TOKEN_BUCKET,
        bucketAccount: ACCOUNT,
        ...(principal ? { principal } : {}),
        ...(principalArn ? { principalArn } : {}),
        action,
        ...(object === 'bucket' ? {} : { key: KEY[object], ownerTag: owner }),
        identityPolicies: identity,
      });
      expect(decision).toBe(expected);
    },
  );
});

describe('the registry accepts tokens minted on AWS', () => {
  let registry: RunningRegistry;
  afterAll(async () => registry?.stop());

  it('verifies per-run certificate tokens and KMS-signed (direct) tokens against the published bundle', async () => {
    await handler()({});
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, await getText(TOKEN_BUCKET, 'trust/bundle.pem'));
    registry = await startRegistry({
      service: 'registry.test',
      issuer: 'regtoken',
      rootCertBundlePath: bundle,
    });
    const ci = (await tokenDoc(KEY.ci)).token;
    const alice = (await tokenDoc(KEY.alice)).token;
    expect((await pushImage(registry.host, 'team-a/app', ci)).ok).toBe(true);
    expect((await pullImage(registry.host, 'team-a/app', alice)).ok).toBe(true);
    expect((await pushImage(registry.host, 'team-a/app', alice)).ok).toBe(false);
    expect((await pushImage(registry.host, 'team-b/app', ci)).ok).toBe(false);
    expect((await registryGet(registry.url, '/v2/_catalog', ci)).status).toBe(401);

    // A second run signs with a new ephemeral key: no registry restart needed.
    await handler()({});
    const ci2 = (await tokenDoc(KEY.ci)).token;
    expect(decodeProtectedHeader(ci2).x5c).not.toEqual(decodeProtectedHeader(ci).x5c);
    expect((await pullImage(registry.host, 'team-a/app', ci2)).ok).toBe(true);

    // Direct mode: KMS signs each token (DER → JOSE), the registry finds the key by kid.
    await handler({ signingMode: 'direct' })({});
    const direct = (await tokenDoc(KEY.alice)).token;
    expect(decodeProtectedHeader(direct).kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    expect((await pullImage(registry.host, 'team-a/app', direct)).ok).toBe(true);
  }, 60_000);

  it('follows the documented root rotation to its end: a retired root leaves the bundle, and its tokens are refused', async () => {
    const next = await new KMSClient({}).send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    );
    const newKey = next.KeyMetadata?.Arn ?? '';
    const certs = (pem: string) =>
      pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    const bundle = async () => getText(TOKEN_BUCKET, 'trust/bundle.pem');
    const ciToken = async () => (await tokenDoc(KEY.ci)).token as string;
    const serve = async (pem: string) => {
      await registry?.stop();
      const path = join(dir, 'rotation-bundle.pem');
      writeFileSync(path, pem);
      registry = await startRegistry({
        service: 'registry.test',
        issuer: 'regtoken',
        rootCertBundlePath: path,
      });
    };
    const accepted = async (token: string) =>
      (await registryGet(registry.url, '/v2/', token)).status;

    // Step 1 (before the rotation): the old key signs alone.
    await handler()({});
    const [oldRoot] = certs(await bundle());
    const underOld = await ciToken();
    // Step 2: the new key is trusted too; both roots are published.
    await handler({ trustedKeys: [newKey] })({});
    const [, newRoot] = certs(await bundle());
    expect(certs(await bundle())).toEqual([oldRoot, newRoot]);
    // Step 3: the new key signs, the old one stays trusted: tokens under either are accepted.
    await handler({ signingKey: `kms:${newKey}`, trustedKeys: [kmsKeyArn] })({});
    expect(certs(await bundle())).toEqual([newRoot, oldRoot]);
    const underNew = await ciToken();
    await serve(await bundle());
    expect(await accepted(underOld)).toBe(200);
    expect(await accepted(underNew)).toBe(200);
    // Step 4: the old key is no longer trusted: its root leaves the bundle, and once the
    // registry is restarted with it, a token under the old root is refused though unexpired.
    await handler({ signingKey: `kms:${newKey}`, trustedKeys: [] })({});
    expect(certs(await bundle())).toEqual([newRoot]);
    await serve(await bundle());
    expect(await accepted(underOld)).toBe(401);
    expect(await accepted(underNew)).toBe(200);
    expect(await accepted(await ciToken())).toBe(200);
  }, 120_000);
});

describe('faults', () => {
  it('retries throttling and 5xx with backoff and finishes', async () => {
    proxy.setRules([
      { method: 'PUT', path: /ci-runner\.json/, status: 503, times: 2 },
      { method: 'PUT', path: /alice\.json/, status: 500, times: 1 },
    ]);
    const result = await handler()({});
    expect(result.minted).toBe(4);
    expect(proxy.hits.size).toBe(2);
    expect([...proxy.hits.values()]).toEqual([2, 1]);
  });

  it('keeps the previous token of a principal whose write keeps failing; others are unaffected', async () => {
    await handler()({});
    const aliceBefore = await tokenDoc(KEY.alice);
    const ciBefore = await tokenDoc(KEY.ci);
    proxy.setRules([
      { method: 'PUT', path: /alice\.json/, status: 503, times: Number.POSITIVE_INFINITY },
    ]);
    const err = await handler()({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunIncompleteError);
    expect((err as RunIncompleteError).failed).toEqual([ARN.alice]);
    expect((err as Error).message).toContain(`could not write s3://${TOKEN_BUCKET}/${KEY.alice}`);
    expect(await tokenDoc(KEY.alice)).toEqual(aliceBefore);
    expect((await tokenDoc(KEY.ci)).token).not.toBe(ciBefore.token);
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.alice, KEY.bob].sort());
  }, 60_000);
});

describe('overlapping runs', () => {
  it('never leaves tokens of an older config after a run of a newer one', async () => {
    // Run A starts on config v1; its token writes are held at the proxy, so it holds the lock
    // until the test lets them through. Meanwhile v2 is uploaded and run B (the upload's
    // trigger) starts: B finds the lock held and steps aside; A notices the new version after
    // releasing the lock and mints again, so the tokens end on v2.
    let letThrough: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      letThrough = resolve;
    });
    proxy.setRules([
      { method: 'PUT', path: /\/tokens\//, hold: held, times: Number.POSITIVE_INFINITY },
    ]);
    const seenBefore = proxy.seen.length;
    const runA = handler()({});
    // Wait until A's first token write reaches the proxy (A holds the lock from then on).
    const writing = () => proxy.seen.slice(seenBefore).some((l) => /^PUT \S*\/tokens\//.test(l));
    const deadline = Date.now() + 30_000;
    while (!writing()) {
      if (Date.now() > deadline) throw new Error('run A wrote no token within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    const v2 = await putConfig(grants().replace(`[${ARN.web}, ${ARN.alice}]`, `[${ARN.web}]`));
    const b = await handler()({});
    expect(b).toEqual({ skipped: true });
    proxy.setRules([]);
    letThrough();
    const a = await runA;
    expect(a).toMatchObject({ skipped: false, configVersion: v2, passes: 2 });
    expect(await tokenKeys()).toEqual([KEY.ci, KEY.web, KEY.bob].sort());
  }, 60_000);

  it('takes over a lock whose holder died, once its lease and margin are over by S3 time', async () => {
    // The dead holder's lease was 2 s and it kept 0.5 s free of writes (its own settings, in
    // the lock object); Last-Modified has 1 s resolution.
    await s3.send(
      new PutObjectCommand({
        Bucket: TOKEN_BUCKET,
        Key: 'state/lock.json',
        Body: JSON.stringify({ owner: 'dead', leaseMs: 2_000, marginMs: 500 }),
      }),
    );
    await new Promise((r) => setTimeout(r, 2_000 + 500 + 1_500));
    expect(await handler()({})).toMatchObject({ skipped: false, minted: 4 });
  });

  it('steps aside while a live run holds the lock', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: TOKEN_BUCKET,
        Key: 'state/lock.json',
        Body: JSON.stringify({ owner: 'live', leaseMs: 60_000, marginMs: 10_000 }),
      }),
    );
    expect(await handler()({})).toEqual({ skipped: true });
    expect(await tokenKeys()).toEqual([]);
  });
});
