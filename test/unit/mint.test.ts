/**
 * The mint run and the exclusive (locked) run with in-memory ports: exact documents from a
 * fixed clock, key and jti; failure isolation; the lock protocol's decisions.
 */

import { describe, expect, it } from '@jest/globals';
import type { ConfigSource, PrincipalDirectory, Signer } from '../../lambda/core/ports.js';
import { noMetrics, silentLogger } from '../../lambda/core/ports.js';
import { decodeClaims } from '../../lambda/core/token.js';
import { ConfigError, StoreError } from '../../lambda/errors.js';
import { MAX_PASSES, mint, mintExclusive } from '../../lambda/mint.js';
import { FIXED_NOW } from '../helpers/keys.js';
import { FakeLock, fixedSigner, MemoryConfig, MemoryStore } from '../helpers/memory-ports.js';

const grants = (extra = '') => `version: 1
registry: {host: registry.test, service: svc, issuer: iss}
tokenTtl: 1h
grants:
  - principal: arn:aws:iam::111122223333:role/ci
    access: [{repository: team-a/app, actions: [push]}]
  - principal: arn:aws:iam::111122223333:user/alice
    access: [{repository: team-a/app, actions: [pull]}]
${extra}`;

/** A third grant, for bob, to drop later. */
const BOB = `  - principal: arn:aws:iam::111122223333:user/bob
    access: [{repository: team-a/app, actions: [pull]}]
`;

/** The grants without alice's. */
const withoutAlice = () =>
  grants().replace(/ {2}- principal: arn:aws:iam::111122223333:user\/alice\n.*\n/, '');

const signer = fixedSigner;

function deps(
  config: ConfigSource,
  store: MemoryStore,
  extra: Partial<Parameters<typeof mint>[0]> = {},
) {
  let n = 0;
  return {
    config,
    store,
    signer,
    logger: silentLogger,
    metrics: noMetrics,
    clock: () => FIXED_NOW,
    newJti: () => `jti-${++n}`,
    ...extra,
  };
}

describe('mint', () => {
  it('writes exact documents from a fixed clock, key and jti', async () => {
    const store = new MemoryStore();
    const result = await mint(deps(new MemoryConfig(grants()), store));
    expect(result.failed).toEqual([]);
    const doc = store.docs.get('tokens/111122223333/role/ci.json');
    const iat = FIXED_NOW.getTime() / 1000;
    expect(doc).toMatchObject({
      principal: 'arn:aws:iam::111122223333:role/ci',
      registry: 'registry.test',
      issuedAt: '2026-01-02T03:04:05.000Z',
      expiresAt: '2026-01-02T04:04:05.000Z',
      access: [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }],
    });
    expect(decodeClaims(doc?.token ?? '')).toEqual({
      iss: 'iss',
      sub: 'arn:aws:iam::111122223333:role/ci',
      aud: 'svc',
      exp: iat + 3600,
      nbf: iat,
      iat,
      jti: 'jti-1',
      access: [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }],
    });
  });

  it('warns when a token sent as a password (Basic) would pass 8 KiB of header, though its bearer form does not', async () => {
    const repos = Array.from(
      { length: 80 },
      (_, i) => `{repository: team-a/repo-${i}, actions: [pull]}`,
    );
    const store = new MemoryStore();
    const result = await mint(
      deps(
        new MemoryConfig(
          grants(
            `  - principal: arn:aws:iam::111122223333:role/wide\n    access: [${repos.join(', ')}]\n`,
          ),
        ),
        store,
      ),
    );
    const token = store.docs.get('tokens/111122223333/role/wide.json')?.token ?? '';
    const basic = `Basic ${Buffer.from(`regtoken:${token}`).toString('base64')}`.length;
    expect(`Bearer ${token}`.length).toBeLessThan(8192);
    expect(basic).toBeGreaterThan(8192);
    expect(result.warnings).toEqual([
      `arn:aws:iam::111122223333:role/wide: token is ${token.length} bytes; sent as a password its Basic header is ${basic} bytes, above 8192 (proxies such as nginx reject longer headers by default)`,
    ]);
  });

  it('keeps the previous token of a principal whose write fails, and writes the others', async () => {
    const store = new MemoryStore();
    await mint(deps(new MemoryConfig(grants()), store));
    const before = store.docs.get('tokens/111122223333/user/alice.json');
    store.failing.add('tokens/111122223333/user/alice.json');
    const later = deps(new MemoryConfig(grants()), store, {
      clock: () => new Date(FIXED_NOW.getTime() + 60_000),
    });
    const result = await mint(later);
    expect(result.failed).toEqual([
      {
        principal: 'arn:aws:iam::111122223333:user/alice',
        reason: 'could not write mem://tokens/111122223333/user/alice.json: SlowDown (HTTP 503)',
      },
    ]);
    expect(store.docs.get('tokens/111122223333/user/alice.json')).toBe(before);
    expect(store.docs.get('tokens/111122223333/role/ci.json')?.issuedAt).toBe(
      '2026-01-02T03:05:05.000Z',
    );
  });

  it('skips principals IAM does not know and removes their old tokens', async () => {
    const store = new MemoryStore();
    await mint(deps(new MemoryConfig(grants()), store));
    const directory: PrincipalDirectory = {
      check: async (ps) => ({
        unknown: ps
          .filter((p) => p.name === 'alice')
          .map((principal) => ({ principal, reason: 'no such user in account 111122223333' })),
        unverified: [],
      }),
    };
    const result = await mint(deps(new MemoryConfig(grants()), store, { principals: directory }));
    expect(result.unknown).toEqual([
      {
        principal: 'arn:aws:iam::111122223333:user/alice',
        reason: 'no such user in account 111122223333',
      },
    ]);
    expect(result.removed).toEqual(['tokens/111122223333/user/alice.json']);
    expect([...store.docs.keys()]).toEqual(['tokens/111122223333/role/ci.json']);
  });

  it('removes the tokens of principals no longer granted while it writes the new ones', async () => {
    /** Each write waits (up to 200 ms) for a delete, and notes whether one had happened. */
    class WatchingStore extends MemoryStore {
      seen: string[] = [];
      #deleted: () => void = () => undefined;
      readonly #firstDelete = new Promise<void>((resolve) => {
        this.#deleted = resolve;
      });
      override async putToken(key: string, doc: Parameters<MemoryStore['putToken']>[1]) {
        await Promise.race([this.#firstDelete, new Promise((r) => setTimeout(r, 200))]);
        this.seen.push(this.deletes.length > 0 ? 'after a delete' : 'before any delete');
        return super.putToken(key, doc);
      }
      override async deleteToken(key: string) {
        const deleted = await super.deleteToken(key);
        this.#deleted();
        return deleted;
      }
    }
    const store = new WatchingStore();
    await mint(deps(new MemoryConfig(grants(BOB)), store));
    store.seen = [];
    const result = await mint(deps(new MemoryConfig(grants()), store));
    expect(result.removed).toEqual(['tokens/111122223333/user/bob.json']);
    expect(store.seen).toEqual(['after a delete', 'after a delete']);
    expect([...store.docs.keys()].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
    ]);
  });

  it('writes its tokens without waiting for the listing of the stored ones, then removes the stale', async () => {
    /** A listing held until the run's tokens are written (or 500 turns of 1 ms went by). */
    class SlowListingStore extends MemoryStore {
      held = false;
      listedAfter = -1;
      override async listTokenKeys() {
        this.held = true;
        for (let i = 0; i < 500 && this.writes < 2; i++) await new Promise((r) => setTimeout(r, 1));
        this.listedAfter = this.writes;
        return super.listTokenKeys();
      }
    }
    const store = new SlowListingStore();
    await mint(deps(new MemoryConfig(grants(BOB)), store));
    store.writes = 0;
    const result = await mint(deps(new MemoryConfig(grants()), store));
    expect(store.listedAfter).toBe(2);
    // The listing shows the run's own tokens too: they are wanted, so only bob's is stale.
    expect(result.removed).toEqual(['tokens/111122223333/user/bob.json']);
    expect(result.minted).toBe(2);
    expect([...store.docs.keys()].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
    ]);
  });

  it('fails the run when the stored tokens cannot be listed, keeping the tokens it wrote', async () => {
    class NoListingStore extends MemoryStore {
      override async listTokenKeys(): Promise<string[]> {
        throw new StoreError('mem://tokens/: AccessDenied (HTTP 403)');
      }
    }
    const store = new NoListingStore();
    await expect(mint(deps(new MemoryConfig(grants()), store))).rejects.toThrow(
      'mem://tokens/: AccessDenied (HTTP 403)',
    );
    expect([...store.docs.keys()].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
    ]);
    expect(store.deletes).toEqual([]);
  });

  it("fails the run with the signer's error when signing fails midway, starting no more tokens", async () => {
    const store = new MemoryStore();
    let calls = 0;
    const failing: Signer = {
      prepare: async (window) => {
        const key = await signer.prepare(window);
        return {
          ...key,
          sign: async (input: Uint8Array) => {
            calls += 1;
            if (calls === 1) throw new Error('KMS key k (Sign): ThrottlingException');
            return key.sign(input);
          },
        };
      },
    };
    await expect(
      mint(deps(new MemoryConfig(grants()), store, { signer: failing })),
    ).rejects.toThrow('KMS key k (Sign): ThrottlingException');
    expect(calls).toBe(1); // signatures are made one at a time: the second was never started
    expect(store.writes).toBe(0);
  });

  it('writes nothing at all for an invalid config', async () => {
    const store = new MemoryStore();
    await expect(mint(deps(new MemoryConfig('version: 2\n'), store))).rejects.toBeInstanceOf(
      ConfigError,
    );
    expect(store.writes).toBe(0);
    expect(store.bundle).toBeUndefined();
  });
});

describe('mintExclusive', () => {
  it('steps aside while another run holds the lock', async () => {
    const store = new MemoryStore();
    const lock = new FakeLock(true);
    expect(await mintExclusive(deps(new MemoryConfig(grants()), store), lock)).toEqual({
      skipped: true,
    });
    expect(store.writes).toBe(0);
  });

  it('mints again when the config changed during the run, ending on the newest version', async () => {
    const store = new MemoryStore();
    const lock = new FakeLock();
    // The first read under the lock (after the pre-check) sees v1; then v2 lands mid-run.
    const config = new MemoryConfig(grants(), 'v1', (self) => {
      if (self.reads === 2) {
        self.text = withoutAlice();
        self.version = 'v2';
      }
    });
    const r = await mintExclusive(deps(config, store), lock);
    expect(r).toMatchObject({ skipped: false, passes: 2, result: { configVersion: 'v2' } });
    expect(lock.events).toEqual(['acquire', 'release', 'acquire', 'release']);
    expect([...store.docs.keys()]).toEqual(['tokens/111122223333/role/ci.json']);
  });

  it(`stops after ${MAX_PASSES} passes when the config keeps changing`, async () => {
    const lock = new FakeLock();
    const config = new MemoryConfig(grants(), 'v0', (self) => {
      self.version = `v${self.reads}`;
    });
    const r = await mintExclusive(deps(config, new MemoryStore()), lock);
    expect(r).toMatchObject({ skipped: false, passes: MAX_PASSES });
  });

  it('checks the config before taking the lock, so a bad one leaves even the lock untouched', async () => {
    const lock = new FakeLock();
    await expect(
      mintExclusive(deps(new MemoryConfig('grants: []\n'), new MemoryStore()), lock),
    ).rejects.toBeInstanceOf(ConfigError);
    expect(lock.events).toEqual([]);
  });

  it('checks the store it may write alongside the config, reporting a bad config first', async () => {
    // A bucket that already serves another token store (S3TokenStore.claim refuses it).
    class ClaimedStore extends MemoryStore {
      claims = 0;
      async claim(): Promise<void> {
        this.claims += 1;
        throw new StoreError(
          's3://tokens: the bucket already serves the token store at s3://tokens/other',
        );
      }
    }
    const lock = new FakeLock();
    const bad = new ClaimedStore();
    await expect(
      mintExclusive(deps(new MemoryConfig('grants: []\n'), bad), lock),
    ).rejects.toBeInstanceOf(ConfigError);
    const claimed = new ClaimedStore();
    await expect(mintExclusive(deps(new MemoryConfig(grants()), claimed), lock)).rejects.toThrow(
      'already serves the token store',
    );
    // Both checks ran (side by side), and neither run took the lock or wrote anything.
    expect([bad.claims, claimed.claims]).toEqual([1, 1]);
    expect(lock.events).toEqual([]);
    expect(bad.writes + claimed.writes).toBe(0);
  });

  it('takes the stored tokens from the note its own last release left, listing none', async () => {
    const store = new MemoryStore();
    const lock = new FakeLock(false, undefined, true);
    await mintExclusive(deps(new MemoryConfig(grants(BOB)), store), lock);
    expect(store.listings).toBe(1); // the first run of a process lists
    expect([...(lock.released?.note?.storedTokens ?? [])].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
      'tokens/111122223333/user/bob.json',
    ]);
    // bob dropped from the grants: the note names his token, so it is removed unlisted.
    const r = await mintExclusive(deps(new MemoryConfig(grants(), 'v2'), store), lock);
    expect(store.listings).toBe(1);
    expect(r).toMatchObject({
      skipped: false,
      result: { removed: [expect.stringMatching(/bob/)] },
    });
    expect([...store.docs.keys()].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
    ]);
    expect([...(lock.released?.note?.storedTokens ?? [])].sort()).toEqual([
      'tokens/111122223333/role/ci.json',
      'tokens/111122223333/user/alice.json',
    ]);
  });

  it('keeps in the note a token whose write failed, since it may have landed', async () => {
    const store = new MemoryStore();
    store.failing.add('tokens/111122223333/user/alice.json');
    const lock = new FakeLock(false, undefined, true);
    const r = await mintExclusive(deps(new MemoryConfig(grants()), store), lock);
    expect(r).toMatchObject({
      result: { failed: [{ principal: 'arn:aws:iam::111122223333:user/alice' }] },
    });
    expect(lock.released?.note?.storedTokens).toContain('tokens/111122223333/user/alice.json');
    // alice dropped: her key is deleted on the note's word, without a listing.
    await mintExclusive(deps(new MemoryConfig(withoutAlice(), 'v2'), store), lock);
    expect(store.listings).toBe(1);
    expect(store.deletes).toEqual(['tokens/111122223333/user/alice.json']);
  });

  // Each case: what happens between two runs of the same process; then whether the second lists.
  const listsAgain: [string, number, (lock: FakeLock, store: MemoryStore) => Promise<void>][] = [
    ['nothing (the lock comes with its note)', 1, async () => undefined],
    ['another process took the lock', 2, async (lock) => lock.takenElsewhere()],
    [
      'a run failed (its release leaves no note)',
      2,
      async (lock, store) => {
        const broken: Signer = {
          prepare: async () => {
            throw new Error('KMS key k: access denied');
          },
        };
        await expect(
          mintExclusive(deps(new MemoryConfig(grants()), store, { signer: broken }), lock),
        ).rejects.toThrow('access denied');
      },
    ],
  ];
  it.each(listsAgain)(
    'after %s, lists the stored tokens %i time(s) in all',
    async (_, listings, between) => {
      const store = new MemoryStore();
      const lock = new FakeLock(false, undefined, true);
      await mintExclusive(deps(new MemoryConfig(grants()), store), lock);
      await between(lock, store);
      await mintExclusive(deps(new MemoryConfig(grants()), store), lock);
      expect(store.listings).toBe(listings);
    },
  );

  it('releases the lock when the run fails', async () => {
    const lock = new FakeLock();
    const broken: Signer = {
      prepare: async () => {
        throw new Error('KMS key k: access denied');
      },
    };
    await expect(
      mintExclusive(deps(new MemoryConfig(grants()), new MemoryStore(), { signer: broken }), lock),
    ).rejects.toThrow('KMS key k: access denied');
    expect(lock.events).toEqual(['acquire', 'release']);
  });
});
