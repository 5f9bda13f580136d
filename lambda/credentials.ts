/**
 * A registry token for a host, as fast as it can be had: the shared path of the Docker
 * credential helper (`docker-credential-regtoken get`), the kubelet credential provider and
 * `regtoken login --helper`.
 *
 * - **Cached** ({@link cachedCredentials}): the credential source names an identity entry, the
 *   identity names the owner's token entry for the host, the token has more than 5 minutes
 *   left. No AWS call; the AWS SDK is not even loaded unless the credential source can only be
 *   known by resolving it (lambda/core/aws-source.ts).
 * - **Fetched** ({@link fetchCredentials}): the client code path of `regtoken token`: STS says
 *   who the caller is; if the cache holds that principal's fresh token for the host (a new
 *   session of a cached role) it is the answer, else the token is read from S3 and checked
 *   ({@link fetchOwnToken}, {@link checkUsable}). Then the entries are written — the identity
 *   one only when STS confirmed what the credential source claimed.
 */

import type { TokenCache } from './adapters/token-cache.js';
import type { AwsClientDeps } from './client.js';
import {
  type CredentialSource,
  claimHolds,
  environmentSource,
  profileSource,
  resolvedSource,
  selectedProfile,
} from './core/aws-source.js';
import type { Sourced } from './core/client-settings.js';
import type { Route } from './core/routes.js';
import {
  type CachedToken,
  identityIsFresh,
  isFresh,
  ownerOf,
  refreshAt,
  remainingSeconds,
} from './core/token-cache.js';
import { normaliseRegistryHost } from './core/token-check.js';
import type { AwsEnv } from './env.js';
import { UnknownRegistryError } from './errors.js';

/** The AWS side of one request, set up lazily so that a cached answer loads no SDK. */
export interface AwsSide {
  /** Who the caller is, as far as it is known locally (may resolve credentials). */
  source(): Promise<CredentialSource>;
  /** The client code path's dependencies. */
  clientDeps(): Promise<AwsClientDeps>;
}

/** What getting credentials needs. */
export interface CredentialsDeps {
  readonly cache: TokenCache;
  readonly clock: () => Date;
  readonly aws: AwsSide;
}

/** A token to answer with. */
export interface Served {
  readonly host: string;
  readonly token: string;
  /** The token's `exp` (epoch seconds). */
  readonly expiresAt: number;
  /** Seconds left, by AWS's clock as last seen. */
  readonly remainingSeconds: number;
  /** The principal ARN the token belongs to. */
  readonly principal: string;
  readonly fromCache: boolean;
  /** This machine's clock minus AWS's at the fetch (seconds), when known. */
  readonly skewSeconds?: number;
  /** Things the user should know (e.g. the cache cannot be written), one line each. */
  readonly warnings: readonly string[];
}

/**
 * The AWS side for a route on this machine: the credential source from the environment and the
 * AWS config files, and the SDK clients (imported on first use) for the route's profile.
 */
export function awsSide(
  route: Pick<Route, 'from' | 'profile'>,
  aws: AwsEnv,
  clock: () => Date,
): AwsSide {
  let deps: Promise<AwsClientDeps> | undefined;
  let source: Promise<CredentialSource> | undefined;
  const clientDeps = () => {
    deps ??= import('./client.js').then((m) =>
      m.awsClientDeps(route.from, clock, { profile: route.profile }),
    );
    return deps;
  };
  return {
    clientDeps,
    source: () => {
      source ??= (async () => {
        const fromEnvironment = environmentSource(aws, route.profile);
        if (fromEnvironment) return fromEnvironment;
        const { readAwsProfiles } = await import('./adapters/aws-profiles.js');
        const explicit = (route.profile ?? aws.profile) !== undefined;
        const name = selectedProfile(aws, route.profile);
        const known = profileSource(aws, name, explicit, await readAwsProfiles());
        if (known.kind === 'known') return known;
        return resolvedSource(await (await clientDeps()).credentialKeyId(), aws);
      })();
      return source;
    },
  };
}

function served(entry: CachedToken, now: Date, fromCache: boolean, warnings: string[]): Served {
  return {
    host: entry.host,
    token: entry.token,
    expiresAt: entry.expiresAt,
    remainingSeconds: remainingSeconds(entry, now),
    principal: entry.principal,
    fromCache,
    ...(fromCache ? {} : { skewSeconds: entry.skewSeconds }),
    warnings,
  };
}

/** The cached token for the route's host, when there is a fresh one for this caller. */
export async function cachedCredentials(
  route: Route,
  deps: CredentialsDeps,
): Promise<Served | undefined> {
  const now = deps.clock();
  const source = await deps.aws.source();
  if (source.kind !== 'known') return undefined;
  const identity = await deps.cache.identity(source.material);
  if (!identity || !identityIsFresh(identity, now)) return undefined;
  const owner = ownerOf(identity.caller);
  if (!owner) return undefined;
  const entry = await deps.cache.token(owner, route.host, route.from.value);
  return entry && isFresh(entry, now) ? served(entry, now, true, []) : undefined;
}

/**
 * Asks STS who the caller is, then answers from the caller's cached token for the host when it
 * is fresh (a new session of a role whose token is cached: no S3 read), else reads and checks
 * the token with the client code path and caches it. Without a host (`regtoken login --helper`
 * before it knows one) it always reads, and the token's own registry is the host, checked
 * against `expected` as `regtoken login --registry` does. Throws the client errors (no
 * credentials, access denied, no token, expired, clock skew) and UnknownRegistryError when the
 * token is for another registry than the host asked for.
 */
export async function fetchCredentials(
  route: Omit<Route, 'host'> & { readonly host?: string },
  deps: CredentialsDeps,
  options: { readonly expected?: Sourced | undefined } = {},
): Promise<Served> {
  const source = await deps.aws.source();
  const client = await deps.aws.clientDeps();
  const { checkUsable, fetchOwnToken, identify } = await import('./client.js');
  const who = await identify(client);
  const warnings: string[] = [];
  const remember = async (entry: CachedToken, write: boolean) => {
    try {
      if (write) await deps.cache.putToken(entry);
      if (source.kind === 'known' && claimHolds(source.claim, who.caller))
        await deps.cache.putIdentity(source.material, {
          caller: who.caller.arn,
          until: refreshAt(entry),
        });
      if (write) await deps.cache.prune();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      warnings.push(
        `cannot write the token cache ${deps.cache.dir} (${code}): every request asks AWS until it can; check that directory's owner and permissions`,
      );
    }
  };
  const owner = ownerOf(who.caller.arn) ?? who.caller.arn;
  if (route.host !== undefined) {
    const entry = await deps.cache.token(owner, route.host, route.from.value);
    if (entry && isFresh(entry, deps.clock())) {
      await remember(entry, false);
      return served(entry, deps.clock(), true, warnings);
    }
  }
  const fetched = await fetchOwnToken(client, who);
  const times = checkUsable(client, fetched, options.expected);
  const doc = fetched.token.document;
  const host = route.host ?? normaliseRegistryHost(doc.registry);
  if (normaliseRegistryHost(doc.registry) !== host)
    throw new UnknownRegistryError(
      `your token at ${fetched.url} is for registry ${doc.registry}, not ${host}: give ${host} its own token location (registries["${host}"].from in the regtoken config file; this one came from ${route.from.source}), or ask for a grant on ${host}`,
    );
  const entry: CachedToken = {
    owner,
    host,
    from: route.from.value,
    principal: doc.principal,
    token: doc.token,
    expiresAt: fetched.token.claims.exp,
    skewSeconds: times.skewSeconds ?? 0,
  };
  await remember(entry, true);
  return served(entry, deps.clock(), false, warnings);
}

/** The route's token: from the cache when fresh, else fetched (and cached). */
export async function registryCredentials(route: Route, deps: CredentialsDeps): Promise<Served> {
  return (await cachedCredentials(route, deps)) ?? fetchCredentials(route, deps);
}
