/**
 * What every `regtoken` subcommand is: its flags, its help text and what it does. The command
 * modules (commands.ts for grants, client-commands.ts for the client) both build on this, and
 * main.ts dispatches to them.
 */

import type { ParseArgsConfig } from 'node:util';
import type { CliContext } from './io.js';

/** A command line after node:util's parseArgs. */
export interface ParsedArgs {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: readonly string[];
}

/** A subcommand: its flags, its help text and what it does. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  readonly positionals: boolean;
  run(args: ParsedArgs, ctx: CliContext): Promise<number>;
}

/** The value of a string flag, or undefined when it was not given. */
export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}
