/**
 * Where the client commands (login, token, whoami) and the credential helpers find the token,
 * which registry they expect and which AWS profile they use, from three sources in order:
 * flags (`--from`, `--registry`, `--profile`), the environment (`REGTOKEN_FROM`,
 * `REGTOKEN_REGISTRY`), and the user's config file (`$XDG_CONFIG_HOME/regtoken/config.json`,
 * default `~/.config/regtoken/config.json`):
 *
 * ```json
 * {
 *   "from": "s3://TOKEN_BUCKET/PREFIX",
 *   "registry": "registry.example.com",
 *   "registries": {
 *     "registry.example.com": { "from": "s3://TOKEN_BUCKET" },
 *     "registry.staging.example.com": { "from": "s3://STAGING_TOKENS", "profile": "staging" }
 *   }
 * }
 * ```
 *
 * `registries` maps each registry host to its token location and, optionally, the AWS profile
 * that reads it: several registries, several AWS accounts, one file.
 */

import { InputError } from '../errors.js';
import { jsonErrorLocation } from './json.js';
import { quote } from './text.js';
import { normaliseRegistryHost } from './token-check.js';

/** A setting and where it came from, for messages (`--from`, `REGTOKEN_FROM`, a file path). */
export interface Sourced {
  readonly value: string;
  readonly source: string;
}

/** One registry host's entry in `registries`. */
export interface RegistryRoute {
  /** Its token location, `s3://TOKEN_BUCKET[/PREFIX]`; default: the top-level `from`. */
  readonly from?: string;
  /** The AWS profile that reads it; default: the AWS SDK's default credential chain. */
  readonly profile?: string;
}

/** The contents of the user config file. */
export interface UserConfig {
  readonly from?: string;
  readonly registry?: string;
  /** Per registry host (lower case, `HOST[:PORT]`). */
  readonly registries?: Readonly<Record<string, RegistryRoute>>;
}

const KEYS = ['from', 'registry', 'registries'] as const;
const ROUTE_KEYS = ['from', 'profile'] as const;
/** HOST[:PORT], as the grants schema allows for `registry.host`. */
const HOST_RE = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function nonEmpty(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new InputError(`${where} must be a non-empty string`);
  return value.trim();
}

function parseRoutes(value: unknown, file: string): Record<string, RegistryRoute> {
  if (!isObject(value))
    throw new InputError(
      `${file}: "registries" must be an object like {"registry.example.com": {"from": "s3://TOKEN_BUCKET"}}`,
    );
  const routes: Record<string, RegistryRoute> = {};
  for (const [host, entry] of Object.entries(value)) {
    const where = `${file}: registries[${quote(host)}]`;
    if (!HOST_RE.test(host)) {
      const example = normaliseRegistryHost(host);
      throw new InputError(
        `${where}: not a registry host (expected HOST[:PORT] in lower case, e.g. ${HOST_RE.test(example) ? quote(example) : '"registry.example.com"'})`,
      );
    }
    if (!isObject(entry))
      throw new InputError(`${where} must be an object like {"from": "s3://TOKEN_BUCKET"}`);
    const route: { from?: string; profile?: string } = {};
    for (const [key, v] of Object.entries(entry)) {
      if (!(ROUTE_KEYS as readonly string[]).includes(key))
        throw new InputError(
          `${where}: unknown key ${quote(key)} (allowed: ${ROUTE_KEYS.join(', ')})`,
        );
      route[key as (typeof ROUTE_KEYS)[number]] = nonEmpty(v, `${where}.${key}`);
    }
    routes[host] = route;
  }
  return routes;
}

/** Parses the user config file's text; `file` names it in messages. Throws InputError. */
export function parseUserConfig(text: string, file: string): UserConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${jsonErrorLocation(err, text)})`);
  }
  if (!isObject(parsed))
    throw new InputError(`${file}: expected a JSON object like {"from": "s3://TOKEN_BUCKET"}`);
  const out: { from?: string; registry?: string; registries?: Record<string, RegistryRoute> } = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(KEYS as readonly string[]).includes(key))
      throw new InputError(`${file}: unknown key ${quote(key)} (allowed: ${KEYS.join(', ')})`);
    if (key === 'registries') out.registries = parseRoutes(value, file);
    else out[key as 'from' | 'registry'] = nonEmpty(value, `${file}: ${quote(key)}`);
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

/**
 * The user config file's text with `registries[host]` set to `route` (other keys and hosts
 * kept, in their order), or undefined when it already says exactly that. `existing` is the
 * file's text (undefined: no file yet); it must already have passed {@link parseUserConfig}.
 */
export function withRoute(
  existing: string | undefined,
  host: string,
  route: RegistryRoute,
): string | undefined {
  const config: Record<string, unknown> = existing === undefined ? {} : JSON.parse(existing);
  const routes = isObject(config.registries) ? { ...config.registries } : {};
  const before = routes[host];
  const entry = {
    ...(route.from === undefined ? {} : { from: route.from }),
    ...(route.profile === undefined ? {} : { profile: route.profile }),
  };
  if (JSON.stringify(before) === JSON.stringify(entry)) return undefined;
  routes[host] = entry;
  return `${JSON.stringify({ ...config, registries: routes }, null, 2)}\n`;
}
