/**
 * Local mint: `regtoken mint` of a workload into a folder (the embedded default `npm start`
 * runs), timed as a whole process, against its floor: one Node process that signs the same
 * number of ES256 tokens with signing inputs of the same lengths and writes each document, of
 * the same length and to the same path, atomically (a temporary file with mode 0600, renamed
 * into place), creating each directory once. Both start from an empty folder; the median of the
 * repetitions, the two alternating.
 *
 * The CLI is built from the current code as `npm run build` builds it (one bundle, split at its
 * dynamic imports), so the measured process loads what bin/regtoken.js loads.
 *
 * Each process also reports its user CPU time (every thread) through a preloaded module: the
 * work of the code itself, which neither the load of other processes nor the speed of the file
 * system (system time, 0.4 s or 4 s for the same 10,000 files from one minute to the next) moves
 * much.
 */

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Workload } from './generate.js';
import { median } from './stats.js';

export interface LocalResult {
  readonly tokens: number;
  readonly reps: number;
  /** Median wall time of `regtoken mint`, ms, process start to exit. */
  readonly mintMs: number;
  /** Median wall time of the floor process, ms. */
  readonly floorMs: number;
  readonly mintSamples: readonly number[];
  readonly floorSamples: readonly number[];
  /** Median user CPU time (every thread) of `regtoken mint` and of the floor, ms. */
  readonly mintUserMs: number;
  readonly floorUserMs: number;
}

/** Preloaded into both processes: writes their user CPU time (µs) where asked. */
const CPU_PRELOAD = `
process.on('exit', () => {
  require('node:fs').writeFileSync(process.env.BENCH_CPU_FILE, String(process.cpuUsage().user));
});
`;

/** The floor: plain JavaScript, run by a fresh `node`. Reads its plan from argv[2]. */
const FLOOR = `
import { createPrivateKey, sign } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const key = createPrivateKey(readFileSync(plan.key));
const made = new Set();
let n = 0;
for (const [path, inputLength, docLength] of plan.items) {
  const input = 'e'.repeat(inputLength);
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  const token = input + '.' + signature;
  const doc = '{"token":"' + token + '"' + ' '.repeat(Math.max(0, docLength - token.length - 13)) + '}\\n';
  const file = join(plan.out, path);
  const dir = dirname(file);
  if (!made.has(dir)) { mkdirSync(dir, { recursive: true }); made.add(dir); }
  const tmp = file + '.' + (n++) + '.tmp';
  writeFileSync(tmp, doc, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}
`;

/**
 * Builds the CLI into `outdir` as `npm run build` does (scripts/bundle-bins.mjs), with `cli.js`
 * running it as bin/regtoken.js does.
 */
function bundleCli(root: string, outdir: string): void {
  execFileSync(process.execPath, [join(root, 'scripts/bundle-bins.mjs'), outdir], {
    stdio: 'ignore',
  });
  writeFileSync(join(outdir, 'cli.js'), "import { main } from './regtoken.mjs';\nawait main();\n");
}

/** Runs a fresh `node`; its wall time and user CPU time, ms. */
function timedNode(args: readonly string[], cwd: string): { wall: number; user: number } {
  const cpuFile = join(cwd, 'cpu.txt');
  rmSync(cpuFile, { force: true });
  const t0 = performance.now();
  execFileSync(process.execPath, ['--require', './cpu-preload.cjs', ...args], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: cwd, NO_COLOR: '1', BENCH_CPU_FILE: cpuFile },
  });
  const wall = performance.now() - t0;
  return { wall, user: Number(readFileSync(cpuFile, 'utf8')) / 1000 };
}

/** Every file under `dir`, as paths relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'));
}

/** Mints the workload locally `reps` times, alternating with the floor. */
export async function measureLocal(
  root: string,
  work: string,
  w: Workload,
  options: { reps: number },
): Promise<LocalResult> {
  const dir = join(work, `local-${w.n}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'grants.yaml'), w.configText);
  writeFileSync(join(dir, 'repositories.txt'), `${w.inventory.join('\n')}\n`);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  writeFileSync(join(dir, 'floor.mjs'), FLOOR);
  writeFileSync(join(dir, 'cpu-preload.cjs'), CPU_PRELOAD);
  bundleCli(root, join(dir, 'cli'));
  const mintArgs = [
    'cli/cli.js',
    'mint',
    '--config',
    'grants.yaml',
    '--repositories',
    'repositories.txt',
    '--signing-key',
    'key.pem',
    '--out',
    'out',
  ];

  const mintSamples: number[] = [];
  const floorSamples: number[] = [];
  const mintUser: number[] = [];
  const floorUser: number[] = [];
  let tokens = 0;
  // One untimed run of each first: the files are in the page cache for every timed one.
  for (let rep = -1; rep < options.reps; rep++) {
    rmSync(join(dir, 'out'), { recursive: true, force: true });
    const mint = timedNode(mintArgs, dir);
    if (rep === -1) {
      // The floor's plan: the same paths, signing inputs and document lengths as the tokens.
      const out = join(dir, 'out');
      const items = files(out)
        .filter((f) => f.startsWith('tokens/'))
        .map((f) => {
          const text = readFileSync(join(out, f), 'utf8');
          const token = (JSON.parse(text) as { token: string }).token;
          return [f, token.lastIndexOf('.'), text.length] as const;
        });
      tokens = items.length;
      writeFileSync(
        join(dir, 'floor-plan.json'),
        JSON.stringify({ key: join(dir, 'key.pem'), out: join(dir, 'floor-out'), items }),
      );
    } else {
      mintSamples.push(mint.wall);
      mintUser.push(mint.user);
    }
    rmSync(join(dir, 'floor-out'), { recursive: true, force: true });
    const floor = timedNode(['floor.mjs', 'floor-plan.json'], dir);
    if (rep >= 0) {
      floorSamples.push(floor.wall);
      floorUser.push(floor.user);
    }
  }
  rmSync(join(dir, 'out'), { recursive: true, force: true });
  rmSync(join(dir, 'floor-out'), { recursive: true, force: true });
  return {
    tokens,
    reps: options.reps,
    mintMs: median(mintSamples),
    floorMs: median(floorSamples),
    mintSamples,
    floorSamples,
    mintUserMs: median(mintUser),
    floorUserMs: median(floorUser),
  };
}
