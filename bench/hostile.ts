/**
 * Inputs built to be slow: a repository pattern that makes a backtracking matcher explode, and
 * grants files that stall or exhaust a YAML reader. Each case runs in its own child process
 * with a deadline, so a regression shows as "over the deadline" instead of hanging the bench.
 *
 * Run as a script (`node --import tsx bench/hostile.ts CASE`), it measures one case and prints
 * `{"ms": …, "reps": …}` on stdout.
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseGrantsSync } from '../lambda/core/config-positions.js';
import { parseRepositoryPattern } from '../lambda/core/repository.js';
import { MAX_GRANTS_BYTES } from '../lambda/core/yaml-limits.js';

/** One measured case: milliseconds per repetition, or undefined when it missed the deadline. */
export interface HostileCase {
  readonly name: string;
  readonly ms: number | undefined;
  readonly deadlineMs: number;
}

/**
 * How long one case's process may take in all before the case counts as a failure (and is
 * stopped). It includes starting node and compiling the case with tsx, which took more than
 * 10 s on a machine loaded 7× its cores; the case's own time is what the target judges. A
 * backtracking matcher would still blow it: the 8-star case took 60 s per match.
 */
const DEADLINE_MS = 60_000;

const STARS = `team-${'*-'.repeat(8)}x`;
/** 125 characters that nearly match `team-*-*-…-x`: every split of the dashes is tried. */
const NEAR_MISS = `team-${'a-'.repeat(60)}`;

function refuses(text: string): () => void {
  return () => {
    try {
      parseGrantsSync(text, 'hostile.yaml');
    } catch {
      return;
    }
    throw new Error('the hostile grants file was accepted');
  };
}

const HEAD = 'version: 1\nregistry: {host: r, service: r, issuer: r}\ngrants:\n';

/** The cases, by name: each returns the work of one repetition and how many to run. */
const CASES: Record<string, () => { run: () => void; reps: number }> = {
  'pattern `team-*-*-*-*-*-*-*-*-x`, 125-character near miss': () => {
    const parsed = parseRepositoryPattern(STARS);
    if (!parsed.ok) throw new Error(parsed.reason);
    return {
      run: () => {
        if (parsed.value.matches(NEAR_MISS)) throw new Error('matched');
      },
      reps: 10_000,
    };
  },
  'pattern with 60 wildcards, 255-character near miss': () => {
    const parsed = parseRepositoryPattern(`${'a*'.repeat(60)}b`);
    if (!parsed.ok) throw new Error(parsed.reason);
    const name = 'a'.repeat(255);
    return {
      run: () => {
        if (parsed.value.matches(name)) throw new Error('matched');
      },
      reps: 10_000,
    };
  },
  'grants file over the size limit': () => ({
    run: refuses(`${HEAD}#${'x'.repeat(MAX_GRANTS_BYTES)}\n`),
    reps: 5,
  }),
  'grants file with a mapping of 10,000 keys': () => ({
    run: refuses(
      `version: 1\nregistry:\n${Array.from({ length: 10_000 }, (_, i) => `  k${i}: 1\n`).join('')}`,
    ),
    reps: 5,
  }),
  'grants file nested 3,000 levels deep': () => ({
    run: refuses(`${HEAD}  - ${'['.repeat(3000)}${']'.repeat(3000)}\n`),
    reps: 5,
  }),
  'grants file with an alias bomb': () => ({
    run: refuses(
      `version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n${['b', 'c', 'd', 'e', 'f', 'g', 'h']
        .map(
          (k, i, all) =>
            `${k}: &${k} [${Array(9)
              .fill(`*${all[i - 1] ?? 'a'}`)
              .join(', ')}]`,
        )
        .join('\n')}\ngrants: *h\n`,
    ),
    reps: 5,
  }),
};

/** Measures every case, each in a child process stopped at its deadline. */
export async function measureHostile(): Promise<HostileCase[]> {
  const script = fileURLToPath(import.meta.url);
  const out: HostileCase[] = [];
  for (const name of Object.keys(CASES)) {
    const proc = spawn(process.execPath, ['--import', 'tsx', script, name], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), DEADLINE_MS);
    const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
    clearTimeout(timer);
    if (code === 0) out.push({ name, ms: JSON.parse(stdout).ms, deadlineMs: DEADLINE_MS });
    else if (code === null) out.push({ name, ms: undefined, deadlineMs: DEADLINE_MS });
    else throw new Error(`bench: hostile case "${name}" failed (exit ${code}):\n${stderr}`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const name = process.argv[2] ?? '';
  const make = CASES[name];
  if (!make) throw new Error(`unknown case ${name}`);
  const { run, reps } = make();
  run(); // warm up
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  process.stdout.write(`${JSON.stringify({ ms: (performance.now() - t0) / reps, reps })}\n`);
}
