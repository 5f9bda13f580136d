/**
 * `node --import tsx bench/fs-writes.ts [N]`: how fast N token documents (4.8 KB, the size the
 * bench's workloads make) can be written atomically into the token folder's layout
 * (tokens/ACCOUNT/role|user/NAME.json over 20 accounts), by each way the folder store could do
 * it. Each way writes into an empty folder; the ways alternate; 5 rounds after a warm-up, with
 * wall and CPU time. docs/performance.md records the numbers and the choice.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mapLimit } from '../lambda/core/pool.js';
import { median } from './stats.js';

const n = Number(process.argv[2] ?? 10_000);
const doc = `${'x'.repeat(4_800)}\n`;
const paths = Array.from(
  { length: n },
  (_, i) => `tokens/${100000000000 + (i % 20)}/${i % 7 ? 'role' : 'user'}/principal-${i}.json`,
);
const tmpName = (path: string) => `${path}.${randomBytes(6).toString('hex')}.tmp`;

type Way = (root: string) => Promise<void>;

/** Async, `limit` files at a time; the first write into a directory makes it, the others wait. */
const eachDirectoryOnce =
  (limit: number): Way =>
  (root) => {
    const dirs = new Map<string, Promise<unknown>>();
    return mapLimit(paths, limit, async (p) => {
      const file = join(root, p);
      const dir = dirname(file);
      let made = dirs.get(dir);
      if (!made) {
        made = mkdir(dir, { recursive: true });
        dirs.set(dir, made);
      }
      await made;
      const tmp = tmpName(file);
      await writeFile(tmp, doc, { mode: 0o600, flag: 'wx' });
      await rename(tmp, file);
    });
  };

const ways: Record<string, Way> = {
  'async, mkdir per file, 8 at a time (before)': (root) =>
    mapLimit(paths, 8, async (p) => {
      const file = join(root, p);
      await mkdir(dirname(file), { recursive: true });
      const tmp = tmpName(file);
      await writeFile(tmp, doc, { mode: 0o600, flag: 'wx' });
      await rename(tmp, file);
    }),
  'async, each directory once, 8 at a time': eachDirectoryOnce(8),
  'async, each directory once, 32 at a time': eachDirectoryOnce(32),
  'sync, each directory once': async (root) => {
    const dirs = new Set<string>();
    for (const p of paths) {
      const file = join(root, p);
      const dir = dirname(file);
      if (!dirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        dirs.add(dir);
      }
      const tmp = tmpName(file);
      writeFileSync(tmp, doc, { mode: 0o600, flag: 'wx' });
      renameSync(tmp, file);
    }
  },
};

const root = join(tmpdir(), `regtoken-fs-writes-${process.pid}`);
const samples = new Map<string, number[]>(Object.keys(ways).map((k) => [k, []]));
const cpu = new Map<string, number[]>(Object.keys(ways).map((k) => [k, []]));
for (let round = 0; round < 6; round++)
  for (const [name, way] of Object.entries(ways)) {
    rmSync(root, { recursive: true, force: true });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await way(root);
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (round > 0) {
      // round 0 warms up
      samples.get(name)?.push(ms);
      cpu.get(name)?.push((c.user + c.system) / 1000);
    }
  }
await rm(root, { recursive: true, force: true });
// CPU time (this process, libuv's threads included) is what the way costs; wall time also
// waits for the disk, which other processes share.
for (const [name, s] of samples)
  process.stdout.write(
    `${name}: wall median ${Math.round(median(s))} ms, least ${Math.round(Math.min(...s))} ms; CPU median ${Math.round(median(cpu.get(name) ?? []))} ms\n`,
  );
