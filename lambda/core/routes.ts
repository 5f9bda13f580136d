/**
 * Which registry hosts regtoken serves as a credential helper, and for each one where its
 * token is and which AWS profile reads it. The hosts are the keys of the user config file's
 * `registries`, plus the one registry named by `REGTOKEN_REGISTRY` or the file's `registry`.
 * Nothing else is served: a Docker config with `"credsStore": "regtoken"` asks about every host
 * (Docker Hub included), and those must be answered "no credentials" without an AWS call.
 *
 * For a host's token location the most specific setting wins: `registries[HOST].from`, then
 * `REGTOKEN_FROM`, then the file's top-level `from`. A per-host entry beats the environment
 * because Docker runs the helper with the environment of whoever ran `docker`, which may carry a
 * `REGTOKEN_FROM` meant for another registry.
 */

import { InputError } from '../errors.js';
import type { RegistryRoute, Sourced, UserConfig } from './client-settings.js';
import { excerpt } from './text.js';
import { normaliseRegistryHost } from './token-check.js';

/** Where a served host's token is and who reads it. */
export interface Route {
  readonly host: string;
  readonly from: Sourced;
  /** The AWS profile; undefined: the AWS SDK's default credential chain. */
  readonly profile: string | undefined;
}

/** The settings routes are made from. */
export interface RouteSettings {
  readonly file: UserConfig;
  /** The user config file's path, for messages. */
  readonly filePath: string;
  /** REGTOKEN_FROM. */
  readonly envFrom: string | undefined;
  /** REGTOKEN_REGISTRY. */
  readonly envRegistry: string | undefined;
}

/** The single registry named by REGTOKEN_REGISTRY or the file's `registry`, normalised. */
function namedRegistry(s: RouteSettings): string | undefined {
  const named = s.envRegistry ?? s.file.registry;
  return named === undefined ? undefined : normaliseRegistryHost(named);
}

/** Every host served, sorted. */
export function servedHosts(s: RouteSettings): string[] {
  const hosts = new Set(Object.keys(s.file.registries ?? {}));
  const named = namedRegistry(s);
  if (named) hosts.add(named);
  return [...hosts].sort();
}

/**
 * The route for `server` (a host, or a URL as Docker sends it: `https://HOST/v1/`), or undefined
 * when regtoken does not serve it. Throws InputError when it is served but no token location
 * is set for it.
 */
export function routeFor(server: string, s: RouteSettings): Route | undefined {
  const host = normaliseRegistryHost(server);
  if (host === '') return undefined;
  const entry: RegistryRoute | undefined = s.file.registries?.[host];
  if (entry === undefined && host !== namedRegistry(s)) return undefined;
  const from =
    (entry?.from === undefined
      ? undefined
      : { value: entry.from, source: `${s.filePath} (registries["${host}"].from)` }) ??
    (s.envFrom === undefined ? undefined : { value: s.envFrom, source: 'REGTOKEN_FROM' }) ??
    (s.file.from === undefined ? undefined : { value: s.file.from, source: s.filePath });
  if (from === undefined)
    throw new InputError(
      `no token location for ${excerpt(host)}: put {"registries": {"${excerpt(host)}": {"from": "s3://TOKEN_BUCKET"}}} in ${s.filePath} (regtoken login --helper does), or set REGTOKEN_FROM`,
    );
  return { host, from, profile: entry?.profile };
}
