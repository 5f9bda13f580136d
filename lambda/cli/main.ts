/**
 * `regtoken` command line: dispatches to a subcommand, maps errors to one-line messages and to
 * exit codes (0 ok, 1 bad input or failed run, 2 usage). Stack traces are shown only for
 * unexpected errors and only with REGTOKEN_DEBUG=1.
 */

import { parseArgs } from 'node:util';
import pkg from '../../package.json' with { type: 'json' };
import { oneLine, quote } from '../core/text.js';
import { quietSdkNotices, readEnv } from '../env.js';
import { UsageError } from '../errors.js';
import type { Command } from './command.js';
import { COMMANDS } from './commands.js';
import { type CliContext, escaping, reportError } from './io.js';

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: regtoken COMMAND [OPTIONS]

Keyless, IAM-based access to a private Docker registry: mints short-lived registry tokens
for AWS principals from a reviewed grants file.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'regtoken COMMAND --help' for a command's options.`;
}

function parse(command: Command, argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: command.positionals,
      strict: true,
    });
  } catch (err) {
    // node:util explains unknown flags and missing values well; keep its first sentence.
    const message = oneLine((err as Error).message) || 'invalid arguments';
    throw new UsageError(`${command.name}: ${message.replace(/\. To specify.*$/, '')}`);
  }
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function run(argv: readonly string[], raw: CliContext): Promise<number> {
  const ctx: CliContext = {
    ...raw,
    stdout: escaping(raw.stdout, raw.color),
    stderr: escaping(raw.stderr, raw.color),
  };
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = COMMANDS.find((c) => c.name === rest[0]);
      ctx.stdout.write(`${topic ? topic.help : overview()}\n`);
      return name === undefined ? 2 : 0;
    }
    if (name === '--version' || name === '-v') {
      ctx.stdout.write(`regtoken ${pkg.version}\n`);
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command ${quote(name)} (try 'regtoken --help')`);
    const args = parse(command, rest);
    if (args.values.help) {
      ctx.stdout.write(`${command.help}\n`);
      return 0;
    }
    return await command.run(args, ctx);
  } catch (err) {
    return reportError(ctx, err, `Run 'regtoken ${name ?? ''} --help' for usage.`);
  }
}

/** Entry point for the `regtoken` binary. */
export async function main(): Promise<void> {
  quietSdkNotices();
  const env = readEnv();
  const color = Boolean(process.stderr.isTTY) && !env.noColor;
  process.exitCode = await run(process.argv.slice(2), {
    stdout: { write: (t) => process.stdout.write(t), isTTY: Boolean(process.stdout.isTTY) },
    stderr: { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY) },
    env,
    color,
  });
}
