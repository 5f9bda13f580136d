import { fileURLToPath } from 'node:url';
import { type RunResult, run } from './process.js';

const ENTRY = fileURLToPath(new URL('./regtoken-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs `regtoken ARGS...` from source in its own process (`node --import tsx`), with exactly the
 * environment `env` (nothing inherited): the way a user or a systemd unit runs it, with the AWS
 * SDK's default credential chain reading that environment. Never throws on a non-zero exit.
 */
export async function runRegtoken(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    cwd: ROOT,
    timeoutMs: 60_000,
  });
}
