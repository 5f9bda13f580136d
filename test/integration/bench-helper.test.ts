/**
 * Smoke check of the credential helper's benchmark (`npm run bench -- --helper`, three answers
 * per path): it runs the compiled bins against its own moto_server and reports every path with
 * the AWS calls it made. The calls are asserted — a warm answer makes none — the timings never:
 * they depend on the machine and its load.
 */

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { HelperBenchResult } from '../../bench/helper.js';
import { runBench } from '../helpers/bench.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
let stdout: string;
let stderr: string;
let code: number | null;
let result: HelperBenchResult;

beforeAll(async () => {
  dir = await makeTempDir('bench-helper-');
  ({ code, stdout, stderr, result } = await runBench<HelperBenchResult>(
    ['--helper', '--helper-runs', '3'],
    join(dir, 'helper.json'),
  ));
}, 600_000);

afterAll(async () => removeTempDir(dir));

describe('npm run bench -- --helper', () => {
  const path = (name: string) => {
    const p = result.paths.find((x) => x.name.startsWith(name));
    if (!p) throw new Error(`no path ${name}`);
    return p;
  };

  it('finishes and prints the table', () => {
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('| answer ');
    expect(result.paths.map((p) => p.samples.length)).toEqual([3, 2, 2, 2, 3, 3, 3]);
  });

  it('a cold get reads STS and S3 once each; a new session of a cached role only STS', () => {
    for (const name of ['get, cold: empty cache (IAM user', 'get, cold: empty cache (assumed-role'])
      expect(path(name).callCounts.every((n) => n === 2)).toBe(true);
    expect(path('get, cold: empty cache (IAM user').calls).toEqual([
      'STS GetCallerIdentity',
      'S3 GET /regtoken-tokens/tokens/123456789012/user/alice.json',
    ]);
    expect(path('get, new session').calls).toEqual(['STS GetCallerIdentity']);
    expect(path('get, new session').callCounts.every((n) => n === 1)).toBe(true);
  });

  it('a warm get and a warm provider answer make no AWS call', () => {
    for (const name of ['get, warm (IAM user', 'get, warm (assumed-role', 'kubelet provider, warm'])
      expect(path(name).callCounts).toEqual([0, 0, 0]);
    for (const p of result.paths) expect(p.samples.every((ms) => ms > 0)).toBe(true);
  });
});
