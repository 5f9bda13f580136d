/**
 * The run lock against moto_server, with the fault proxy in front: runs that stall past their
 * lease, runs whose clock is wrong, and the sequences that once brought a revoked token back or
 * minted tokens not valid yet. Each sequence ends with the revoked principal's token absent and
 * no token valid only in the future.
 *
 * A stall is made where it happens in real runs: inside the run (here: the signature of one
 * token waits until the test lets it go, as a paused process or a slow KMS call would). A wrong
 * clock is made by faking the test process's Date (jest fake timers, Date only): the run's own
 * idea of the time, nothing else.
 */

import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  jest,
} from '@jest/globals';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { S3RunLock } from '../../lambda/adapters/s3/run-lock.js';
import { S3TokenStore } from '../../lambda/adapters/s3/token-store.js';
import { Lease, LeaseFence } from '../../lambda/core/lease.js';
import { noMetrics, type Signer, silentLogger } from '../../lambda/core/ports.js';
import { decodeClaims } from '../../lambda/core/token.js';
import { LeaseExpiredError } from '../../lambda/errors.js';
import { mintExclusive } from '../../lambda/mint.js';
import { type RunSettings, wire } from '../../lambda/run.js';
import { awsSide } from '../../lambda/run-aws.js';
import {
  ACCOUNT,
  type AwsStandIn,
  CONFIG_BUCKET,
  createDeployment,
  MINTER,
  minterSettings,
  quietHandler,
  startAwsStandIn,
  TOKEN_BUCKET,
} from '../helpers/aws-stand-in.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';

const ARN = {
  ci: `arn:aws:iam::${ACCOUNT}:role/ci-runner`,
  alice: `arn:aws:iam::${ACCOUNT}:user/alice`,
} as const;
const KEY = {
  ci: `tokens/${ACCOUNT}/role/ci-runner.json`,
  alice: `tokens/${ACCOUNT}/user/alice.json`,
} as const;
/** The registry's leeway on nbf: a token valid later than now + this is refused. */
const LEEWAY_MS = 60_000;

const grants = (withAlice: boolean) => `version: 1
registry: {host: registry.test, service: registry.test, issuer: regtoken}
tokenTtl: 1h
grants:
  - principal: ${ARN.ci}
    access: [{repository: team-a/app, actions: [pull, push]}]
${withAlice ? `  - principal: ${ARN.alice}\n    access: [{repository: team-a/app, actions: [pull]}]\n` : ''}`;

let standIn: AwsStandIn;
let proxy: FaultProxy;
let s3: S3Client;
let kmsKeyArn: string;

const settings = (over: Partial<RunSettings> = {}): RunSettings => minterSettings(kmsKeyArn, over);

/** One scheduled run of the Lambda handler. */
function handlerRun(over: Partial<RunSettings> = {}) {
  return quietHandler(() => settings(over))({});
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A run like the handler's, whose signature of `stallOn`'s token waits for `go()`: `stalled`
 * resolves when the run reaches it. The run's S3 requests time out after `requestTimeoutMs`.
 */
function stallingRun(over: Partial<RunSettings>, stallOn: string, requestTimeoutMs = 30_000) {
  let go: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    go = r;
  });
  let reached: () => void = () => undefined;
  const stalled = new Promise<void>((r) => {
    reached = r;
  });
  const aws = awsSide(new AwsClients({ s3RequestTimeoutMs: requestTimeoutMs }));
  const { deps, lock } = wire(settings(over), { aws, logger: silentLogger, metrics: noMetrics });
  if (!lock) throw new Error('no lock');
  const inner = deps.signer;
  const signer: Signer = {
    prepare: async (window) => {
      const key = await inner.prepare(window);
      return {
        ...key,
        sign: async (input: Uint8Array) => {
          const payload = Buffer.from(input).toString().split('.')[1] ?? '';
          if (JSON.parse(Buffer.from(payload, 'base64url').toString()).sub === stallOn) {
            reached();
            await gate;
          }
          return key.sign(input);
        },
      };
    },
  };
  const run = mintExclusive({ ...deps, signer }, lock);
  run.catch(() => undefined); // awaited by the test
  return { run, stalled, go: () => go() };
}

async function tokenKeys(): Promise<string[]> {
  const list = await s3.send(new ListObjectsV2Command({ Bucket: TOKEN_BUCKET, Prefix: 'tokens/' }));
  return (list.Contents ?? []).map((o) => o.Key ?? '').sort();
}

/** The nbf of every token in the bucket (ms). */
async function notBefore(): Promise<number[]> {
  const out: number[] = [];
  for (const key of await tokenKeys()) {
    const r = await s3.send(new GetObjectCommand({ Bucket: TOKEN_BUCKET, Key: key }));
    const doc = JSON.parse((await r.Body?.transformToString()) ?? '{}');
    out.push((decodeClaims(doc.token)?.nbf ?? 0) * 1000);
  }
  return out;
}

/** Every token is valid now, by the real clock and the registry's leeway. */
async function expectNoFutureToken(): Promise<void> {
  const limit = Date.now() + LEEWAY_MS;
  for (const nbf of await notBefore()) expect(nbf).toBeLessThanOrEqual(limit);
}

async function putConfig(withAlice: boolean): Promise<void> {
  await s3.send(
    new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: 'grants.yaml', Body: grants(withAlice) }),
  );
}

/** Waits until the proxy sees a request matching `re` after index `from`. */
async function seen(re: RegExp, from: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proxy.seen.slice(from).some((l) => re.test(l))) {
    if (Date.now() > deadline) throw new Error(`no request matching ${re} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

beforeAll(async () => {
  standIn = await startAwsStandIn();
  ({ proxy } = standIn);
}, 60_000);

afterAll(async () => {
  await standIn?.stop();
});

beforeEach(async () => {
  await standIn.reset();
  s3 = new S3Client({});
  kmsKeyArn = await createDeployment({
    roles: [
      ['ci-runner', '/'],
      ['regtoken-minter', '/'],
    ],
    users: [['alice', '/']],
  });
  await putConfig(true);
  expect(await handlerRun()).toMatchObject({ skipped: false, minted: 2 });
  expect(await tokenKeys()).toEqual([KEY.ci, KEY.alice].sort());
}, 60_000);

afterEach(() => {
  jest.useRealTimers();
});

describe('the conditional write that takes the lock', () => {
  const LOCK = 'state/lock.json';
  const racer = (i: number) =>
    new S3RunLock(new S3Client({}), TOKEN_BUCKET, LOCK, `racer-${i}`, {
      leaseMs: 60_000,
      marginMs: 500,
      fence: new LeaseFence(),
    });
  const putLock = (body: object) =>
    s3.send(new PutObjectCommand({ Bucket: TOKEN_BUCKET, Key: LOCK, Body: JSON.stringify(body) }));

  it.each([
    ['absent (If-None-Match: *)', async () => undefined],
    ['given back (If-Match)', async () => putLock({ owner: 'earlier', released: true })],
    [
      'run out (If-Match, after waiting out the margin)',
      async () => {
        await putLock({ owner: 'dead', leaseMs: 1_000, marginMs: 500 });
        await sleep(1_000 + 500 + 1_500); // Last-Modified has 1 s resolution
      },
    ],
  ])(
    'lets exactly one of 8 racing runs take a lock %s',
    async (_name, before) => {
      await before();
      const leases = await Promise.all(Array.from({ length: 8 }, (_, i) => racer(i).acquire()));
      expect(leases.filter((l) => l !== undefined)).toHaveLength(1);
      const r = await s3.send(new GetObjectCommand({ Bucket: TOKEN_BUCKET, Key: LOCK }));
      const winner = JSON.parse((await r.Body?.transformToString()) ?? '{}').owner;
      expect(winner).toMatch(/^racer-[0-7]$/);
    },
    30_000,
  );
});

describe('a process taking the lock it gave back', () => {
  const LOCK = 'state/lock.json';
  const lockOn = (client: S3Client, owner: string) =>
    new S3RunLock(client, TOKEN_BUCKET, LOCK, owner, {
      leaseMs: 60_000,
      marginMs: 500,
      fence: new LeaseFence(),
    });
  const lockRequests = (from: number) =>
    proxy.seen.slice(from).filter((l) => l.includes(`/${TOKEN_BUCKET}/${LOCK}`));

  it('takes it with one conditional write, without reading it first', async () => {
    const client = new S3Client({});
    const first = lockOn(client, 'first');
    expect((await first.acquire())?.sinceOwnRelease).toBe(false);
    await first.release();
    const from = proxy.seen.length;
    // The lease says so: the run may rely on what it read before taking it (docs/aws.md).
    expect((await lockOn(client, 'second').acquire())?.sinceOwnRelease).toBe(true);
    expect(lockRequests(from).map((l) => l.split(' ')[0])).toEqual(['PUT']);
  });

  it('hands the note a run left with it to the next holder of this process only, once', async () => {
    const client = new S3Client({});
    const note = { storedTokens: ['tokens/111122223333/role/ci.json'] };
    const first = lockOn(client, 'first');
    expect((await first.acquire())?.note).toBeUndefined();
    await first.release(note);
    const second = lockOn(client, 'second');
    expect((await second.acquire())?.note).toEqual(note);
    // Given back without a note (a failed run), the next holder gets none.
    await second.release();
    const third = lockOn(client, 'third');
    expect((await third.acquire())?.note).toBeUndefined();
    // Another process between: its lease neither gets the note nor lets this process use it.
    await third.release(note);
    const other = lockOn(new S3Client({}), 'other');
    expect((await other.acquire())?.note).toBeUndefined();
    await other.release();
    const fourth = lockOn(client, 'fourth');
    const lease = await fourth.acquire();
    expect([lease?.sinceOwnRelease, lease?.note]).toEqual([false, undefined]);
    await fourth.release();
  });

  it('reads and judges it when another run has held it since, and never takes a live lease', async () => {
    const client = new S3Client({});
    const first = lockOn(client, 'first');
    expect(await first.acquire()).toBeDefined();
    await first.release();
    // Another process takes the lock and holds it.
    const other = lockOn(new S3Client({}), 'other');
    expect(await other.acquire()).toBeDefined();
    const from = proxy.seen.length;
    expect(await lockOn(client, 'third').acquire()).toBeUndefined();
    // The conditional write fails (the lock is no longer the one given back); the read that
    // follows finds a live lease, which is left alone.
    expect(lockRequests(from).map((l) => l.split(' ')[0])).toEqual(['PUT', 'GET']);
    // Once the other run gives it back, the ordinary path takes it.
    await other.release();
    expect((await lockOn(client, 'fourth').acquire())?.sinceOwnRelease).toBe(false);
  });
});

describe('the fence on writes', () => {
  it('checks the lease before every attempt, so a retry after the deadline is never sent', async () => {
    // The first check finds the lease live; any later one finds it over (an injected clock).
    let checks = 0;
    const fence = new LeaseFence();
    fence.arm(
      new Lease({
        sentAt: 0,
        receivedAt: 0,
        serverAt: Date.now(),
        leaseMs: 60_000,
        marginMs: 10_000,
        where: `s3://${TOKEN_BUCKET}/state/lock.json`,
        monotonic: () => (checks++ === 0 ? 0 : 60_000),
      }),
    );
    const store = new S3TokenStore(
      new AwsClients().s3,
      { bucket: TOKEN_BUCKET, key: '' },
      {
        minterArns: [MINTER],
        partition: 'aws',
        fence,
      },
    );
    // S3 answers the first attempt with 503 SlowDown, which the SDK retries.
    proxy.setRules([{ method: 'PUT', path: /\/tokens\//, status: 503, times: 1 }]);
    const from = proxy.seen.length;
    const doc = {
      principal: ARN.ci,
      registry: 'r',
      token: 'x',
      issuedAt: '',
      expiresAt: '',
      access: [],
    };
    const principal = {
      arn: ARN.ci,
      partition: 'aws',
      account: ACCOUNT,
      type: 'role',
      path: '/',
      name: 'ci-runner',
    } as const;
    await expect(store.putToken(KEY.ci, doc, principal)).rejects.toBeInstanceOf(LeaseExpiredError);
    expect(proxy.seen.slice(from).filter((l) => l.startsWith('PUT '))).toHaveLength(1);
  });
});

describe('a run that stalls past its lease', () => {
  it('cannot bring back a token that the run which took over revoked', async () => {
    // A 8 s lease; S3 requests of run A time out after 1 s, so it keeps the last 2 s of its
    // lease free of writes, and a takeover waits 2 s more.
    const a = stallingRun({ lockLease: '8s' }, ARN.alice, 1_000);
    await a.stalled;
    // Past A's lease and margin by any clock (Last-Modified has 1 s resolution).
    await sleep(8_000 + 2_000 + 1_500);
    await putConfig(false); // alice is revoked
    const b = await handlerRun();
    expect(b).toMatchObject({ skipped: false, removed: 1 });
    expect(await tokenKeys()).toEqual([KEY.ci]);

    // A resumes. Whatever it does next, the moment it gives the lock back (held here so the
    // bucket can be looked at) alice's token must still be gone.
    let letRelease: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      letRelease = r;
    });
    const from = proxy.seen.length;
    proxy.setRules([{ method: 'PUT', path: /\/state\/lock\.json/, hold: held, times: 1 }]);
    a.go();
    await seen(/^PUT \S*\/state\/lock\.json/, from);
    expect(await tokenKeys()).toEqual([KEY.ci]);
    letRelease();
    await expect(a.run).rejects.toMatchObject({ code: 'LEASE_EXPIRED' });

    expect(await tokenKeys()).toEqual([KEY.ci]);
    await expectNoFutureToken();
  }, 60_000);
});

describe('a run whose clock is wrong', () => {
  /** This process's clock, `offsetMs` off; only Date is faked, timers run for real. */
  const skewClock = (offsetMs: number) =>
    jest.useFakeTimers({
      now: Date.now() + offsetMs,
      advanceTimers: true,
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });

  it('neither takes over a live lease nor mints tokens valid only later', async () => {
    // A holds the lock (a 2 m lease) and stalls on alice's token.
    const a = stallingRun({}, ARN.alice);
    await a.stalled;
    await putConfig(false); // alice is revoked while A runs

    // B's clock is 20 minutes ahead: by its clock A's lease ran out long ago.
    skewClock(20 * 60_000);
    const b = await handlerRun();
    jest.useRealTimers();
    expect(b).toEqual({ skipped: true });
    await expectNoFutureToken();

    // A finishes its pass, sees the new grants and mints again: alice's token goes.
    a.go();
    await expect(a.run).resolves.toMatchObject({ skipped: false, passes: 2 });
    expect(await tokenKeys()).toEqual([KEY.ci]);
    await expectNoFutureToken();

    // With no lock held, a run 20 minutes ahead mints with AWS's time, not its own.
    skewClock(20 * 60_000);
    const c = await handlerRun();
    jest.useRealTimers();
    expect(c).toMatchObject({ skipped: false, minted: 1 });
    await expectNoFutureToken();
  }, 60_000);
});
