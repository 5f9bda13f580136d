/**
 * How a fanned-out run cuts its principals into shards (lambda/core/shards.ts): one account per
 * shard, split at the size, accounts in a fixed order, nothing lost or repeated; and the names
 * a run's files and folder may have.
 */

import { describe, expect, it } from '@jest/globals';
import {
  cutShards,
  isRunId,
  MAX_SHARD_SIZE,
  resultFileName,
  shardFileName,
} from '../../lambda/core/shards.js';

const p = (account: string, name: string) => ({ principal: { account, name } });

describe('cutShards', () => {
  const list = [
    p('222222222222', 'a'),
    p('111111111111', 'b'),
    p('222222222222', 'c'),
    p('111111111111', 'd'),
    p('222222222222', 'e'),
    p('333333333333', 'f'),
  ];

  it('one shard per account, accounts in code-unit order, principals in their order', () => {
    expect(
      cutShards(list, 10).map((s) => [
        s.index,
        s.account,
        s.principals.map((x) => x.principal.name),
      ]),
    ).toEqual([
      [1, '111111111111', ['b', 'd']],
      [2, '222222222222', ['a', 'c', 'e']],
      [3, '333333333333', ['f']],
    ]);
  });

  it('splits an account at the size, never mixing accounts in a shard', () => {
    expect(
      cutShards(list, 2).map((s) => [
        s.index,
        s.account,
        s.principals.map((x) => x.principal.name),
      ]),
    ).toEqual([
      [1, '111111111111', ['b', 'd']],
      [2, '222222222222', ['a', 'c']],
      [3, '222222222222', ['e']],
      [4, '333333333333', ['f']],
    ]);
  });

  it('leaves out and repeats no principal, whatever the size', () => {
    const many = Array.from({ length: 1_000 }, (_, i) =>
      p(String(100_000_000_000 + (i % 7)), `r${i}`),
    );
    for (const size of [1, 3, 50, 143, 1_000, MAX_SHARD_SIZE]) {
      const shards = cutShards(many, size);
      const names = shards.flatMap((s) => s.principals.map((x) => x.principal.name));
      expect(names.sort()).toEqual(many.map((x) => x.principal.name).sort());
      expect(Math.max(...shards.map((s) => s.principals.length))).toBeLessThanOrEqual(size);
      expect(shards.map((s) => s.index)).toEqual(shards.map((_, i) => i + 1));
    }
  });

  it('gives no shard for no principal', () => {
    expect(cutShards([], 5)).toEqual([]);
  });

  it.each([0, -1, 1.5, MAX_SHARD_SIZE + 1, Number.NaN])('refuses size %p', (size) => {
    expect(() => cutShards(list, size)).toThrow(
      `shard size must be a whole number from 1 to ${MAX_SHARD_SIZE}`,
    );
  });
});

describe('run files', () => {
  it('names shard and result files by their 1-based index, four digits', () => {
    expect([shardFileName(1), shardFileName(42), resultFileName(7), shardFileName(12345)]).toEqual([
      'shard-0001.json',
      'shard-0042.json',
      'result-0007.json',
      'shard-12345.json',
    ]);
  });

  it.each<[string, boolean]>([
    ['exec-1', true],
    ['a1b2c3d4e5f60718293a4b5c6d7e8f90', true],
    ['Name_with-dashes', true],
    ['x'.repeat(80), true],
    ['x'.repeat(81), false],
    ['', false],
    ['../tokens', false],
    ['a/b', false],
    ['a b', false],
    ['exec.1', false],
  ])('run ID %p is accepted: %p', (id, ok) => {
    expect(isRunId(id)).toBe(ok);
  });
});
