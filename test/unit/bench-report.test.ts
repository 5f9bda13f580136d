/**
 * The benchmark's target checks on made-up results: each check can fail, and a check that needs
 * two sizes says so instead of passing with one; its tables are padded as the formatter pads them.
 */

import { describe, expect, it } from '@jest/globals';
import type { BenchResult, SizeResult } from '../../bench/report.js';
import { checkTargets, table } from '../../bench/report.js';

/** A steady run with these KMS calls (only what the checks read). */
function size(n: number, kmsSigns: number, localMintMs = 100, engineMs = 100): SizeResult {
  const run = { ms: 100, calls: { KMS: { GetPublicKey: 1, Sign: kmsSigns }, STS: {}, IAM: {} } };
  return {
    n,
    engine: { engineMs: 400, floorMs: 100 },
    engineUnchanged: { engineMs, floorMs: 100 },
    local: { mintMs: localMintMs, floorMs: 100 },
    setup: { iamRoles: 10, iamUsers: 10 },
    e2e: { first: run, runs: [run], runMs: 100, floorMs: 100, policyBytes: 2000, maxRssKiB: 1024 },
  } as unknown as SizeResult;
}

function result(sizes: SizeResult[], hostileMs: (number | undefined)[] = [0.01]): BenchResult {
  return {
    sizes,
    bundle: { bytes: 1000, coldLoadMs: 50, coldLoadNoSourceMapsMs: 40 },
    hostile: hostileMs.map((ms, i) => ({ name: `case ${i}`, ms, deadlineMs: 10_000 })),
  } as unknown as BenchResult;
}

const met = (r: BenchResult, prefix: string) =>
  checkTargets(r).find((t) => t.target.startsWith(prefix))?.met;

describe('bench targets', () => {
  it.each([
    ['the same KMS calls at two sizes', [size(100, 1), size(1000, 1)], true],
    ['more KMS calls at the larger size', [size(100, 1), size(1000, 2)], false],
    ['one size: cannot tell', [size(100, 1)], undefined],
  ])('KMS calls per run constant, %s', (_name, sizes, expected) => {
    expect(met(result(sizes), 'KMS calls per run constant')).toBe(expected);
  });

  it.each([
    ['within 1.5× at the largest size', [size(100, 1, 400), size(1000, 1, 150)], true],
    ['over 1.5× at the largest size', [size(100, 1, 100), size(1000, 1, 151)], false],
  ])('local mint, %s', (_name, sizes, expected) => {
    expect(met(result(sizes), 'local mint')).toBe(expected);
  });

  it.each([
    ['within 1.3× at the largest size', [size(100, 1, 100, 900), size(1000, 1, 100, 130)], true],
    ['over 1.3× at the largest size', [size(100, 1, 100, 100), size(1000, 1, 100, 131)], false],
  ])('engine of a scheduled run, %s', (_name, sizes, expected) => {
    expect(met(result(sizes), 'engine ≤')).toBe(expected);
    // A changed grants file is reported, not judged.
    expect(met(result(sizes), 'engine at')).toBeUndefined();
  });

  it.each([
    ['every case fast', [0.01, 200], true],
    ['a case over the target', [0.01, 1500], false],
    ['a case that missed its deadline', [0.01, undefined], false],
    ['no case measured', [], false],
  ])('hostile inputs: %s', (_name, hostile, expected) => {
    expect(met(result([size(100, 1)], hostile), 'each hostile input')).toBe(expected);
  });
});

describe('the bench writes its tables as the formatter would', () => {
  it('pads every column to its widest cell, right-aligning the columns it is told to', () => {
    expect(
      table(
        ['name', 'count'],
        [
          ['a', '1'],
          ['longer name', '22'],
        ],
        [1],
      ),
    ).toBe(
      [
        '| name        | count |',
        '| ----------- | ----: |',
        '| a           |     1 |',
        '| longer name |    22 |',
      ].join('\n'),
    );
  });
});
