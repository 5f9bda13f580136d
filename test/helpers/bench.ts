import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url).pathname;

/** What one run of the benchmark did. */
export interface BenchRun<T> {
  /** Its exit code (null when a signal ended it). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The JSON it wrote, parsed; undefined unless it exited 0 (the output then says why). */
  readonly result: T;
}

/**
 * Runs `npm run bench` from source (`node --import tsx bench/run.ts ARGS --no-write --json JSON`)
 * in the repository, so it never rewrites docs/performance.md and leaves its figures in `json`.
 */
export async function runBench<T>(args: readonly string[], json: string): Promise<BenchRun<T>> {
  let stdout = '';
  let stderr = '';
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/run.ts', ...args, '--no-write', '--json', json],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  return {
    code,
    stdout,
    stderr,
    result: code === 0 ? JSON.parse(readFileSync(json, 'utf8')) : undefined,
  };
}
