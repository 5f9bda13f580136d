/**
 * The credential helper's cache: when an entry may be used (until 5 minutes before expiry, by
 * AWS's clock as last seen), what is refused when read back, and the files on a real file
 * system — modes 0600/0700, corrupt files ignored and replaced, and concurrent writers that
 * never leave a reader half a file.
 */

import { chmodSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { TokenCache, tokenCacheDir } from '../../lambda/adapters/token-cache.js';
import {
  type CachedToken,
  identityFileName,
  isFresh,
  ownerOf,
  parseCachedIdentity,
  parseCachedToken,
  remainingSeconds,
  serialiseToken,
  tokenFileName,
} from '../../lambda/core/token-cache.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const EXP = 2_000_000_000;
/** A token-shaped string whose claims carry `exp` (the cache checks it against the entry). */
const jwt = (exp: number, pad = '') =>
  `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify({ exp, pad })).toString('base64url')}.sig`;
const OWNER = 'arn:aws:iam::111122223333:role/ci-runner';
const HOST = 'registry.example.com';
const FROM = 's3://tokens';
const entry = (over: Partial<CachedToken> = {}): CachedToken => ({
  owner: OWNER,
  host: HOST,
  from: FROM,
  principal: 'arn:aws:iam::111122223333:role/ci/ci-runner',
  token: jwt(over.expiresAt ?? EXP),
  expiresAt: EXP,
  skewSeconds: 0,
  ...over,
});
const at = (epochSeconds: number) => new Date(epochSeconds * 1000);

describe('when a cached token may be used', () => {
  it.each([
    ['an hour left', true, EXP - 3600, 0],
    ['301 s left', true, EXP - 301, 0],
    ['exactly 5 minutes left', false, EXP - 300, 0],
    ['4 minutes left', false, EXP - 240, 0],
    ['expired', false, EXP + 10, 0],
    ['10 min left here, but this clock is 6 min behind AWS', false, EXP - 600, -360],
    ['4 min left here, but this clock is 6 min ahead of AWS (AWS says 10)', false, EXP - 240, 360],
  ])('%s → fresh: %s', (_what, fresh, now, skew) => {
    expect(isFresh(entry({ skewSeconds: skew }), at(now))).toBe(fresh);
  });

  it("counts the remaining time on AWS's clock as last seen", () => {
    expect(remainingSeconds(entry(), at(EXP - 100))).toBe(100);
    expect(remainingSeconds(entry({ skewSeconds: -60 }), at(EXP - 100))).toBe(40);
  });
});

describe('reading entries back', () => {
  const want = { owner: OWNER, host: HOST, from: FROM };

  it('round-trips a token entry', () => {
    expect(parseCachedToken(serialiseToken(entry()), want)).toEqual(entry());
  });

  it.each([
    ['truncated', serialiseToken(entry()).slice(0, 40)],
    ['empty', ''],
    ['not an object', '[1]'],
    ['another version', serialiseToken(entry()).replace('"version":1', '"version":2')],
    ['another owner', serialiseToken(entry({ owner: 'arn:aws:iam::111122223333:role/other' }))],
    ['another host', serialiseToken(entry({ host: 'other.example.com' }))],
    ['another location', serialiseToken(entry({ from: 's3://other' }))],
    ["an exp that is not the token's", serialiseToken({ ...entry(), expiresAt: EXP + 3600 })],
    ['no token', serialiseToken(entry()).replace(/"token":"[^"]+"/, '"token":""')],
  ])('ignores a token entry that is %s', (_what, text) => {
    expect(parseCachedToken(text, want)).toBeUndefined();
  });

  it('ignores identity entries that are not one, or name no owner', () => {
    expect(
      parseCachedIdentity('{"version":1,"caller":"arn:aws:iam::111122223333:user/a","until":5}'),
    ).toEqual({
      caller: 'arn:aws:iam::111122223333:user/a',
      until: 5,
    });
    expect(
      parseCachedIdentity('{"version":1,"caller":"arn:aws:iam::111122223333:root","until":5}'),
    ).toBeUndefined();
    expect(parseCachedIdentity('{"version":1,"caller":"arn:aws:iam::1:user/a"')).toBeUndefined();
  });

  it('keys tokens by owner (role, not session), host and location', () => {
    expect(ownerOf('arn:aws:sts::111122223333:assumed-role/ci-runner/job-1')).toBe(OWNER);
    expect(ownerOf('arn:aws:sts::111122223333:assumed-role/ci-runner/job-2')).toBe(OWNER);
    expect(ownerOf('arn:aws:iam::111122223333:user/team/bob')).toBe(
      'arn:aws:iam::111122223333:user/bob',
    );
    expect(ownerOf('arn:aws:iam::111122223333:root')).toBeUndefined();
    const names = [
      tokenFileName(OWNER, HOST, FROM),
      tokenFileName('arn:aws:iam::111122223333:role/other', HOST, FROM),
      tokenFileName(OWNER, 'other.example.com', FROM),
      tokenFileName(OWNER, HOST, 's3://other'),
      identityFileName('["env","AKIA"]'),
    ];
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[0-9a-f]{64}\.json$/);
  });
});

describe('the cache on disk', () => {
  let dir: string;
  let cache: TokenCache;
  beforeEach(async () => {
    dir = await makeTempDir('token-cache-');
    cache = new TokenCache(join(dir, 'cache', 'regtoken'));
  });
  afterEach(async () => removeTempDir(dir));

  it('lives in XDG_CACHE_HOME/regtoken, else ~/.cache/regtoken', () => {
    expect(tokenCacheDir({ xdgCacheHome: '/x', home: '/h' })).toBe('/x/regtoken');
    expect(tokenCacheDir({ xdgCacheHome: undefined, home: '/h' })).toBe('/h/.cache/regtoken');
  });

  it('writes entries 0600 in directories 0700, and reads them back', async () => {
    await cache.putToken(entry());
    await cache.putIdentity('m', { caller: 'arn:aws:iam::111122223333:user/a', until: 7 });
    expect(await cache.token(OWNER, HOST, FROM)).toEqual(entry());
    expect(await cache.identity('m')).toEqual({
      caller: 'arn:aws:iam::111122223333:user/a',
      until: 7,
    });
    expect(await cache.identity('other')).toBeUndefined();
    expect(await cache.token(OWNER, HOST, 's3://other')).toBeUndefined();
    for (const d of [cache.dir, join(cache.dir, 'tokens'), join(cache.dir, 'identities')])
      expect(statSync(d).mode & 0o777).toBe(0o700);
    for (const f of [cache.tokenPath(OWNER, HOST, FROM), cache.identityPath('m')])
      expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(cache.dir, 'tokens'))).toEqual([tokenFileName(OWNER, HOST, FROM)]);
  });

  it('ignores a corrupt file, and the next write replaces it', async () => {
    const path = cache.tokenPath(OWNER, HOST, FROM);
    mkdirSync(join(cache.dir, 'tokens'), { recursive: true });
    writeFileSync(path, '{"version":1,"owner":"arn:aws:iam::111122223333:role/ci-r');
    expect(await cache.token(OWNER, HOST, FROM)).toBeUndefined();
    await cache.putToken(entry());
    expect(await cache.token(OWNER, HOST, FROM)).toEqual(entry());
  });

  it('treats an unreadable file as a miss, not an error', async () => {
    if (process.getuid?.() === 0) return; // root reads mode-000 files: nothing to test here
    await cache.putToken(entry());
    chmodSync(cache.tokenPath(OWNER, HOST, FROM), 0);
    expect(await cache.token(OWNER, HOST, FROM)).toBeUndefined();
  });

  it('concurrent writers never leave a reader half a file, nor temporary files', async () => {
    // Large entries (about 256 KiB) so that a write takes several system calls.
    const entries = Array.from({ length: 12 }, (_, i) => {
      const exp = EXP + i;
      return entry({ expiresAt: exp, token: jwt(exp, 'x'.repeat(256 * 1024 + i)) });
    });
    await cache.putToken(entries[0] as CachedToken);
    const path = cache.tokenPath(OWNER, HOST, FROM);
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const text = await readFile(path, 'utf8');
        reads += 1;
        // Every read is a complete entry: one of those written, whole.
        const got = parseCachedToken(text, { owner: OWNER, host: HOST, from: FROM });
        expect(
          got && entries.some((e) => e.expiresAt === got.expiresAt && e.token === got.token),
        ).toBe(true);
      }
    })();
    await Promise.all(entries.flatMap((e) => [cache.putToken(e), cache.putToken(e)]));
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(readdirSync(join(cache.dir, 'tokens'))).toEqual([tokenFileName(OWNER, HOST, FROM)]);
  });

  it('prunes entries not written for a week and stray temporary files', async () => {
    await cache.putToken(entry());
    await cache.putIdentity('old', { caller: 'arn:aws:iam::111122223333:user/a', until: 1 });
    await cache.putIdentity('new', { caller: 'arn:aws:iam::111122223333:user/a', until: 1 });
    const ids = join(cache.dir, 'identities');
    writeFileSync(join(ids, '.tmp-stray'), 'half');
    writeFileSync(join(ids, '.tmp-busy'), 'half');
    const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3600_000);
    utimesSync(cache.identityPath('old'), eightDaysAgo, eightDaysAgo);
    utimesSync(
      join(ids, '.tmp-stray'),
      new Date(Date.now() - 120_000),
      new Date(Date.now() - 120_000),
    );
    await cache.prune();
    expect(readdirSync(ids).sort()).toEqual(['.tmp-busy', identityFileName('new')].sort());
    expect(await cache.token(OWNER, HOST, FROM)).toEqual(entry());
  });
});
