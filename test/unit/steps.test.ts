/**
 * The three steps of a mint run, each on its own with the in-memory ports: plan (what it
 * decides and publishes, as plain data), sign-and-write (one batch, given access and a signer,
 * including a batch that went through JSON), finish (removal, results, metrics, lock release and
 * version check).
 */

import { describe, expect, it } from '@jest/globals';
import { type GrantsConfig, resolveAccess } from '../../lambda/core/grants.js';
import type { PrincipalDirectory, SigningKey, TokenDocument } from '../../lambda/core/ports.js';
import { parsePrincipal, tokenKey } from '../../lambda/core/principal.js';
import { decodeClaims } from '../../lambda/core/token.js';
import { ConfigError, LeaseExpiredError } from '../../lambda/errors.js';
import { finish, releaseAndCheck } from '../../lambda/steps/finish.js';
import {
  GrantsCache,
  listStale,
  loadGrants,
  type MintPlan,
  type PrincipalWork,
  plan,
  planWrites,
} from '../../lambda/steps/plan.js';
import {
  type BatchResult,
  FIRST_SIGN_GROUP,
  type MintBatch,
  SIGN_GROUP,
  signAndWrite,
  TOKEN_WARN_BYTES,
} from '../../lambda/steps/sign-and-write.js';
import { FIXED_NOW } from '../helpers/keys.js';
import {
  FakeLock,
  fixedSigner,
  MemoryConfig,
  MemoryStore,
  PolicyStore,
  RecordingMetrics,
} from '../helpers/memory-ports.js';

const CI = 'arn:aws:iam::111122223333:role/ci';
const ALICE = 'arn:aws:iam::111122223333:user/alice';
const BOB = 'arn:aws:iam::444455556666:user/bob';

const grants = `version: 1
registry: {host: registry.test, service: svc, issuer: iss}
tokenTtl: 1h
grants:
  - principal: ${CI}
    access: [{repository: team-a/app, actions: [push]}]
  - principals: [${ALICE}, ${BOB}]
    ttl: 2h
    access:
      - {repository: team-a/app, actions: [pull]}
      - {repository: "team-a/*", actions: [pull]}
`;

const quiet = { logger: silentLogger() };
function silentLogger() {
  return { debug() {}, info() {}, warn() {}, error() {} };
}

function principal(arn: string) {
  const p = parsePrincipal(arn);
  if (!p.ok) throw new Error(p.reason);
  return p.value;
}

/** IAM knows nothing of alice; bob is in another account. */
const directory: PrincipalDirectory = {
  check: async (ps) => ({
    unknown: ps
      .filter((p) => p.name === 'alice')
      .map((p) => ({ principal: p, reason: 'no such user in account 111122223333' })),
    unverified: ps.filter((p) => p.account !== '111122223333'),
  }),
};

describe('plan', () => {
  it('decides the run as plain data, publishes policy and trust, and writes no token', async () => {
    const store = new PolicyStore();
    store.docs.set('tokens/111122223333/user/alice.json', {} as never);
    store.docs.set('tokens/111122223333/role/gone.json', {} as never);
    store.docs.set('tokens/111122223333/role/ci.json', {} as never);
    const { plan: p, key } = await plan({
      config: new MemoryConfig(grants),
      store,
      signer: fixedSigner,
      principals: directory,
      inventory: { name: 'mem://inventory', list: async () => ['team-a/app', 'team-a/web'] },
      clock: () => FIXED_NOW,
      ...quiet,
    });
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
    expect(p).toMatchObject({
      configVersion: 'v1',
      settings: {
        issuer: 'iss',
        service: 'svc',
        host: 'registry.test',
        maxTokenBytes: expect.any(Number),
        issuedAt: '2026-01-02T03:04:05.000Z',
        inventory: 'mem://inventory',
      },
      unknown: [{ principal: ALICE, reason: 'no such user in account 111122223333' }],
      unverified: 1,
      warnings: [],
      stale: ['tokens/111122223333/role/gone.json', 'tokens/111122223333/user/alice.json'],
      trust: { bundle: 'mem://trust/bundle.pem', jwks: 'mem://trust/jwks.json' },
      signingKey: key.description,
    });
    expect(p.principals.map((w) => [w.principal.arn, w.ttlSeconds, w.access])).toEqual([
      [CI, 3600, [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }]],
      [
        BOB,
        7200,
        [
          { type: 'repository', name: 'team-a/app', actions: ['pull'] },
          { type: 'repository', name: 'team-a/web', actions: ['pull'] },
        ],
      ],
    ]);
    expect(p.principals[1]?.largestGrant).toEqual({ grant: 2, line: 7, entries: 3 });
    // Ranked in ARN order among every granted principal (ALICE, unknown to IAM, included).
    expect(p.principals.map((w) => w.rank)).toEqual([0, 2]);
    expect(store.policies).toEqual([['111122223333', '444455556666']]);
    expect(store.bundle).toBe(key.trust.bundlePem);
    expect(store.writes).toBe(0);
    expect(store.deletes).toEqual([]);
  });

  it('plans the writes without listing the stored tokens; the stale ones are listed apart', async () => {
    const store = new MemoryStore();
    store.docs.set('tokens/111122223333/role/gone.json', {} as never);
    store.docs.set('tokens/111122223333/role/ci.json', {} as never);
    const common = {
      config: new MemoryConfig(grants),
      store,
      signer: fixedSigner,
      principals: directory,
      clock: () => FIXED_NOW,
      ...quiet,
    };
    const { plan: writes } = await planWrites(common);
    expect(store.listings).toBe(0);
    expect(writes).not.toHaveProperty('stale');
    expect(await listStale(store, writes.principals)).toEqual([
      'tokens/111122223333/role/gone.json',
    ]);
    expect(store.listings).toBe(1);
    const { plan: whole } = await plan(common);
    expect(whole.stale).toEqual(['tokens/111122223333/role/gone.json']);
    expect(whole.principals).toEqual(writes.principals);
    expect(store.writes).toBe(0);
    expect(store.deletes).toEqual([]);
  });

  it('warns about and counts reader accounts the store refused, and plans their tokens still', async () => {
    const store = new PolicyStore();
    store.refused.add('444455556666');
    const { plan: p } = await plan({
      config: new MemoryConfig(grants),
      store,
      signer: fixedSigner,
      principals: directory,
      inventory: { name: 'mem://inventory', list: async () => ['team-a/app'] },
      clock: () => FIXED_NOW,
      ...quiet,
    });
    expect(store.policies).toEqual([['111122223333']]);
    expect(p.policyAccountsLeftOut).toBe(1);
    expect(p.warnings).toEqual([
      'account 444455556666 left out of the token bucket policy: S3 refuses it as a principal (Invalid principal in policy), so its principals cannot read their tokens; check the account ID in the grants',
    ]);
    expect(p.principals.map((w) => w.principal.arn)).toEqual([CI, BOB]);
  });

  it('warns when patterns need an inventory that was not given, and checks no principal locally', async () => {
    const { plan: p } = await plan({
      config: new MemoryConfig(grants),
      store: new MemoryStore(),
      signer: fixedSigner,
      clock: () => FIXED_NOW,
      ...quiet,
    });
    expect(p.warnings).toEqual([
      'the grants use wildcard patterns but no repository inventory was given: patterns grant nothing (pass --repositories)',
    ]);
    expect(p.unverified).toBeUndefined();
    expect(p.settings.inventory).toBeUndefined();
    expect(p.principals.map((w) => [w.principal.arn, w.unmatched])).toEqual([
      [CI, []],
      [ALICE, ['team-a/*']],
      [BOB, ['team-a/*']],
    ]);
  });

  it('prepares the signing key while IAM answers, and still reports a failed IAM check first', async () => {
    const events: string[] = [];
    let prepared: { notAfter: Date } | undefined;
    const signer = {
      prepare: async (o: Parameters<typeof fixedSigner.prepare>[0]) => {
        events.push('prepare');
        prepared = o;
        return fixedSigner.prepare(o);
      },
    };
    const slowIam = (fail: boolean): PrincipalDirectory => ({
      check: async (ps) => {
        await new Promise((r) => setTimeout(r, 20));
        events.push('IAM answered');
        if (fail) throw new Error('IAM: access denied');
        return directory.check(ps);
      },
    });
    const deps = (fail: boolean) => ({
      config: new MemoryConfig(grants),
      store: new PolicyStore(),
      signer,
      principals: slowIam(fail),
      inventory: { name: 'mem://inventory', list: async () => ['team-a/app'] },
      clock: () => FIXED_NOW,
      ...quiet,
    });
    await plan(deps(false));
    expect(events).toEqual(['prepare', 'IAM answered']);
    // alice (2 h, unknown to IAM) is left out of the tokens, not out of the certificate's life:
    // it covers the longest grant, so it may outlive what is minted, never fall short of it.
    expect(prepared?.notAfter.getTime()).toBe(FIXED_NOW.getTime() + 7_200_000);
    events.length = 0;
    await expect(plan(deps(true))).rejects.toThrow('IAM: access denied');
    expect(events).toEqual(['prepare', 'IAM answered']);
  });

  it("ranks the principals in ARN order, listing them in the grants' order", async () => {
    const zed = 'arn:aws:iam::111122223333:role/Zed';
    const text = `version: 1
registry: {host: registry.test, service: svc, issuer: iss}
grants:
  - principals: [${BOB}, ${CI}, ${zed}]
    access: [{repository: team-a/app, actions: [pull]}]
  - principal: ${ALICE}
    access: [{repository: team-a/app, actions: [pull]}]
`;
    const { plan: p } = await plan({
      config: new MemoryConfig(text),
      store: new MemoryStore(),
      signer: fixedSigner,
      clock: () => FIXED_NOW,
      ...quiet,
    });
    expect(p.principals.map((w) => [w.principal.arn, w.rank])).toEqual([
      [BOB, 3],
      [CI, 1],
      [zed, 0],
      [ALICE, 2],
    ]);
    // Each carries its token's key, made once with the plan (and kept with unchanged grants).
    expect(p.principals.map((w) => w.key)).toEqual(p.principals.map((w) => tokenKey(w.principal)));
  });

  it('plans from the grants it is given, without reading the source again', async () => {
    const source = new MemoryConfig(grants);
    const given = await loadGrants(source);
    source.text = 'version: 1\ngrants: nope\n'; // what reading the source now would find
    const read = await plan({
      config: new MemoryConfig(grants),
      store: new MemoryStore(),
      signer: fixedSigner,
      ...quiet,
    });
    const { plan: planned } = await plan({
      config: source,
      grants: given,
      store: new MemoryStore(),
      signer: fixedSigner,
      ...quiet,
    });
    expect(source.reads).toBe(1);
    expect(planned.configVersion).toBe('v1');
    expect(planned.principals).toEqual(read.plan.principals);
  });

  it('stops on an invalid config before publishing anything', async () => {
    const store = new PolicyStore();
    await expect(
      plan({
        config: new MemoryConfig('version: 1\ngrants: nope\n'),
        store,
        signer: fixedSigner,
        ...quiet,
      }),
    ).rejects.toBeInstanceOf(ConfigError);
    expect(store.bundle).toBeUndefined();
    expect(store.policies).toEqual([]);
  });
});

/** A key for batches made by hand, prepared as the plan step would. */
function fixedKey(): Promise<SigningKey> {
  return fixedSigner.prepare({
    now: FIXED_NOW,
    notAfter: new Date(FIXED_NOW.getTime() + 86_400_000),
    publishedBundle: undefined,
  });
}

/** `n` roles of one account, r0 to r(n-1), each with the same access, ranked in that order. */
function roles(n: number): PrincipalWork[] {
  return Array.from({ length: n }, (_, i) =>
    work(`arn:aws:iam::111122223333:role/r${i}`, { rank: i }),
  );
}

/**
 * The fixed key, counting its signatures (`signed()`); with `remote`, a key whose signatures
 * are requests to another service, as a KMS direct-mode key is.
 */
async function countingKey(remote = false): Promise<{ key: SigningKey; signed: () => number }> {
  const key = await fixedKey();
  let signed = 0;
  const sign = (input: Uint8Array) => {
    signed += 1;
    return key.sign(input);
  };
  return {
    key: remote ? { ...key, remote: true, sign: async (input) => sign(input) } : { ...key, sign },
    signed: () => signed,
  };
}

function work(arn: string, extra: Partial<PrincipalWork> = {}): PrincipalWork {
  return {
    principal: principal(arn),
    key: tokenKey(principal(arn)),
    ttlSeconds: 3600,
    access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
    unmatched: [],
    largestGrant: { grant: 1, line: 5, entries: 1 },
    // One rank for all: the batch sorts its tokens by ARN (see 'reports the tokens in ARN order').
    rank: 0,
    ...extra,
  };
}

function batch(principals: PrincipalWork[], settings: Partial<MintBatch['settings']> = {}) {
  return {
    settings: {
      issuer: 'iss',
      service: 'svc',
      host: 'registry.test',
      maxTokenBytes: 16_384,
      issuedAt: FIXED_NOW.toISOString(),
      inventory: 'mem://inventory',
      ...settings,
    },
    principals,
  };
}

describe('signAndWrite', () => {
  it('signs and writes a batch that went through JSON, with exact claims', async () => {
    const store = new MemoryStore();
    const input: MintBatch = JSON.parse(JSON.stringify(batch([work(CI), work(BOB)])));
    let n = 0;
    const result = await signAndWrite(input, await fixedKey(), {
      store,
      newJti: () => `jti-${++n}`,
      ...quiet,
    });
    expect(result.failed).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.tokens.map((t) => [t.principal, t.location, t.expiresAt])).toEqual([
      [CI, 'mem://tokens/111122223333/role/ci.json', '2026-01-02T04:04:05.000Z'],
      [BOB, 'mem://tokens/444455556666/user/bob.json', '2026-01-02T04:04:05.000Z'],
    ]);
    const doc = store.docs.get('tokens/444455556666/user/bob.json');
    expect(doc).toMatchObject({ principal: BOB, registry: 'registry.test' });
    const iat = FIXED_NOW.getTime() / 1000;
    expect(decodeClaims(doc?.token ?? '')).toEqual({
      iss: 'iss',
      sub: BOB,
      aud: 'svc',
      exp: iat + 3600,
      nbf: iat,
      iat,
      jti: 'jti-2',
      access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
    });
  });

  it('reports tokens too large (naming the largest grant), failed writes and warnings, and writes the rest', async () => {
    const store = new MemoryStore();
    store.failing.add('tokens/111122223333/role/ci.json');
    const many = Array.from({ length: 120 }, (_, i) => ({
      type: 'repository' as const,
      name: `team-a/repository-with-a-long-name-${i}`,
      actions: ['pull'],
    }));
    const result: BatchResult = await signAndWrite(
      batch(
        [
          work(CI),
          work(ALICE, { access: many, largestGrant: { grant: 3, line: 12, entries: 118 } }),
          work(BOB, { access: many.slice(0, 100), unmatched: ['team-b/*'] }),
        ],
        { maxTokenBytes: 13_000 },
      ),
      await fixedKey(),
      { store, ...quiet },
    );
    const aliceBytes = Number(
      /token would be (\d+) bytes/.exec(result.failed[0]?.reason ?? '')?.[1],
    );
    expect(result.failed).toEqual([
      {
        principal: ALICE,
        reason: `token would be ${aliceBytes} bytes, over the limit of 13000 (registry.maxTokenBytes); grant #3 (line 12) contributes 118 of its 120 access entries`,
      },
      {
        principal: CI,
        reason: 'could not write mem://tokens/111122223333/role/ci.json: SlowDown (HTTP 503)',
      },
    ]);
    expect(result.tokens.map((t) => t.principal)).toEqual([BOB]);
    const bobBytes = result.tokens[0]?.bytes ?? 0;
    expect(bobBytes).toBeGreaterThan(TOKEN_WARN_BYTES);
    expect(result.warnings).toEqual([
      `${BOB}: pattern "team-b/*" matches no repository in mem://inventory`,
      `${BOB}: token is ${bobBytes} bytes; sent as a password its Basic header is ${6 + 4 * Math.ceil((9 + bobBytes) / 3)} bytes, above ${TOKEN_WARN_BYTES} (proxies such as nginx reject longer headers by default)`,
    ]);
    expect([...store.docs.keys()]).toEqual(['tokens/444455556666/user/bob.json']);
  });

  it('fails with the signer error and starts no further token', async () => {
    const store = new MemoryStore();
    const key = await fixedKey();
    let calls = 0;
    const failing = {
      ...key,
      sign: async () => {
        calls += 1;
        throw new Error('KMS key k (Sign): ThrottlingException');
      },
    };
    await expect(
      signAndWrite(batch([work(CI), work(ALICE), work(BOB)]), failing, { store, ...quiet }),
    ).rejects.toThrow('KMS key k (Sign): ThrottlingException');
    expect(calls).toBe(1);
    expect(store.writes).toBe(0);
  });

  it("keeps at most the store's concurrency of writes in flight, signing a group ahead", async () => {
    const store = new GatedStore();
    // A first group larger than the slots, then a whole group, then a few more.
    expect(store.concurrency).toBeLessThan(FIRST_SIGN_GROUP);
    const firstTwo = FIRST_SIGN_GROUP + SIGN_GROUP;
    const total = firstTwo + 6;
    const principals = roles(total);
    const { key, signed } = await countingKey();
    // How many tokens were signed when the first write started.
    let signedAtFirstWrite = -1;
    const putToken = store.putToken.bind(store);
    store.putToken = (k, doc) => {
      if (signedAtFirstWrite < 0) signedAtFirstWrite = signed();
      return putToken(k, doc);
    };
    const run = signAndWrite(batch(principals), key, { store, ...quiet });
    await store.until(() => store.pending.length === store.concurrency);
    // The first writes start after a small first group, not a whole group's signatures; the
    // group's other tokens wait for a free slot, and nothing more is signed meanwhile.
    expect(signedAtFirstWrite).toBe(FIRST_SIGN_GROUP);
    expect(signed()).toBe(FIRST_SIGN_GROUP);
    let mostHeld = 0;
    while (store.pending.length > 0) {
      expect(store.pending.length).toBeLessThanOrEqual(store.concurrency);
      // Tokens signed and not yet handed to the store: at most one group.
      mostHeld = Math.max(mostHeld, signed() - store.started);
      expect(signed() - store.started).toBeLessThanOrEqual(SIGN_GROUP);
      // The next group is signed only once every write of this one has started.
      if (store.started < FIRST_SIGN_GROUP) expect(signed()).toBe(FIRST_SIGN_GROUP);
      else if (store.started < firstTwo) expect(signed()).toBe(firstTwo);
      store.pending.shift()?.();
      await store.until(() => store.pending.length > 0 || store.started === total);
    }
    const result = await run;
    expect(signed()).toBe(total);
    expect(result.tokens).toHaveLength(total);
    expect(result.tokens.map((t) => t.principal)).toEqual(principals.map((p) => p.principal.arn));
    expect(store.mostInFlight).toBe(store.concurrency);
    expect(mostHeld).toBe(SIGN_GROUP);
  });

  it('writes each token of a remote signer (KMS direct mode) as soon as it is signed', async () => {
    const store = new GatedStore();
    const { key, signed } = await countingKey(true);
    const run = signAndWrite(batch(roles(10)), key, { store, ...quiet });
    await store.until(() => store.pending.length === store.concurrency);
    await store.turns(5);
    // Four writes wait; the fifth token is signed and waits for a free slot.
    expect(signed()).toBe(store.concurrency + 1);
    while (store.pending.length > 0) {
      expect(signed() - store.started).toBeLessThanOrEqual(1);
      store.pending.shift()?.();
      await store.until(() => store.pending.length > 0 || store.started === 10);
    }
    expect((await run).tokens).toHaveLength(10);
  });

  it('writes the tokens signed before a signing failure, then fails with it', async () => {
    const store = new MemoryStore();
    const key = await fixedKey();
    let calls = 0;
    const failing = {
      ...key,
      sign: (input: Uint8Array) => {
        calls += 1;
        if (calls === 3) throw new Error('KMS key k (Sign): ThrottlingException');
        return key.sign(input);
      },
    };
    await expect(
      signAndWrite(batch([work(CI), work(ALICE), work(BOB)]), failing, { store, ...quiet }),
    ).rejects.toThrow('KMS key k (Sign): ThrottlingException');
    expect(calls).toBe(3);
    expect([...store.docs.keys()].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
    ]);
  });

  it('reports a write that throws instead of rejecting as a failed write, and writes the rest', async () => {
    const store = new MemoryStore();
    const put = store.putToken.bind(store);
    store.putToken = ((key: string, doc: TokenDocument) => {
      if (key === 'tokens/111122223333/user/alice.json')
        throw new Error('EACCES: permission denied');
      return put(key, doc);
    }) as typeof store.putToken;
    const result = await signAndWrite(batch([work(CI), work(ALICE), work(BOB)]), await fixedKey(), {
      store,
      ...quiet,
    });
    expect(result.failed).toEqual([
      {
        principal: ALICE,
        reason:
          'could not write mem://tokens/111122223333/user/alice.json: EACCES: permission denied',
      },
    ]);
    expect(result.tokens.map((t) => t.principal)).toEqual([CI, BOB]);
  });

  it("reports the tokens in their plan ranks' order, whatever order their writes end in", async () => {
    const store = new GatedStore();
    // Ranked against the batch's order, as a plan ranks principals listed out of ARN order.
    const principals = roles(3).map((w, i) => ({ ...w, rank: 2 - i }));
    const run = signAndWrite(batch(principals), await fixedKey(), { store, ...quiet });
    await store.until(() => store.pending.length === 3);
    // The writes end in the order r1, r0, r2.
    for (const at of [1, 0, 0]) {
      store.pending.splice(at, 1)[0]?.();
      await store.turns(2);
    }
    const { tokens } = await run;
    expect(tokens.map((t) => t.principal)).toEqual(
      [2, 1, 0].map((i) => `arn:aws:iam::111122223333:role/r${i}`),
    );
  });

  it('sorts its tokens by ARN when the ranks are no order (a batch made by hand)', async () => {
    const zed = 'arn:aws:iam::111122223333:role/Zed';
    for (const ranks of [
      [undefined, undefined, undefined],
      [0, 1, 1],
      [0, -1, 2],
      [0, 1.5, 2],
      [0, 1, 1e9],
    ]) {
      const principals = [work(CI), work(zed), work(BOB)].map((w, i) => ({
        ...w,
        rank: ranks[i] as number,
      }));
      const { tokens } = await signAndWrite(batch(principals), await fixedKey(), {
        store: new MemoryStore(),
        ...quiet,
      });
      expect(tokens.map((t) => t.principal)).toEqual([zed, CI, BOB]);
    }
  });

  it('stops starting tokens when the lease ends, and fails once the writes in flight end', async () => {
    const store = new GatedStore();
    store.endLeaseAt = 2;
    const run = signAndWrite(batch(roles(10)), await fixedKey(), { store, ...quiet });
    let settled = false;
    void run
      .catch(() => {})
      .finally(() => {
        settled = true;
      });
    // Writes 0-3 wait; each one let go frees a slot for the next token.
    await store.until(() => store.pending.length === store.concurrency);
    for (const started of [5, 6]) {
      store.pending.shift()?.();
      await store.until(() => store.started === started);
    }
    // Write 2 reports the lease's end: token 6, signed and waiting, is not written, and the
    // run waits for writes 3-5, still in flight.
    store.pending.shift()?.();
    await store.turns(50);
    expect(store.started).toBe(6);
    expect(settled).toBe(false);
    for (let i = 0; i < 3; i++) {
      expect(settled).toBe(false);
      store.pending.shift()?.();
      await store.turns(5);
    }
    await expect(run).rejects.toThrow(LeaseExpiredError);
    expect(store.started).toBe(6);
    expect(store.docs.size).toBe(5);
  });
});

/** A store whose writes end only when the test lets them (`pending`), in the order started. */
class GatedStore extends MemoryStore {
  pending: (() => void)[] = [];
  started = 0;
  inFlight = 0;
  mostInFlight = 0;
  /** The write with this index (from 0) fails with LeaseExpiredError when let go. */
  endLeaseAt = -1;
  override async putToken(key: string, doc: TokenDocument) {
    const index = this.started++;
    this.inFlight += 1;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    await new Promise<void>((resolve) => this.pending.push(resolve));
    this.inFlight -= 1;
    if (index === this.endLeaseAt) throw new LeaseExpiredError('lease ended');
    await super.putToken(key, doc);
  }
  /** Lets promises and timers run for `n` turns of the event loop. */
  async turns(n: number): Promise<void> {
    for (let turn = 0; turn < n; turn++) await new Promise((resolve) => setImmediate(resolve));
  }
  /** Lets promises run until `done()` holds (or fails the test after many turns). */
  async until(done: () => boolean): Promise<void> {
    for (let turn = 0; !done(); turn++) {
      if (turn > 1_000) throw new Error('the batch stopped making progress');
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

function planOf(extra: Partial<MintPlan> = {}): MintPlan {
  return {
    configVersion: 'v7',
    settings: batch([]).settings,
    principals: [],
    unknown: [],
    unverified: undefined,
    shortLifetimes: undefined,
    warnings: [],
    stale: [],
    trust: { bundle: 'mem://trust/bundle.pem', jwks: 'mem://trust/jwks.json' },
    signingKey: 'fixed key',
    policyAccountsLeftOut: undefined,
    rootDaysLeft: undefined,
    startedAt: Date.now(),
    ...extra,
  };
}

const minted = (principal: string) => ({
  principal,
  key: `k/${principal}`,
  location: `mem://k/${principal}`,
  expiresAt: '2026-01-02T04:04:05.000Z',
  bytes: 700,
  repositories: 1,
  catalog: false,
});

describe('finish', () => {
  it('removes the stale tokens, sums the batches (tokens in ARN order) and counts the run', async () => {
    // Sorted by the ARN's characters in every locale: `Z` comes before `c`.
    const zed = 'arn:aws:iam::111122223333:role/Zed';
    const store = new MemoryStore();
    store.docs.set('tokens/111122223333/role/gone.json', {} as never);
    store.docs.set('tokens/111122223333/role/ci.json', {} as never);
    const metrics = new RecordingMetrics();
    const result = await finish(
      planOf({
        stale: ['tokens/111122223333/role/gone.json'],
        unknown: [{ principal: ALICE, reason: 'no such user' }],
        unverified: 1,
        warnings: ['run warning'],
        rootDaysLeft: 300,
        policyAccountsLeftOut: 1,
      }),
      [
        { tokens: [minted(CI), minted(zed)], failed: [], warnings: ['ci warning'] },
        {
          tokens: [minted(BOB), minted(ALICE)],
          failed: [{ principal: 'x', reason: 'y' }],
          warnings: ['bob warning'],
        },
      ],
      { store, metrics, ...quiet },
    );
    expect(result).toEqual({
      configVersion: 'v7',
      unknown: [{ principal: ALICE, reason: 'no such user' }],
      minted: 4,
      tokens: [minted(zed), minted(CI), minted(ALICE), minted(BOB)],
      failed: [{ principal: 'x', reason: 'y' }],
      removed: ['tokens/111122223333/role/gone.json'],
      warnings: ['run warning', 'ci warning', 'bob warning'],
      trustBundle: 'mem://trust/bundle.pem',
      jwks: 'mem://trust/jwks.json',
      signingKey: 'fixed key',
    });
    expect([...store.docs.keys()]).toEqual(['tokens/111122223333/role/ci.json']);
    expect(metrics.calls).toEqual([
      'count UnknownPrincipals 1',
      'count UnverifiedPrincipals 1',
      'count TokensMinted 4',
      'count TokenFailures 1',
      'count TokensRemoved 1',
      'duration RunDuration',
      'count PolicyAccountsLeftOut 1',
      'count RootCertificateDaysLeft 300',
      'metadata configVersion v7',
    ]);
  });

  it('sums summaries of batches (a fanned-out run) as it sums batches', async () => {
    const metrics = new RecordingMetrics();
    const result = await finish(
      planOf({ warnings: ['run warning'] }),
      [
        { minted: 2, failed: [], warnings: ['shard 1 warning'] },
        { minted: 5, failed: [{ principal: 'x', reason: 'y' }], warnings: [] },
      ],
      { store: new MemoryStore(), metrics, ...quiet },
    );
    expect(result).toMatchObject({
      minted: 7,
      tokens: [],
      failed: [{ principal: 'x', reason: 'y' }],
      warnings: ['run warning', 'shard 1 warning'],
    });
    expect(metrics.calls).toContain('count TokensMinted 7');
  });

  it('counts no IAM check when the run made none', async () => {
    const metrics = new RecordingMetrics();
    await finish(planOf({ configVersion: undefined }), [], {
      store: new MemoryStore(),
      metrics,
      ...quiet,
    });
    expect(metrics.calls).toEqual([
      'count TokensMinted 0',
      'count TokenFailures 0',
      'count TokensRemoved 0',
      'duration RunDuration',
    ]);
  });

  it('tries every delete, then fails with the first error', async () => {
    const store = new MemoryStore();
    const stale = ['tokens/1/role/a.json', 'tokens/1/role/b.json', 'tokens/1/role/c.json'];
    for (const k of stale) store.docs.set(k, {} as never);
    store.failingDeletes.add('tokens/1/role/a.json');
    await expect(
      finish(planOf({ stale }), [], { store, metrics: new RecordingMetrics(), ...quiet }),
    ).rejects.toThrow('cannot delete tokens/1/role/a.json');
    expect([...store.deletes].sort()).toEqual(stale);
    expect([...store.docs.keys()]).toEqual(['tokens/1/role/a.json']);
  });
});

describe('releaseAndCheck', () => {
  it('releases the lock and reports a newer grants version, or none', async () => {
    const lock = new FakeLock();
    const config = new MemoryConfig(grants, 'v2');
    expect(await releaseAndCheck(lock, config, 'v2')).toBeUndefined();
    expect(await releaseAndCheck(lock, config, 'v1')).toBe('v2');
    expect(await releaseAndCheck(lock, { name: 'x', read: config.read }, 'v1')).toBeUndefined();
    expect(lock.events).toEqual(['release', 'release', 'release']);
  });
});

describe('the grants cache belongs to its owner', () => {
  it('without one, every read is parsed: nothing is shared between runs', async () => {
    const config = new MemoryConfig(grants);
    const a = await loadGrants(config);
    const b = await loadGrants(config);
    expect(JSON.stringify(b.config)).toBe(JSON.stringify(a.config));
    expect(b.config).not.toBe(a.config);
  });

  it('with one, the same text from the same source is parsed once', async () => {
    const cache = new GrantsCache();
    const config = new MemoryConfig(grants);
    const first = (await loadGrants(config, cache)).config;
    expect((await loadGrants(config, cache)).config).toBe(first);
    // A fresh cache (another container, another CLI run) knows nothing of it.
    expect((await loadGrants(config, new GrantsCache())).config).not.toBe(first);
    config.text = `${grants}# changed\n`;
    expect((await loadGrants(config, cache)).config).not.toBe(first);
  });

  /** What the cache must hold for `names`: each principal's resolved access, in the grants' order. */
  const resolvedWork = (config: GrantsConfig, names: string[]) =>
    resolveAccess(config, names).map((r) =>
      expect.objectContaining({
        principal: r.principal,
        ttlSeconds: r.ttlSeconds,
        access: r.access,
        unmatched: r.unmatched,
      }),
    );

  it('resolves unchanged grants over unchanged repository names once, anything else again', async () => {
    const cache = new GrantsCache();
    const config = (await loadGrants(new MemoryConfig(grants), cache)).config;
    const names = ['team-a/app', 'team-a/web'];
    const first = cache.resolve(config, names);
    expect(first).toEqual(resolvedWork(config, names));
    // The same model and the same names (a new array, as each run lists them): no work.
    expect(cache.resolve(config, [...names])).toBe(first);
    // A pushed repository, a removed one, another order, another model: resolved again.
    for (const other of [[...names, 'team-a/new'], ['team-a/app'], [...names].reverse()]) {
      const again = cache.resolve(config, other);
      expect(again).not.toBe(first);
      expect(again).toEqual(resolvedWork(config, other));
    }
    expect(JSON.stringify(cache.resolve(config, [...names, 'team-a/new']))).toContain('team-a/new');
    const reparsed = (await loadGrants(new MemoryConfig(grants), new GrantsCache())).config;
    expect(cache.resolve(reparsed, names)).not.toBe(first);
    // Changing the caller's array afterwards changes nothing cached.
    const mutable = ['team-a/app'];
    const kept = cache.resolve(config, mutable);
    mutable.push('team-a/web');
    expect(cache.resolve(config, mutable)).not.toBe(kept);
  });

  it('never keeps a file that failed validation', async () => {
    const cache = new GrantsCache();
    const config = new MemoryConfig('grants: []\n');
    await expect(loadGrants(config, cache)).rejects.toBeInstanceOf(ConfigError);
    await expect(loadGrants(config, cache)).rejects.toBeInstanceOf(ConfigError);
  });
});
