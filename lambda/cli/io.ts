/**
 * What a CLI command may touch: its output streams and settings. Commands get this instead of
 * reaching for `process`, so tests run them in-process with captured output.
 */

import type { EnvSettings } from '../env.js';

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
