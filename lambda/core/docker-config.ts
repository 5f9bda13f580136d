/**
 * Puts a registry token into a Docker client configuration (`config.json`), the way Docker
 * Engine and BuildKit read it: `auths[HOST].registrytoken`, sent as `Authorization: Bearer`.
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
 * - A file that is not a JSON object (or whose `auths` is not one) is refused, never rewritten.
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
export function setRegistryToken(
  existing: string | undefined,
  host: string,
  token: string,
  file: string,
): DockerConfigUpdate {
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
  if (config.auths !== undefined && !isObject(config.auths))
    throw new InputError(
      `${file}: "auths" is not an object; fix or move the file and retry — it was not changed`,
    );
  const auths: Record<string, unknown> = isObject(config.auths) ? { ...config.auths } : {};
  const before = auths[host];
  const removed = isObject(before) ? Object.keys(before).filter((k) => k !== 'registrytoken') : [];
  const changed = !(isObject(before) && removed.length === 0 && before.registrytoken === token);
  auths[host] = { registrytoken: token };
  // Keep the position of "auths" (and of HOST within it) when they exist; add them first
  // otherwise. fromEntries defines keys as data, so even a "__proto__" key survives as written.
  const entries = Object.entries(config).map(([k, v]) => [k, k === 'auths' ? auths : v] as const);
  const next = Object.fromEntries('auths' in config ? entries : [['auths', auths], ...entries]);

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
  return { text: `${JSON.stringify(next, null, '\t')}\n`, changed, removed, warnings };
}
