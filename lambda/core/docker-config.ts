/**
 * Puts a registry token into a Docker client configuration (`config.json`), the way Docker
 * Engine and BuildKit read it: `auths[HOST].registrytoken`, sent as `Authorization: Bearer`;
 * or, for `regtoken login --helper`, names regtoken's credential helper for the host
 * ({@link setCredentialHelper}).
 *
 * Merge rules (docs/client.md):
 * - `auths[HOST]` becomes exactly `{"registrytoken": TOKEN}`. Anything else there (`auth`, a
 *   base64 user:password; `identitytoken`; `username`, `password`, `email`) is removed, and
 *   reported: the Docker daemon uses `registrytoken` before any of them, so they would only be
 *   a stored password that no longer serves.
 * - Every other `auths` entry, `credsStore`, `credHelpers`, and every other top-level key are
 *   kept as they were, in their order.
 * - A `credHelpers[HOST]` entry is kept but warned about: Docker asks that helper for HOST on
 *   every pull, and a failing helper fails the pull before the token is used.
 * - A file that is not a JSON object (or whose `auths` or `credHelpers` is not one) is refused,
 *   never rewritten.
 * Docker writes the file with tab indentation; so does this.
 */

import { InputError } from '../errors.js';
import { jsonErrorLocation } from './json.js';
import { excerpt } from './text.js';

/** What {@link setRegistryToken} decided. */
export interface DockerConfigUpdate {
  /** The new file content. */
  readonly text: string;
  /** False when the file already held exactly this token for this host (nothing to write). */
  readonly changed: boolean;
  /** Fields removed from `auths[HOST]` (e.g. `auth`, `identitytoken`). */
  readonly removed: readonly string[];
  /** Things the user should know, one line each. */
  readonly warnings: readonly string[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Returns `existing` (the file's text, or undefined when there is none) with
 * `auths[host].registrytoken = token`. `file` names the file in messages. Throws InputError when
 * the existing content is not a Docker config it can safely rewrite.
 */
/** Parses a Docker config's text (undefined or blank: empty); throws InputError naming `file`. */
function parseDockerConfig(existing: string | undefined, file: string): Record<string, unknown> {
  let config: Record<string, unknown> = {};
  // Docker itself treats an empty file as an empty configuration.
  if (existing !== undefined && existing.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(existing);
    } catch (err) {
      throw new InputError(
        `${file} is not valid JSON (${jsonErrorLocation(err, existing)}); fix or move it and retry — it was not changed`,
      );
    }
    if (!isObject(parsed))
      throw new InputError(
        `${file} is not a JSON object; fix or move it and retry — it was not changed`,
      );
    config = parsed;
  }
  for (const key of ['auths', 'credHelpers'])
    if (config[key] !== undefined && !isObject(config[key]))
      throw new InputError(
        `${file}: "${key}" is not an object; fix or move the file and retry — it was not changed`,
      );
  return config;
}

/**
 * `config` with `key` set to `value`, keeping the key's position when it exists and adding it
 * at `first` or last otherwise. fromEntries defines keys as data, so even a "__proto__" key
 * survives as written.
 */
function withKey(
  config: Record<string, unknown>,
  key: string,
  value: unknown,
  where: 'first' | 'last',
): Record<string, unknown> {
  const entries = Object.entries(config).map(([k, v]) => [k, k === key ? value : v] as const);
  if (key in config) return Object.fromEntries(entries);
  return Object.fromEntries(
    where === 'first' ? [[key, value], ...entries] : [...entries, [key, value]],
  );
}

const render = (config: Record<string, unknown>) => `${JSON.stringify(config, null, '\t')}\n`;

export function setRegistryToken(
  existing: string | undefined,
  host: string,
  token: string,
  file: string,
): DockerConfigUpdate {
  const config = parseDockerConfig(existing, file);
  const auths: Record<string, unknown> = isObject(config.auths) ? { ...config.auths } : {};
  const before = auths[host];
  const removed = isObject(before) ? Object.keys(before).filter((k) => k !== 'registrytoken') : [];
  const changed = !(isObject(before) && removed.length === 0 && before.registrytoken === token);
  auths[host] = { registrytoken: token };
  // Keep the position of "auths" (and of HOST within it) when they exist; add them first otherwise.
  const next = withKey(config, 'auths', auths, 'first');

  const warnings: string[] = [];
  if (removed.length)
    warnings.push(
      `replaced the stored credentials for ${host} in ${file} (${removed.join(', ')}): the token takes their place`,
    );
  const helpers = config.credHelpers;
  if (isObject(helpers) && typeof helpers[host] === 'string')
    warnings.push(
      `${file} sends ${host} to the credential helper docker-credential-${excerpt(String(helpers[host]))} (credHelpers): Docker still uses the token, but fails the pull when that helper fails; remove credHelpers["${host}"] unless you need it`,
    );
  return { text: render(next), changed, removed, warnings };
}

/** The name under which Docker finds regtoken's credential helper (`docker-credential-regtoken`). */
export const HELPER_NAME = 'regtoken';

/**
 * Returns `existing` with `credHelpers[host] = "regtoken"`, so Docker asks
 * `docker-credential-regtoken` for HOST's credentials on every pull and push. Merge rules as for
 * {@link setRegistryToken}, and: `auths[HOST]` is removed — the Docker CLI merges what it holds
 * into the helper's answer, and a stale `registrytoken` there would be sent first — with its
 * credentials reported; another helper for HOST is replaced and reported.
 */
export function setCredentialHelper(
  existing: string | undefined,
  host: string,
  file: string,
): DockerConfigUpdate {
  const config = parseDockerConfig(existing, file);
  const auths: Record<string, unknown> = isObject(config.auths) ? { ...config.auths } : {};
  const helpers: Record<string, unknown> = isObject(config.credHelpers)
    ? { ...config.credHelpers }
    : {};
  const before = auths[host];
  const removed = isObject(before) ? Object.keys(before) : [];
  const previous = helpers[host];
  const changed = before !== undefined || previous !== HELPER_NAME;
  delete auths[host];
  helpers[host] = HELPER_NAME;
  let next = withKey(config, 'credHelpers', helpers, 'last');
  if ('auths' in config) next = withKey(next, 'auths', auths, 'first');
  const warnings: string[] = [];
  if (removed.length)
    warnings.push(
      `removed the stored credentials for ${host} from ${file} (${removed.join(', ')}): Docker asks docker-credential-${HELPER_NAME} instead`,
    );
  if (typeof previous === 'string' && previous !== HELPER_NAME)
    warnings.push(
      `replaced the credential helper for ${host} in ${file} (credHelpers: was "${previous}")`,
    );
  return { text: render(next), changed, removed, warnings };
}
