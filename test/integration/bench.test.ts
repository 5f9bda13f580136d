/**
 * Smoke check of the benchmark (`npm run bench -- --sizes 100`): it runs end to end on this
 * machine (its own moto_server, the stack's bundle, the fan-out mode at 100 principals) and
 * reports every measurement with sane values. Timings are printed, never asserted: they depend on the machine and its load.
 */

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CallCounts } from '../../bench/counter.js';
import { type FanOutResult, kmsCalls, s3PerToken } from '../../bench/fan-out.js';
import type { RealmBenchResult } from '../../bench/realm.js';
import type { BenchResult, TargetCheck } from '../../bench/report.js';
import { runBench } from '../helpers/bench.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
let stdout: string;
let stderr: string;
let code: number | null;
let result: BenchResult & { targets: TargetCheck[] };

const total = (calls: CallCounts, service: string) =>
  Object.values(calls[service] ?? {}).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  dir = await makeTempDir('bench-');
  ({ code, stdout, stderr, result } = await runBench<BenchResult & { targets: TargetCheck[] }>(
    ['--sizes', '100', '--realm-seconds', '1'],
    join(dir, 'bench.json'),
  ));
}, 600_000);

afterAll(async () => {
  await removeTempDir(dir);
});

describe('npm run bench -- --sizes 100', () => {
  it('finishes and prints every table', () => {
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    for (const heading of [
      '**Workloads**',
      '**Engine only**',
      '**Local mint**',
      '**End to end against moto_server**',
      '**AWS API calls per steady-state run**',
      '**KMS signing modes at 100 principals**',
      '**Lambda bundle**',
      '**Hostile inputs**',
      '**Targets**',
    ])
      expect(stdout).toContain(heading);
    expect(result.machine.cores).toBeGreaterThan(0);
    expect(result.machine.node).toBe(process.versions.node);
  });

  it('signs one token per principal in the engine, and measures its floor', () => {
    const [size] = result.sizes;
    expect(result.sizes.map((s) => s.n)).toEqual([100]);
    expect(size?.engine.tokens).toBe(100);
    expect(size?.engine.engineMs).toBeGreaterThan(0);
    expect(size?.engine.floorMs).toBeGreaterThan(0);
    expect(size?.engine.engineSamples).toHaveLength(size?.engine.reps ?? -1);
  });

  it('mints locally one token per principal, and measures its floor and both CPU times', () => {
    const local = result.sizes[0]?.local;
    expect(local?.tokens).toBe(100);
    expect(local?.mintSamples).toHaveLength(local?.reps ?? -1);
    expect(local?.floorSamples).toHaveLength(local?.reps ?? -1);
    expect(local?.floorMs).toBeGreaterThan(0);
    // User CPU, as each process reported it (compared in the bench's tables, not here).
    expect(local?.mintUserMs).toBeGreaterThan(0);
    expect(local?.floorUserMs).toBeGreaterThan(0);
  });

  it('mints end to end for every known principal, skips the deleted ones, removes stale tokens', () => {
    const e2e = result.sizes[0]?.e2e;
    const workload = result.sizes[0]?.workload;
    if (!e2e || !workload) throw new Error('no end-to-end result');
    for (const run of [e2e.first, ...e2e.runs]) {
      expect(run.result.skipped).toBe(false);
      expect((run.result.minted ?? 0) + (run.result.unknown ?? 0)).toBe(100);
    }
    expect(e2e.first.result.unknown).toBe(workload.deletedPrincipals);
    // Each steady run finds `stale` more roles deleted in IAM, whose tokens it removes: known
    // from the note its warm container's last run left with the lock, not from a listing.
    for (const run of e2e.runs) {
      expect(run.result.unknown).toBe(workload.deletedPrincipals + e2e.stale);
      expect(run.result.removed).toBe(e2e.stale);
      // The inventory and trust/: the tokens are not listed (three listings before the note).
      expect(run.calls.S3?.ListObjectsV2).toBe(2);
    }
    // 31 steady runs at 100 principals, each with its floor: with 11, one bench's ratio there
    // spread over 1.14-1.24x for the same code (docs/performance.md, "End to end at 100
    // principals").
    expect(e2e.runs).toHaveLength(31);
    expect(e2e.floorSamples).toHaveLength(e2e.runs.length);
    // moto's CPU time in each run and each floor: this machine is Linux, so it is read.
    expect(e2e.serverCpu?.runs).toHaveLength(e2e.runs.length);
    expect(e2e.serverCpu?.floors).toHaveLength(e2e.runs.length);
    // A run and its floor each make a hundred requests or more, a few ms of moto CPU each.
    for (const cpu of [...(e2e.serverCpu?.runs ?? []), ...(e2e.serverCpu?.floors ?? [])])
      expect(cpu).toBeGreaterThan(0);
    expect(e2e.tokenBytes.p50).toBeGreaterThan(500);
    expect(e2e.tokenBytes.p50).toBeLessThanOrEqual(e2e.tokenBytes.max);
    expect(e2e.documentBytes.p50).toBeGreaterThan(e2e.tokenBytes.p50);
    expect(e2e.policyBytes).toBeGreaterThan(0);
    expect(e2e.maxRssKiB).toBeGreaterThan(e2e.baselineRssKiB / 2);
  });

  it('makes a constant number of KMS calls per run in certificate mode, one per token in direct mode', () => {
    const e2e = result.sizes[0]?.e2e;
    if (!e2e?.direct) throw new Error('no direct-mode run');
    expect(e2e.first.calls.KMS).toEqual({ GetPublicKey: 1, Sign: 2 }); // root + per-run certificate
    // Later runs of the same container know the root's public key: the run certificate only.
    for (const run of e2e.runs) expect(run.calls.KMS).toEqual({ Sign: 1 });
    expect(e2e.direct.calls.KMS).toEqual({ Sign: e2e.direct.result.minted });
  });

  it('checks principals with IAM in pages, and writes each token with one PutObject', () => {
    const size = result.sizes[0];
    if (!size) throw new Error('no result');
    // The minter's account is asked once per container: by the first run only.
    expect(size.e2e.first.calls.STS).toEqual({ GetCallerIdentity: 1 });
    for (const run of size.e2e.runs) {
      expect(run.calls.STS).toBeUndefined();
      expect(total(run.calls, 'IAM') + total(run.calls, 'STS')).toBeLessThanOrEqual(
        Math.ceil(size.setup.iamRoles / 1000) + Math.ceil(size.setup.iamUsers / 1000) + 1,
      );
      // Tokens, plus the lock taken and released.
      expect(run.calls.S3?.PutObject).toBe((run.result.minted ?? 0) + 2);
      // The grants, before the lock only: the container takes the lock it gave back last run
      // without reading it, no run has held it since, and the listing of the tokens shows the
      // trust files as the container left them.
      expect(run.calls.S3?.GetObject).toBe(1);
      expect(run.calls.S3?.DeleteObject).toBe(size.e2e.stale);
    }
  });

  it('measures the bundle the stack deploys and its cold load', () => {
    expect(['synth', 'esbuild']).toContain(result.bundle.method);
    expect(result.bundle.bytes).toBeGreaterThan(100_000);
    expect(result.bundle.samples.every((ms) => ms > 0)).toBe(true);
  });

  it('loads the token endpoint and its floor at 1, 16 and 64 clients, every request answered', () => {
    expect(stdout).toContain('**Token endpoint**');
    const realm = (result as unknown as { realm: RealmBenchResult }).realm;
    expect(realm.levels.map((l) => l.concurrency)).toEqual([1, 16, 64]);
    for (const level of realm.levels)
      for (const side of [level.endpoint, level.floor]) {
        expect(side.errors).toBe(0);
        expect(side.requests).toBeGreaterThan(0);
        expect(side.p99Ms).toBeGreaterThanOrEqual(side.p50Ms);
      }
  });

  it('runs the fan-out mode at the largest size: KMS calls = 1 + shards, one PutObject per token', () => {
    expect(stdout).toContain('### Fan-out at 100 principals');
    const fanOut = (result as unknown as { fanOut: FanOutResult }).fanOut;
    const workload = result.sizes[0]?.workload;
    if (!workload) throw new Error('no workload');
    expect(fanOut.n).toBe(100);
    expect(fanOut.shards).toBe(workload.accounts); // 100 principals: one shard per account
    for (const run of [fanOut.first, fanOut.steady]) {
      expect(run.status).toBe('SUCCEEDED');
      expect(run.tokens).toBe(100 - workload.deletedPrincipals);
      expect(run.shardMs).toHaveLength(fanOut.shards);
      expect(run.calls.S3?.PutObject).toBeGreaterThanOrEqual(run.tokens);
    }
    // The first run also signs the root certificate; later ones only a certificate per shard.
    expect(fanOut.first.calls.KMS).toEqual({ GetPublicKey: 1, Sign: fanOut.shards + 1 });
    expect(fanOut.steady.calls.KMS).toEqual({ GetPublicKey: 1, Sign: fanOut.shards });
    expect(kmsCalls(fanOut.steady)).toBe(1 + fanOut.shards);
    expect(s3PerToken(fanOut.steady)).toBeGreaterThan(1);
  });

  it('checks every target of issue 6, and claims nothing it cannot tell from one size', () => {
    expect(result.targets.map((t) => t.target)).toHaveLength(11);
    // A changed grants file's engine is reported for comparison, never judged.
    const changed = result.targets.find((t) => t.target.includes('grants changed'));
    expect(changed?.measured).toMatch(/^100: \d+\.\d\d×$/);
    expect(changed?.met).toBeUndefined();
    // Constant across sizes cannot be judged from one size; test/unit/bench-report.test.ts
    // shows the check failing when two sizes differ.
    const kms = result.targets.find((t) => t.target === 'KMS calls per run constant');
    expect(kms?.met).toBeUndefined();
  });

  it('refuses or matches every hostile input within the deadline and the target', () => {
    expect(result.hostile.map((h) => h.name)).toEqual([
      'pattern `team-*-*-*-*-*-*-*-*-x`, 125-character near miss',
      'pattern with 60 wildcards, 255-character near miss',
      'grants file over the size limit',
      'grants file with a mapping of 10,000 keys',
      'grants file nested 3,000 levels deep',
      'grants file with an alias bomb',
    ]);
    for (const h of result.hostile) expect(h.ms).toBeGreaterThan(0);
    const target = result.targets.find((t) => t.target.startsWith('each hostile input'));
    expect(target?.met).toBe(true);
  });
});
