/**
 * One mint run: read the grants, resolve each principal's access, sign every token, write them,
 * remove tokens of principals no longer granted, and publish the trust bundle.
 *
 * This is the one code path both entry points (CLI and Lambda handler) start. It talks to the
 * outside only through ports, so the same run works on a folder or on S3 + KMS.
 *
 * Guarantees (docs/architecture.md):
 * - a grants file that fails validation stops the run before anything is written;
 * - a principal whose token cannot be made or written keeps its previous token, is reported in
 *   `failed`, and does not stop the others;
 * - tokens are removed only for principals absent from the config.
 */

import { randomBytes } from 'node:crypto';
import { parseGrants } from './core/config.js';
import {
  type GrantsConfig,
  needsInventory,
  type PrincipalAccess,
  principalsOf,
  resolveAccess,
} from './core/grants.js';
import { mapLimit } from './core/pool.js';
import type {
  ConfigSource,
  Logger,
  Metrics,
  PrincipalDirectory,
  RepositoryInventory,
  RunLock,
  Signer,
  TokenDocument,
  TokenStore,
} from './core/ports.js';
import { tokenKey } from './core/principal.js';
import { buildClaims, signToken } from './core/token.js';

/** Above this size a token still works but may hit proxy header limits: the run warns. */
export const TOKEN_WARN_BYTES = 8_192;

export interface MintDeps {
  readonly config: ConfigSource;
  readonly store: TokenStore;
  readonly signer: Signer;
  readonly inventory?: RepositoryInventory | undefined;
  /** Checks principals exist before minting for them (AWS runs); absent locally. */
  readonly principals?: PrincipalDirectory | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Injected for exact tests; defaults to the system clock. */
  readonly clock?: () => Date;
  /** Injected for exact tests; defaults to 128 random bits. */
  readonly newJti?: () => string;
}

export interface MintedToken {
  readonly principal: string;
  readonly key: string;
  /** Where the token document is: a path or an `s3://` URL. */
  readonly location: string;
  readonly expiresAt: string;
  readonly bytes: number;
  readonly repositories: number;
  readonly catalog: boolean;
}

export interface MintResult {
  readonly configVersion: string | undefined;
  /** Principals that got no token because IAM does not know them (see docs/aws.md). */
  readonly unknown: readonly { readonly principal: string; readonly reason: string }[];
  readonly tokens: readonly MintedToken[];
  readonly failed: readonly { readonly principal: string; readonly reason: string }[];
  readonly removed: readonly string[];
  readonly warnings: readonly string[];
  readonly trustBundle: string;
  readonly jwks: string;
  readonly signingKey: string;
}

/**
 * 128-bit random token IDs. They are cut from one random buffer per 256 tokens: one
 * `randomBytes` call per token costs more than building the rest of the token's claims.
 */
function randomJtis(): () => string {
  const size = 16;
  let pool = Buffer.alloc(0);
  let at = 0;
  return () => {
    if (at >= pool.length) {
      pool = randomBytes(size * 256);
      at = 0;
    }
    at += size;
    return pool.toString('base64url', at - size, at);
  };
}

/**
 * The last grants text parsed, and its model. A locked run reads the grants twice (checked
 * before the lock, minted from under it) and a warm Lambda container reads the same object run
 * after run; parsing is the costliest step of the engine (docs/performance.md), and
 * {@link parseGrants} is pure, so the same text from the same source is parsed once.
 */
let lastParsed: { file: string; text: string; config: GrantsConfig } | undefined;

/** Reads and validates the grants; throws ConfigError (with every problem) before any write. */
export async function loadGrants(source: ConfigSource): Promise<{
  config: GrantsConfig;
  version: string | undefined;
}> {
  const { text, version } = await source.read();
  if (lastParsed?.file === source.name && lastParsed.text === text)
    return { config: lastParsed.config, version };
  const config = parseGrants(text, source.name);
  lastParsed = { file: source.name, text, config };
  return { config, version };
}

/**
 * Starts `start` now and returns a function that awaits its result later. A failure is kept
 * for that moment: it surfaces where the value is needed (as if the call had been made then),
 * never as an unhandled rejection if the run stops earlier for another reason.
 */
function early<T>(start: () => Promise<T>): () => Promise<T> {
  const promise = start();
  promise.catch(() => undefined);
  return () => promise;
}

/**
 * Runs one mint. Throws ConfigError on a bad config (nothing written). Principals that could not
 * get a new token are listed in `failed`; callers turn a non-empty list into a failed run.
 */
export async function mint(deps: MintDeps): Promise<MintResult> {
  const { store, logger, metrics } = deps;
  const clock = deps.clock ?? (() => new Date());
  const newJti = deps.newJti ?? randomJtis();
  const started = Date.now();

  const { config, version } = await loadGrants(deps.config);
  logger.info('grants loaded', {
    config: deps.config.name,
    configVersion: version,
    grants: config.grants.length,
  });

  // The reads that depend only on the config start together: on S3 each is one or more round
  // trips, and none needs another's answer. Each is awaited where the run needs it, so a
  // failure still stops the run at the same point.
  const { inventory: source, principals: directory } = deps;
  const listInventory = needsInventory(config) && source ? early(() => source.list()) : undefined;
  const checkPrincipals = directory
    ? early(() => directory.check(principalsOf(config)))
    : undefined;
  const readBundle = early(() => store.readTrustBundle());
  // Keys stored before this run: the only ones the removal pass may delete (every key this run
  // writes is a wanted one), so listing them now finds the same stale keys as listing later.
  const listStored = early(() => store.listTokenKeys());

  let inventory: string[] = [];
  if (listInventory && source) {
    inventory = await listInventory();
    logger.info('repository inventory read', {
      inventory: source.name,
      repositories: inventory.length,
    });
  }
  const warnings: string[] = [];
  if (needsInventory(config) && !deps.inventory)
    warnings.push(
      'the grants use wildcard patterns but no repository inventory was given: patterns grant nothing (pass --repositories)',
    );

  let resolved = resolveAccess(config, inventory);
  const unknown: { principal: string; reason: string }[] = [];
  if (checkPrincipals) {
    // principalsOf(config) lists the principals in the order resolveAccess returns them.
    const check = await checkPrincipals();
    const skip = new Set(check.unknown.map((u) => u.principal.arn));
    for (const u of check.unknown) {
      unknown.push({ principal: u.principal.arn, reason: u.reason });
      logger.warn('unknown principal: no token minted', {
        principal: u.principal.arn,
        reason: u.reason,
      });
    }
    if (check.unverified.length)
      logger.info('principals in other accounts minted unverified', {
        count: check.unverified.length,
      });
    metrics.count('UnknownPrincipals', unknown.length);
    metrics.count('UnverifiedPrincipals', check.unverified.length);
    resolved = resolved.filter((r) => !skip.has(r.principal.arn));
  }
  const now = clock();
  // The per-run certificate must outlive the longest token (or the default, if none is minted).
  const maxTtl = resolved.reduce((m, r) => Math.max(m, r.ttlSeconds), config.tokenTtlSeconds);
  const key = await deps.signer.prepare({
    now,
    notAfter: new Date(now.getTime() + maxTtl * 1000),
    publishedBundle: await readBundle(),
  });

  // Protect before publishing: a new reader account must be in the policy before its token
  // exists. Built from every configured account, so it does not depend on IAM lookups. The
  // policy and the trust material are independent, so they are written side by side; a policy
  // failure is reported first, as when they were written one after the other.
  const [policy, published] = await Promise.allSettled([
    store.applyReadPolicy?.([
      ...new Set(config.grants.flatMap((g) => g.principals.map((p) => p.account))),
    ]),
    store.publishTrust(key.trust),
  ]);
  if (policy.status === 'rejected') throw policy.reason;
  if (published.status === 'rejected') throw published.reason;
  const trust = published.value;

  // Sign and write in one pass, `store.concurrency` principals at a time: each token is signed
  // just before it is written, so signing overlaps the writes in flight and the run never holds
  // every token at once (docs/performance.md). Signatures are still made one at a time: in KMS
  // direct mode each is a KMS call, and the account's Sign quota is shared. If signing fails,
  // no further token is started and the run fails with that error once the writes in flight
  // have ended. Warnings and failures keep the order of the config.
  const notes: string[][] = [];
  const tooLarge: ({ principal: string; reason: string } | undefined)[] = [];
  const writeFailed: { principal: string; reason: string }[] = [];
  const tokens: MintedToken[] = [];
  let signing: Promise<string | undefined> = Promise.resolve(undefined);
  let signError: { error: unknown } | undefined;
  // Every token of the run has the same iat and one of a few exp values: format each once.
  const isoTimes = new Map<number, string>();
  const isoTime = (seconds: number): string => {
    let iso = isoTimes.get(seconds);
    if (iso === undefined) {
      iso = new Date(seconds * 1000).toISOString();
      isoTimes.set(seconds, iso);
    }
    return iso;
  };
  const work = resolved.map((access, index) => ({ access, index }));
  await mapLimit(work, store.concurrency, async ({ access, index }) => {
    if (signError) return;
    const arn = access.principal.arn;
    const mine: string[] = [];
    notes[index] = mine;
    for (const pattern of access.unmatched)
      if (deps.inventory)
        mine.push(`${arn}: pattern "${pattern}" matches no repository in ${deps.inventory.name}`);
    const claims = buildClaims({
      issuer: config.registry.issuer,
      service: config.registry.service,
      subject: arn,
      now,
      ttlSeconds: access.ttlSeconds,
      jti: newJti(),
      access: access.access,
    });
    // One signature at a time, in a chain that records a failure before the next link runs.
    const turn = signing.then(async () => {
      if (signError) return undefined;
      try {
        return await signToken(claims, key);
      } catch (error) {
        signError = { error };
        return undefined;
      }
    });
    signing = turn;
    const token = await turn;
    if (token === undefined) return;
    const bytes = token.length; // a compact JWS is ASCII: one byte per character
    if (bytes > config.registry.maxTokenBytes) {
      const reason = tooLargeReason(access, bytes, config.registry.maxTokenBytes);
      tooLarge[index] = { principal: arn, reason };
      logger.error('token too large', {
        principal: arn,
        bytes,
        limit: config.registry.maxTokenBytes,
      });
      return;
    }
    if (bytes > TOKEN_WARN_BYTES)
      mine.push(
        `${arn}: token is ${bytes} bytes, above ${TOKEN_WARN_BYTES} (proxies such as nginx reject longer headers by default)`,
      );
    const k = tokenKey(access.principal);
    const doc: TokenDocument = {
      principal: arn,
      registry: config.registry.host,
      token,
      issuedAt: isoTime(claims.iat),
      expiresAt: isoTime(claims.exp),
      access: access.access,
    };
    try {
      await store.putToken(k, doc, access.principal);
      tokens.push({
        principal: arn,
        key: k,
        location: store.locate(k),
        expiresAt: doc.expiresAt,
        bytes,
        repositories: doc.access.filter((a) => a.type === 'repository').length,
        catalog: doc.access.some((a) => a.type === 'registry'),
      });
    } catch (err) {
      const reason = `could not write ${store.locate(k)}: ${(err as Error).message}`;
      writeFailed.push({ principal: arn, reason });
      logger.error('token write failed', { principal: arn, error: (err as Error).message });
    }
  });
  if (signError) throw signError.error;
  for (const n of notes) if (n) warnings.push(...n);
  const failed = [
    ...tooLarge.filter((f): f is { principal: string; reason: string } => f !== undefined),
    ...writeFailed,
  ];

  // Remove tokens only for principals that are no longer granted (absent from the config, or
  // unknown to IAM: a role deleted and recreated later must not find an old token waiting).
  const wanted = new Set(resolved.map((r) => tokenKey(r.principal)));
  const stale = (await listStored()).filter((k) => !wanted.has(k));
  let deleteError: unknown;
  await mapLimit(stale, store.concurrency, async (k) => {
    try {
      await store.deleteToken(k);
    } catch (err) {
      deleteError ??= err;
    }
  });
  if (deleteError !== undefined) throw deleteError;
  const removed = stale;

  for (const w of warnings) logger.warn(w);
  metrics.count('TokensMinted', tokens.length);
  metrics.count('TokenFailures', failed.length);
  metrics.count('TokensRemoved', removed.length);
  metrics.duration('RunDuration', Date.now() - started);
  if (version) metrics.metadata('configVersion', version);
  logger.info('mint finished', {
    configVersion: version,
    minted: tokens.length,
    failed: failed.length,
    unknown: unknown.length,
    removed: removed.length,
    durationMs: Date.now() - started,
  });

  tokens.sort((a, b) => a.principal.localeCompare(b.principal));
  const result: MintResult = {
    configVersion: version,
    unknown,
    tokens,
    failed,
    removed,
    warnings,
    trustBundle: trust.bundle,
    jwks: trust.jwks,
    signingKey: key.description,
  };
  return result;
}

function tooLargeReason(access: PrincipalAccess, bytes: number, limit: number): string {
  let worst: { grant: number; line: number; entries: number } | undefined;
  for (const [grant, entries] of access.contributions)
    if (!worst || entries > worst.entries)
      worst = { grant: grant.number, line: grant.at.line, entries };
  const cause = worst
    ? `; grant #${worst.grant} (line ${worst.line}) contributes ${worst.entries} of its ${access.access.length} access entries`
    : '';
  return `token would be ${bytes} bytes, over the limit of ${limit} (registry.maxTokenBytes)${cause}`;
}

/** How many times one run mints again because the config changed while it was minting. */
export const MAX_PASSES = 3;

/** What {@link mintExclusive} did. */
export type ExclusiveResult =
  | { readonly skipped: false; readonly result: MintResult; readonly passes: number }
  | { readonly skipped: true };

/**
 * Mints under the run lock, so overlapping runs (a schedule and a config upload at once, or an
 * asynchronous retry) never interleave their writes. A run that finds the lock held returns
 * `skipped`: the holder will see the newer config. That is guaranteed because the holder,
 * after releasing the lock, compares the config's current version with the one it minted and
 * mints again when they differ. Each pass reads the latest config, so the last pass always
 * leaves tokens of the newest config.
 */
export async function mintExclusive(deps: MintDeps, lock: RunLock): Promise<ExclusiveResult> {
  // A bad grants file must leave the store exactly as it was, lock object included: check it
  // before taking the lock (the run reads it again under the lock, to mint the latest).
  await loadGrants(deps.config);
  let last: MintResult | undefined;
  for (let pass = 1; pass <= MAX_PASSES; pass++) {
    if (!(await lock.acquire())) {
      deps.logger.info('another run holds the lock; it picks up config changes when it ends', {
        pass,
      });
      return last ? { skipped: false, result: last, passes: pass - 1 } : { skipped: true };
    }
    try {
      last = await mint(deps);
    } catch (err) {
      // Free the lock for the next run, but report the run's own error, not a release failure.
      await lock.release().catch(() => undefined);
      throw err;
    }
    await lock.release();
    const current = await deps.config.currentVersion?.();
    if (current === undefined || current === last.configVersion)
      return { skipped: false, result: last, passes: pass };
    deps.logger.info('the config changed during the run; minting again', {
      minted: last.configVersion,
      current,
    });
  }
  return { skipped: false, result: last as MintResult, passes: MAX_PASSES };
}
