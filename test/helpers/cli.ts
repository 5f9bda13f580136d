/**
 * Runs the regtoken CLI in-process with captured output, for fast and exact CLI tests.
 */

import { run } from '../../lambda/cli/main.js';
import { readEnv } from '../../lambda/env.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `regtoken ARGS...` with the given environment (default: none of regtoken's variables) and,
 * optionally, an injected clock for this machine.
 */
export async function cli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  opts: { clock?: () => Date } = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: {
      write: (t) => {
        stdout += t;
      },
      isTTY: false,
    },
    stderr: {
      write: (t) => {
        stderr += t;
      },
      isTTY: false,
    },
    env: readEnv(env),
    color: false,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  return { code, stdout, stderr };
}
