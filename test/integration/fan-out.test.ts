/**
 * A fanned-out mint run (the construct's `fanOut` option) against the AWS stand-in, driven by
 * the state machine definition exactly as synthesized (test/helpers/states.ts): the functions it
 * names, the manifest its Map's ItemReader reads (bucket and key from the plan step's output),
 * the item shape its ItemSelector makes, its MaxConcurrency, retries, tolerated failures and
 * Catch. The three handlers run in this process with the environment the template gives each
 * (or, to be killed mid-shard, in a child process), against moto_server behind the fault proxy.
 *
 * Checked: the result equals a single-function run on the same setup (10 accounts, 2,000
 * principals); a worker killed after writing half its shard is retried and rewrites valid
 * tokens; a worker that keeps failing fails the execution while the finish step still releases
 * the lock; a dead execution's lock is taken over once its lease has run out; a grants upload
 * during a run starts the next pass; shard files are readable by no principal (independent IAM
 * evaluator, with the roles' statements from the template).
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import { CONFIG_BUCKET, REGISTRY_BUCKET, setupAws, TOKEN_BUCKET } from '../../bench/e2e.js';
import { generateWorkload, type Workload } from '../../bench/generate.js';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { mapLimit } from '../../lambda/core/pool.js';
import { parsePrincipal, tokenKey } from '../../lambda/core/principal.js';
import { decodeClaims } from '../../lambda/core/token.js';
import { parseTrustBundle } from '../../lambda/core/trust.js';
import { TokenVerifier } from '../../lambda/core/verify.js';
import { readEnv } from '../../lambda/env.js';
import { createHandler, lambdaSettings } from '../../lambda/handler.js';
import {
  ACCOUNT,
  type DeployedFunction,
  deployFanOut,
  type FanOutDeployment,
  type FanOutRuntime,
  fanOutRuntime,
} from '../helpers/fan-out.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { allow, decideS3 } from '../helpers/iam-eval.js';
import { applyAwsTestEnv, type Moto, startMoto } from '../helpers/moto.js';
import { ExecutionAborted, type Outcome, runExecution } from '../helpers/states.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const FAN_OUT = { shardSize: 120, maxConcurrency: 4 };

let moto: Moto;
let proxy: FaultProxy;
let restoreEnv: () => void;
let dir: string;
let s3: S3Client;
let deployment: FanOutDeployment;
let executions = 0;

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy(moto.endpoint);
  restoreEnv = applyAwsTestEnv(proxy.endpoint);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true'; // keep the handlers' metrics off the test output
  dir = await makeTempDir('fan-out-');
  s3 = new S3Client({});
}, 60_000);

afterAll(async () => {
  delete process.env.POWERTOOLS_METRICS_DISABLED;
  s3?.destroy();
  restoreEnv?.();
  await proxy?.stop();
  await moto?.stop();
  await removeTempDir(dir);
});

/** A fresh stand-in holding `w` (buckets, IAM, KMS key, inventory, grants), and the deployment. */
async function world(w: Workload): Promise<void> {
  await moto.reset();
  proxy.policies.clear();
  proxy.setRules([]);
  const setup = await setupAws(w);
  deployment = deployFanOut(
    {
      configBucket: CONFIG_BUCKET,
      tokenBucket: TOKEN_BUCKET,
      registryBucket: REGISTRY_BUCKET,
      kmsKeyArn: setup.kmsKeyArn,
    },
    FAN_OUT,
  );
}

function runtime(options: Omit<Parameters<typeof fanOutRuntime>[2], 'endpoint' | 'dir'> = {}) {
  return fanOutRuntime(deployment, s3, { endpoint: proxy.endpoint, dir, ...options });
}

/** One execution, started as the schedule starts it (or with `input`). */
function execute(
  rt: FanOutRuntime,
  input: unknown = { source: 'regtoken.schedule' },
): Promise<Outcome> {
  const name = `exec-${++executions}`;
  const machine = deployment.stateMachineArn.split(':').pop();
  return runExecution(deployment.definition, input, rt, {
    execution: `arn:aws:states:us-east-1:${ACCOUNT}:execution:${machine}:${name}`,
    name,
    stateMachine: deployment.stateMachineArn,
  });
}

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(
      new ListObjectsV2Command({ Bucket: TOKEN_BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) out.push(o.Key ?? '');
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out.sort();
}

async function text(key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: TOKEN_BUCKET, Key: key }));
  return (await r.Body?.transformToString('utf8')) ?? '';
}

async function removeAll(list: readonly string[]): Promise<void> {
  for (let at = 0; at < list.length; at += 1000)
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: TOKEN_BUCKET,
        Delete: { Objects: list.slice(at, at + 1000).map((Key) => ({ Key })) },
      }),
    );
}

/** Token objects of principals no longer granted (and of a principal IAM no longer knows). */
async function plantStale(w: Workload): Promise<string[]> {
  const deleted = w.principals.filter((p) => !p.exists).map((p) => p.arn);
  const gone = [
    ...deleted,
    ...w.accounts.slice(0, 3).map((a, i) => `arn:aws:iam::${a}:role/left-the-company-${i}`),
  ];
  const planted = gone.map((arn) => {
    const p = parsePrincipal(arn);
    if (!p.ok) throw new Error(p.reason);
    return tokenKey(p.value);
  });
  for (const key of planted)
    await s3.send(new PutObjectCommand({ Bucket: TOKEN_BUCKET, Key: key, Body: '{}' }));
  return planted.sort();
}

/** What a run leaves, compared across runs: everything but each token's own randomness and times. */
interface Snapshot {
  readonly keys: readonly string[];
  readonly tokens: Record<string, unknown>;
  readonly owners: Record<string, string | undefined>;
  readonly policy: string | undefined;
  readonly bundle: string;
  readonly jwks: string;
  /** Distinct signing certificates among the tokens. */
  readonly leaves: number;
}

async function snapshot(w: Workload): Promise<Snapshot> {
  const tokenKeys = await keys('tokens/');
  const bundle = await text('trust/bundle.pem');
  const verifier = new TokenVerifier(parseTrustBundle(bundle, 'trust/bundle.pem'));
  const tokens: Record<string, unknown> = {};
  const owners: Record<string, string | undefined> = {};
  const leaves = new Set<string>();
  const invalid: string[] = [];
  await mapLimit(tokenKeys, 16, async (key) => {
    const doc = JSON.parse(await text(key));
    const verified = verifier.verify(doc.token, {
      issuer: 'regtoken',
      service: 'registry.example.com',
      now: new Date(),
    });
    if (!verified.ok) invalid.push(`${key}: ${verified.reason}`);
    const claims = decodeClaims(doc.token);
    leaves.add(String(decodeProtectedHeader(doc.token).x5c));
    tokens[key] = {
      principal: doc.principal,
      registry: doc.registry,
      access: doc.access,
      sub: claims?.sub,
      aud: claims?.aud,
      iss: claims?.iss,
      claimsAccess: claims?.access,
      lifetime: (claims?.exp ?? 0) - (claims?.iat ?? 0),
    };
  });
  // The owner tag on every tenth object (the tag is what the bucket policy reads).
  for (const key of tokenKeys.filter((_, i) => i % 10 === 0)) {
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: TOKEN_BUCKET, Key: key }));
    owners[key] = tags.TagSet?.find((t) => t.Key === 'owner')?.Value;
  }
  expect(invalid).toEqual([]);
  expect(Object.keys(tokens)).toHaveLength(w.principals.filter((p) => p.exists).length);
  return {
    keys: tokenKeys,
    tokens,
    owners,
    policy: proxy.policies.get(TOKEN_BUCKET),
    bundle,
    jwks: await text('trust/jwks.json'),
    leaves: leaves.size,
  };
}

/** How many shards the plan must cut: one per account (known principals), split at the size. */
function expectedShards(w: Workload): number {
  const perAccount = new Map<string, number>();
  for (const p of w.principals.filter((q) => q.exists))
    perAccount.set(p.account, (perAccount.get(p.account) ?? 0) + 1);
  return [...perAccount.values()].reduce((n, c) => n + Math.ceil(c / FAN_OUT.shardSize), 0);
}

async function lockBody(): Promise<{ released?: boolean; leaseMs?: number }> {
  return JSON.parse(await text('state/lock.json'));
}

describe('a fanned-out run, driven by the synthesized definition', () => {
  it('leaves what a single-function run leaves (10 accounts, 2,000 principals)', async () => {
    const w = generateWorkload(2000, ACCOUNT, { accounts: 10 });
    expect(w.accounts).toHaveLength(10);
    await world(w);
    const stale = await plantStale(w);

    const rt = runtime();
    const outcome = await execute(rt);
    expect(ended(outcome)).toEqual({ status: 'SUCCEEDED' });
    const fanned = await snapshot(w);
    const shards = rt.invocations.filter((i) => i.startsWith('shard'));
    expect(shards).toHaveLength(expectedShards(w));
    expect(rt.invocations[0]).toBe('plan#1');
    expect(rt.invocations.at(-1)).toBe('finish#1');
    // Shards ran side by side, as many as the definition's MaxConcurrency allows.
    expect(rt.maxShardsInFlight).toBe(deployment.definition.States.MintShards.MaxConcurrency);
    expect(rt.maxShardsInFlight).toBe(FAN_OUT.maxConcurrency);
    // Each worker certified a key of its own.
    expect(fanned.leaves).toBe(shards.length);
    expect(stale.filter((k) => fanned.keys.includes(k))).toEqual([]);
    expect(await keys('state/runs/')).toEqual([]);
    expect(await lockBody()).toMatchObject({ released: true });
    expect(rt.metrics.get('finish')?.added).toEqual(
      expect.arrayContaining([
        `TokensMinted ${fanned.keys.length}`,
        'TokenFailures 0',
        `TokensRemoved ${stale.length}`,
        'RunsSucceeded 1',
      ]),
    );

    // The same setup again, tokens gone and the stale ones back, for one function.
    await removeAll(fanned.keys);
    await plantStale(w);
    proxy.policies.delete(TOKEN_BUCKET);
    const single = await createHandler({
      settings: () => lambdaSettings(readEnv({ ...deployment.fn('plan').environment })),
      aws: new AwsClients(),
      logger: new Logger({ serviceName: 'regtoken', logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'regtoken', serviceName: 'regtoken' }),
    })({});
    expect(single).toMatchObject({ minted: fanned.keys.length, removed: stale.length, passes: 1 });
    const one = await snapshot(w);
    expect(one.leaves).toBe(1);
    expect(one.keys).toEqual(fanned.keys);
    expect(one.tokens).toEqual(fanned.tokens);
    expect(one.owners).toEqual(fanned.owners);
    expect(one.policy).toBe(fanned.policy);
    expect(one.bundle).toBe(fanned.bundle);
    expect(one.jwks).toBe(fanned.jwks);
  }, 600_000);
});

describe('faults', () => {
  const small = generateWorkload(300, ACCOUNT, { accounts: 3 });

  it('a worker killed after writing half its shard is retried and rewrites the same keys with valid tokens', async () => {
    await world(small);
    let victim: { index: number; keys: string[] } | undefined;
    const rt = runtime({
      mode: (fn, payload, attempt) => {
        const item = (payload as { run?: string; item?: { index: number } }).item;
        if (fn.handler !== 'index.shard' || attempt !== 1 || item?.index !== 2) return 'in-process';
        return { child: (child) => killAfterHalf(payload as ShardEvent, child) };
      },
    });
    /** Lets half the shard's token writes through, holds the rest, then kills the worker. */
    const killAfterHalf = async (
      event: ShardEvent,
      child: import('../helpers/process.js').LongRunningProcess,
    ) => {
      const shard = JSON.parse(await text(`state/runs/${event.run}/shard-0002.json`)) as {
        principals: { principal: { account: string; type: 'role' | 'user'; name: string } }[];
      };
      const shardKeys = shard.principals.map((p) => tokenKey(p.principal as never));
      victim = { index: 2, keys: shardKeys.sort() };
      const mine = new RegExp(
        `^/${TOKEN_BUCKET}/(${shardKeys.map(escapeRegExp).join('|')})(\\?|$)`,
      );
      const half = Math.floor(shardKeys.length / 2);
      const through = { method: 'PUT', path: mine, times: half };
      const held = {
        method: 'PUT',
        path: mine,
        times: Number.POSITIVE_INFINITY,
        hold: new Promise(() => undefined),
      };
      proxy.setRules([through, held]);
      await waitFor(
        () => (proxy.hits.get(held) ?? 0) > 0 || child.exitCode() !== undefined,
        60_000,
      );
      if (child.exitCode() !== undefined)
        throw new Error(`the worker ended before it was killed:\n${child.output()}`);
      await child.stop();
      proxy.setRules([]);
      // Exactly half the shard was written when the worker died.
      await waitFor(async () => (await present(shardKeys)).length === half, 10_000);
      expect(await present(shardKeys)).toHaveLength(half);
    };
    const outcome = await execute(rt);
    expect(ended(outcome)).toEqual({ status: 'SUCCEEDED' });
    expect(victim).toBeDefined();
    const history = outcome.history.filter((h) => h.includes('MintShards[1]'));
    expect(history).toContain('MintShards[1] retry Shard Runtime.ExitError wait<=5 (full jitter)');
    expect(rt.invocations).toEqual(expect.arrayContaining(['shard 2#1', 'shard 2#2']));
    const after = await snapshot(small);
    // Every key of the shard holds a valid token (snapshot verified them all), and all of them
    // come from the retry: one signing certificate per shard, none left from the dead worker.
    expect(after.keys).toEqual(expect.arrayContaining(victim?.keys ?? ['?']));
    expect(after.leaves).toBe(
      rt.invocations.filter((i) => i.startsWith('shard') && i.endsWith('#1')).length,
    );
    expect(await lockBody()).toMatchObject({ released: true });
  }, 300_000);

  it('a worker that keeps failing fails the execution, and the finish step still releases the lock', async () => {
    await world(small);
    const stale = await plantStale(small);
    // Its shard file cannot be read (as after a lost permission): every attempt fails.
    const refused = {
      method: 'GET',
      path: /\/state\/runs\/[^/]+\/shard-0002\.json/,
      status: 403 as const,
      times: Number.POSITIVE_INFINITY,
    };
    proxy.setRules([refused]);
    const rt = runtime();
    const outcome = await execute(rt);
    proxy.setRules([]);
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'ShardFailed' });
    expect(outcome.status === 'FAILED' && outcome.cause).toMatch(
      /^a shard failed after its retries: States\.ExceedToleratedFailureThreshold: /,
    );
    const retries = outcome.history.filter((h) => / retry Shard /.test(h));
    expect(retries).toEqual([
      'MintShards[1] retry Shard StoreError wait<=5 (full jitter)',
      'MintShards[1] retry Shard StoreError wait<=10 (full jitter)',
      'MintShards[1] retry Shard StoreError wait<=20 (full jitter)',
    ]);
    expect(outcome.history).toContain('catch MintShards States.ExceedToleratedFailureThreshold');
    expect(outcome.history.slice(-4)).toEqual([
      'enter Finish',
      'enter ConfigChanged',
      'enter Outcome',
      'enter RunFailed',
    ]);
    expect(await lockBody()).toMatchObject({ released: true });
    // Nothing removed (the next run does it), the run's files kept for diagnosis.
    expect(await present(stale)).toEqual(stale);
    expect((await keys('state/runs/')).length).toBeGreaterThan(0);
    expect(rt.metrics.get('finish')?.added).toEqual(['RunsFailed 1']);

    // The lock is free: the next run mints and removes the stale tokens.
    const next = await execute(runtime());
    expect(next.status).toBe('SUCCEEDED');
    expect(await present(stale)).toEqual([]);
  }, 300_000);

  it('a dead execution keeps the lock until its lease runs out; then the next execution takes over', async () => {
    await world(small);
    let lateShard: unknown;
    const dying = runtime({
      before: async (fn, payload) => {
        if (fn.handler !== 'index.shard') return;
        lateShard = payload;
        throw new ExecutionAborted('the execution died');
      },
    });
    expect((await execute(dying)).status).toBe('ABORTED');
    const held = await lockBody();
    expect(held.released).toBeUndefined();
    // The lease covers the execution's timeout and one function's (from the template).
    expect(deployment.fn('plan').environment.REGTOKEN_LOCK_LEASE).toBe('36m');
    expect(held.leaseMs).toBe(36 * 60_000);

    const blocked = runtime();
    const skipped = await execute(blocked);
    expect(skipped).toMatchObject({ status: 'SUCCEEDED', output: { skipped: true } });
    expect(skipped.history.at(-1)).toBe('enter Skipped');
    expect(blocked.metrics.get('plan')?.added).toEqual(['RunsSkipped 1']);
    expect(await keys('tokens/')).toEqual([]);

    // The lease runs out: the lock rewritten with a lease of one second (S3 judges it by the
    // object's Last-Modified, which a test cannot set 36 minutes back).
    await s3.send(
      new PutObjectCommand({
        Bucket: TOKEN_BUCKET,
        Key: 'state/lock.json',
        Body: JSON.stringify({ ...held, leaseMs: 1_000, marginMs: 500 }),
      }),
    );
    await new Promise((r) => setTimeout(r, 1_600));
    const takeover = await execute(runtime());
    expect(takeover.status).toBe('SUCCEEDED');
    expect(await keys('tokens/')).toHaveLength(small.principals.filter((p) => p.exists).length);
    expect(await lockBody()).toMatchObject({ released: true });

    // A worker of the dead execution that comes back late writes nothing: the lock is no
    // longer its run's.
    const late = runtime();
    await expect(
      late.invoke(deployment.fn('shard').arn, lateShard, { state: 'Shard', attempt: 1 }),
    ).rejects.toMatchObject({
      name: 'LeaseExpiredError',
      message: expect.stringMatching(/no longer this run's/),
    });
  }, 300_000);

  it('a grants upload during a run starts the next pass, which mints the new grants', async () => {
    await world(small);
    const dropped = small.principals.find((p) => p.exists && p.type === 'user');
    if (!dropped) throw new Error('no user in the workload');
    const rt = runtime({
      before: async (fn) => {
        if (fn.handler !== 'index.finish') return;
        const next = small.configText.replace(
          new RegExp(`^ *- ${escapeRegExp(dropped.arn)}\\n`, 'm'),
          '',
        );
        expect(next).not.toBe(small.configText);
        await s3.send(
          new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: 'grants.yaml', Body: next }),
        );
      },
    });
    const first = await execute(rt);
    expect(first.status).toBe('SUCCEEDED');
    expect(first.history.slice(-3)).toEqual(['enter StartNextPass', 'enter Outcome', 'enter Done']);
    expect(rt.started).toEqual([
      {
        stateMachineArn: deployment.stateMachineArn,
        input: { source: 'regtoken.config-changed', pass: 2 },
      },
    ]);
    const droppedKey = tokenKey(parsePrincipalOrThrow(dropped.arn));
    expect(await present([droppedKey])).toEqual([droppedKey]);
    const second = await execute(runtime(), rt.started[0]?.input);
    expect(second.status).toBe('SUCCEEDED');
    expect(await present([droppedKey])).toEqual([]);
  }, 300_000);
});

describe('shard files under state/ are readable by no principal', () => {
  it('the bucket policy the run wrote denies them to everyone but the minters (independent evaluator)', async () => {
    const w = generateWorkload(100, ACCOUNT, { accounts: 3 });
    await world(w);
    // An execution that dies after its plan step leaves its shard files in place.
    await execute(
      runtime({
        before: async (fn) => {
          if (fn.handler === 'index.shard') throw new ExecutionAborted('the execution died');
        },
      }),
    );
    const [shard] = await keys('state/runs/');
    const files = await keys('state/runs/');
    const manifest = files.find((k) => k.endsWith('/manifest.json')) ?? '?';
    const shardFile = files.find((k) => /\/shard-\d{4}\.json$/.test(k)) ?? '?';
    expect(shard).toBeDefined();
    const policy = JSON.parse(proxy.policies.get(TOKEN_BUCKET) ?? '{}');
    const principal = w.principals.find(
      (p) => p.exists && p.account === ACCOUNT && p.type === 'role',
    );
    const foreign = w.principals.find((p) => p.account !== ACCOUNT);
    if (!principal || !foreign) throw new Error('workload without the principals needed');
    const everything = allow('s3:*', '*');
    const role = (f: DeployedFunction) => f.roleArn;
    const decide = (who: string | undefined, key: string, action: string, identity: unknown[]) =>
      decideS3({
        bucketPolicy: policy,
        bucket: TOKEN_BUCKET,
        bucketAccount: ACCOUNT,
        ...(who ? { principal: who, principalArn: who } : {}),
        action,
        key,
        identityPolicies: identity,
      });
    const asPolicy = (statements: unknown[]) => [{ Version: '2012-10-17', Statement: statements }];
    const rows: [string, string | undefined, string, string, unknown[], string][] = [
      [
        'a granted role with s3:* reads a shard',
        principal.arn,
        shardFile,
        's3:GetObject',
        [everything],
        'ExplicitlyDenied',
      ],
      [
        'it reads the manifest',
        principal.arn,
        manifest,
        's3:GetObject',
        [everything],
        'ExplicitlyDenied',
      ],
      [
        'it reads the shard’s tags',
        principal.arn,
        shardFile,
        's3:GetObjectTagging',
        [everything],
        'ExplicitlyDenied',
      ],
      [
        'a principal of another account',
        foreign.arn,
        shardFile,
        's3:GetObject',
        [everything],
        'ExplicitlyDenied',
      ],
      ['anonymous', undefined, shardFile, 's3:GetObject', [], 'ExplicitlyDenied'],
      [
        'the shard worker (its template role)',
        role(deployment.fn('shard')),
        shardFile,
        's3:GetObject',
        asPolicy(deployment.policies(role(deployment.fn('shard')))),
        'Allowed',
      ],
      [
        'the shard worker reads the lock (it joins the run’s lease)',
        role(deployment.fn('shard')),
        'state/lock.json',
        's3:GetObject',
        asPolicy(deployment.policies(role(deployment.fn('shard')))),
        'Allowed',
      ],
      [
        'the shard worker writes the lock',
        role(deployment.fn('shard')),
        'state/lock.json',
        's3:PutObject',
        asPolicy(deployment.policies(role(deployment.fn('shard')))),
        'ImplicitlyDenied',
      ],
      [
        'the finish step reads and releases the lock',
        role(deployment.fn('finish')),
        'state/lock.json',
        's3:PutObject',
        asPolicy(deployment.policies(role(deployment.fn('finish')))),
        'Allowed',
      ],
      [
        'a granted role with s3:* reads the lock',
        principal.arn,
        'state/lock.json',
        's3:GetObject',
        [everything],
        'ExplicitlyDenied',
      ],
      [
        'the state machine reads the manifest',
        deployment.stateMachineRoleArn,
        manifest,
        's3:GetObject',
        asPolicy(deployment.policies(deployment.stateMachineRoleArn)),
        'Allowed',
      ],
      [
        'the state machine reads a shard',
        deployment.stateMachineRoleArn,
        shardFile,
        's3:GetObject',
        asPolicy(deployment.policies(deployment.stateMachineRoleArn)),
        'ImplicitlyDenied',
      ],
      [
        'the plan step reads a shard back',
        role(deployment.fn('plan')),
        shardFile,
        's3:GetObject',
        asPolicy(deployment.policies(role(deployment.fn('plan')))),
        'ImplicitlyDenied',
      ],
      [
        'the plan step writes one',
        role(deployment.fn('plan')),
        shardFile,
        's3:PutObject',
        asPolicy(deployment.policies(role(deployment.fn('plan')))),
        'Allowed',
      ],
    ];
    const decisions = [];
    for (const [what, who, key, action, identity] of rows)
      decisions.push([what, await decide(who, key, action, identity)]);
    expect(decisions).toEqual(rows.map(([what, , , , , expected]) => [what, expected]));
  }, 300_000);
});

interface ShardEvent {
  readonly run: string;
  readonly item: { readonly index: number };
}

/** An outcome's status, with the error and cause of a failed one (shown when a test fails). */
function ended(o: Outcome) {
  return o.status === 'FAILED'
    ? { status: o.status, error: o.error, cause: o.cause, last: o.history.slice(-6) }
    : { status: o.status };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function parsePrincipalOrThrow(arn: string) {
  const p = parsePrincipal(arn);
  if (!p.ok) throw new Error(p.reason);
  return p.value;
}

/** The keys of `list` that exist in the token bucket. */
async function present(list: readonly string[]): Promise<string[]> {
  const all = new Set(await keys(''));
  return list.filter((k) => all.has(k));
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
