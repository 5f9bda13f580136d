/**
 * findRefused (lambda/core/bisect.ts): which accounts make S3 refuse a policy, found by
 * attempts that each write a policy; the last successful write must hold every other account.
 */

import { describe, expect, it } from '@jest/globals';
import { findRefused } from '../../lambda/core/bisect.js';

/** A check that fails whenever a set holds one of `bad`, recording each set it was given. */
function check(bad: readonly number[]) {
  const sets: number[][] = [];
  const attempt = async (items: readonly number[]) => {
    sets.push([...items].sort((a, b) => a - b));
    return !items.some((i) => bad.includes(i));
  };
  return { sets, attempt };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('findRefused', () => {
  it.each<[string, number, number[], number]>([
    ['one refused among 2', 2, [2], 2],
    ['one refused among 8', 8, [5], 6],
    ['the first among 100', 100, [1], 14],
    ['the last among 100', 100, [100], 14],
    ['two among 100', 100, [17, 64], 24],
    ['every one of 3', 3, [1, 2, 3], 5],
    ['three neighbours among 50', 50, [20, 21, 22], 20],
  ])('%s', async (_name, n, bad, maxAttempts) => {
    const { sets, attempt } = check(bad);
    const found = await findRefused(range(n), attempt, maxAttempts);
    expect(found?.refused.slice().sort((a, b) => a - b)).toEqual(bad);
    const good = range(n).filter((i) => !bad.includes(i));
    expect(found?.accepted.slice().sort((a, b) => a - b)).toEqual(good);
    // What S3 keeps is the last policy it accepted: every account but the refused ones.
    const lastAccepted = sets.filter((s) => !s.some((i) => bad.includes(i))).at(-1);
    expect(lastAccepted).toEqual(good);
    expect(found?.attempts).toBe(sets.length);
    expect(sets.length).toBeLessThanOrEqual(maxAttempts);
  });

  it('gives up after maxAttempts, so the caller reports the original failure', async () => {
    const { sets, attempt } = check(range(40).filter((i) => i % 2 === 0));
    expect(await findRefused(range(40), attempt, 10)).toBeUndefined();
    expect(sets).toHaveLength(10);
  });

  it('stops at the first other error', async () => {
    let calls = 0;
    const attempt = async () => {
      calls++;
      throw new Error('AccessDenied');
    };
    await expect(findRefused(range(4), attempt, 10)).rejects.toThrow('AccessDenied');
    expect(calls).toBe(1);
  });
});
