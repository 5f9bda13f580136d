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

/** Reads and validates the grants; throws ConfigError (with every problem) before any write. */
export async function loadGrants(source: ConfigSource): Promise<{
  config: GrantsConfig;
  version: string | undefined;
}> {
  const { text, version } = await source.read();
  return { config: parseGrants(text, source.name), version };
}

/**
 * Runs one mint. Throws ConfigError on a bad config (nothing written). Principals that could not
 * get a new token are listed in `failed`; callers turn a non-empty list into a failed run.
 */
export async function mint(deps: MintDeps): Promise<MintResult> {
  const { store, logger, metrics } = deps;
  const clock = deps.clock ?? (() => new Date());
  const newJti = deps.newJti ?? (() => randomBytes(16).toString('base64url'));
  const started = Date.now();

  const { config, version } = await loadGrants(deps.config);
  logger.info('grants loaded', {
    config: deps.config.name,
    configVersion: version,
    grants: config.grants.length,
  });

  let inventory: string[] = [];
  if (needsInventory(config)) {
    if (deps.inventory) {
      inventory = await deps.inventory.list();
      logger.info('repository inventory read', {
        inventory: deps.inventory.name,
        repositories: inventory.length,
      });
    }
  }
  const warnings: string[] = [];
  if (needsInventory(config) && !deps.inventory)
    warnings.push(
      'the grants use wildcard patterns but no repository inventory was given: patterns grant nothing (pass --repositories)',
    );

  let resolved = resolveAccess(config, inventory);
  const unknown: { principal: string; reason: string }[] = [];
  if (deps.principals) {
    const check = await deps.principals.check(resolved.map((r) => r.principal));
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
    publishedBundle: await store.readTrustBundle(),
  });

  const failed: { principal: string; reason: string }[] = [];
  const documents: { key: string; doc: TokenDocument; access: PrincipalAccess }[] = [];
  for (const access of resolved) {
    const arn = access.principal.arn;
    for (const pattern of access.unmatched)
      if (deps.inventory)
        warnings.push(
          `${arn}: pattern "${pattern}" matches no repository in ${deps.inventory.name}`,
        );
    const claims = buildClaims({
      issuer: config.registry.issuer,
      service: config.registry.service,
      subject: arn,
      now,
      ttlSeconds: access.ttlSeconds,
      jti: newJti(),
      access: access.access,
    });
    const token = await signToken(claims, key);
    const bytes = Buffer.byteLength(token);
    if (bytes > config.registry.maxTokenBytes) {
      const reason = tooLargeReason(access, bytes, config.registry.maxTokenBytes);
      failed.push({ principal: arn, reason });
      logger.error('token too large', {
        principal: arn,
        bytes,
        limit: config.registry.maxTokenBytes,
      });
      continue;
    }
    if (bytes > TOKEN_WARN_BYTES)
      warnings.push(
        `${arn}: token is ${bytes} bytes, above ${TOKEN_WARN_BYTES} (proxies such as nginx reject longer headers by default)`,
      );
    documents.push({
      key: tokenKey(access.principal),
      access,
      doc: {
        principal: arn,
        registry: config.registry.host,
        token,
        issuedAt: new Date(claims.iat * 1000).toISOString(),
        expiresAt: new Date(claims.exp * 1000).toISOString(),
        access: access.access,
      },
    });
  }

  // Protect before publishing: a new reader account must be in the policy before its token
  // exists. Built from every configured account, so it does not depend on IAM lookups.
  await store.applyReadPolicy?.([
    ...new Set(config.grants.flatMap((g) => g.principals.map((p) => p.account))),
  ]);
  const trust = await store.publishTrust(key.trust);

  const tokens: MintedToken[] = [];
  await mapLimit(documents, store.concurrency, async ({ key: k, doc, access }) => {
    try {
      await store.putToken(k, doc, access.principal);
      tokens.push({
        principal: doc.principal,
        key: k,
        location: store.locate(k),
        expiresAt: doc.expiresAt,
        bytes: Buffer.byteLength(doc.token),
        repositories: doc.access.filter((a) => a.type === 'repository').length,
        catalog: doc.access.some((a) => a.type === 'registry'),
      });
    } catch (err) {
      const reason = `could not write ${store.locate(k)}: ${(err as Error).message}`;
      failed.push({ principal: doc.principal, reason });
      logger.error('token write failed', {
        principal: doc.principal,
        error: (err as Error).message,
      });
    }
  });

  // Remove tokens only for principals that are no longer granted (absent from the config, or
  // unknown to IAM: a role deleted and recreated later must not find an old token waiting).
  const wanted = new Set(resolved.map((r) => tokenKey(r.principal)));
  const removed: string[] = [];
  for (const k of await store.listTokenKeys()) {
    if (wanted.has(k)) continue;
    await store.deleteToken(k);
    removed.push(k);
  }

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
