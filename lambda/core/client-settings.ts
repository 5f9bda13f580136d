/**
 * Where the client commands (login, token, whoami) find the token and which registry they
 * expect, from three sources in order: flags (`--from`, `--registry`), the environment
 * (`REGTOKEN_FROM`, `REGTOKEN_REGISTRY`), and the user's config file
 * (`$XDG_CONFIG_HOME/regtoken/config.json`, default `~/.config/regtoken/config.json`):
 *
 * ```json
 * { "from": "s3://TOKEN_BUCKET/PREFIX", "registry": "registry.example.com" }
 * ```
 */

import { InputError } from '../errors.js';
import { jsonErrorLocation } from './json.js';
import { quote } from './text.js';

/** A setting and where it came from, for messages (`--from`, `REGTOKEN_FROM`, a file path). */
export interface Sourced {
  readonly value: string;
  readonly source: string;
}

/** The contents of the user config file. */
export interface UserConfig {
  readonly from?: string;
  readonly registry?: string;
}

const KEYS = ['from', 'registry'] as const;

/** Parses the user config file's text; `file` names it in messages. Throws InputError. */
export function parseUserConfig(text: string, file: string): UserConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${jsonErrorLocation(err, text)})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new InputError(`${file}: expected a JSON object like {"from": "s3://TOKEN_BUCKET"}`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(KEYS as readonly string[]).includes(key))
      throw new InputError(`${file}: unknown key ${quote(key)} (allowed: ${KEYS.join(', ')})`);
    if (typeof value !== 'string' || value.trim() === '')
      throw new InputError(`${file}: ${quote(key)} must be a non-empty string`);
    out[key] = value.trim();
  }
  return out;
}

/** Picks the first setting that is present: flag, then environment, then config file. */
export function pick(
  ...candidates: readonly (readonly [string | undefined, string])[]
): Sourced | undefined {
  for (const [value, source] of candidates) if (value !== undefined) return { value, source };
  return undefined;
}
