/**
 * What a CLI command may touch: its output streams and settings. Commands get this instead of
 * reaching for `process`, so tests run them in-process with captured output.
 */

import { escapeControl, oneLine } from '../core/text.js';
import { humanDuration, REGISTRY_LEEWAY_SECONDS } from '../core/token-check.js';
import type { EnvSettings } from '../env.js';
import { RegtokenError, UsageError } from '../errors.js';

export interface Output {
  write(text: string): void;
  /** True when a person is watching (colour and tables allowed). */
  readonly isTTY: boolean;
}

export interface CliContext {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: EnvSettings;
  /** True when colour may be used on stderr/stdout (a TTY and NO_COLOR unset). */
  readonly color: boolean;
  /** This machine's clock; injected by tests (default: the system clock). */
  readonly clock?: () => Date;
}

const CODES = { red: 31, yellow: 33, green: 32, bold: 1, dim: 2 } as const;

/** Wraps text in an ANSI colour when `enabled`. */
export function paint(enabled: boolean, color: keyof typeof CODES, text: string): string {
  return enabled ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
}

/** Lays out rows as aligned columns (the last column is not padded). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * An output that shows control characters as escapes: names, paths and messages may come from
 * a hostile file, and a role name with terminal escapes must not retitle or clear the terminal
 * of whoever reviews it. Only the CLI's own colour codes pass, and only when colour is on.
 */
export function escaping(out: Output, color: boolean): Output {
  return {
    isTTY: out.isTTY,
    write: (text) => out.write(escapeControl(text, { keepNewlines: true, keepColour: color })),
  };
}

/**
 * Reports an error the way every regtoken program does and returns the exit code: a
 * user-facing error as one line `regtoken: MESSAGE` (plus `usage` for a usage error), anything
 * else as `regtoken: unexpected error: …` with the stack trace only under REGTOKEN_DEBUG=1.
 */
export function reportError(
  ctx: Pick<CliContext, 'stderr' | 'env'>,
  err: unknown,
  usage?: string,
): number {
  if (err instanceof RegtokenError) {
    ctx.stderr.write(`regtoken: ${err.message}\n`);
    if (err instanceof UsageError && usage) ctx.stderr.write(`${usage}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  ctx.stderr.write(`regtoken: unexpected error: ${oneLine(message)}\n`);
  if (ctx.env.debug && err instanceof Error && err.stack) ctx.stderr.write(`${err.stack}\n`);
  else ctx.stderr.write('(set REGTOKEN_DEBUG=1 to see the stack trace)\n');
  return 1;
}

/** A warning: one line on stderr. */
export function warn(ctx: Pick<CliContext, 'stderr' | 'color'>, message: string): void {
  ctx.stderr.write(`${paint(ctx.color, 'yellow', 'warning:')} ${message}\n`);
}

/** Warns when this machine's clock is off AWS's by more than the registry's leeway. */
export function warnSkew(
  ctx: Pick<CliContext, 'stderr' | 'color'>,
  skewSeconds: number | undefined,
): void {
  if (skewSeconds !== undefined && Math.abs(skewSeconds) > REGISTRY_LEEWAY_SECONDS)
    warn(
      ctx,
      `this machine's clock is ${humanDuration(Math.abs(skewSeconds))} ${skewSeconds > 0 ? 'ahead of' : 'behind'} AWS; keep it in sync (timedatectl set-ntp true)`,
    );
}
