/**
 * The last step of a mint run: removes the tokens of principals no longer granted, sums the
 * batches into the run's result, logs and counts it; then, for a locked run, releases the lock
 * and tells whether the grants changed while the run was minting.
 */

import { mapLimit } from '../core/pool.js';
import type {
  ConfigSource,
  Logger,
  Metrics,
  ReleaseNote,
  RunLock,
  TokenStore,
} from '../core/ports.js';
import type { MintPlan, PrincipalProblem } from './plan.js';
import { type BatchResult, type MintedToken, sortByArn } from './sign-and-write.js';

/** What the finish step needs. */
export interface FinishDeps {
  readonly store: TokenStore;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * A batch's outcome as a worker in another process reports it (a fanned-out run): how many
 * tokens it wrote instead of each one, so the finish step's input does not grow with tokens.
 */
export interface BatchSummary {
  readonly minted: number;
  readonly failed: readonly PrincipalProblem[];
  readonly warnings: readonly string[];
}

/** What one mint run did. */
export interface MintResult {
  readonly configVersion: string | undefined;
  /** Principals that got no token because IAM does not know them (see docs/aws.md). */
  readonly unknown: readonly PrincipalProblem[];
  /** How many tokens were written. */
  readonly minted: number;
  /** The tokens written, sorted by principal (none listed for batches given as summaries). */
  readonly tokens: readonly MintedToken[];
  readonly failed: readonly PrincipalProblem[];
  readonly removed: readonly string[];
  readonly warnings: readonly string[];
  readonly trustBundle: string;
  readonly jwks: string;
  readonly signingKey: string;
}

/**
 * Deletes `stale` token keys ({@link FinishDeps.store}'s concurrency at a time) and returns
 * those deleted, in the given order. The first failure fails the removal once every delete
 * has ended. A single run removes while its tokens are written (the stale keys are known from
 * the plan, and no token of the run is one of them); a fanned-out run at its finish step.
 */
export async function removeStale(
  stale: readonly string[],
  deps: FinishDeps,
): Promise<readonly string[]> {
  const { store, logger } = deps;
  let deleteError: unknown;
  const deleted = new Set<string>();
  await mapLimit(stale, store.concurrency, async (k) => {
    try {
      if (await store.deleteToken(k)) deleted.add(k);
      else logger.info('left in place: not a token document regtoken wrote', { key: k });
    } catch (err) {
      deleteError ??= err;
    }
  });
  if (deleteError !== undefined) throw deleteError;
  return stale.filter((k) => deleted.has(k));
}

/**
 * Deletes the plan's stale tokens ({@link removeStale}), unless `removed` says what a removal
 * made side by side with the writes already deleted, then reports the run. `batches` are the
 * results of the sign-and-write step, in the plan's order, or their summaries. The plan's
 * principals are not needed: a fanned-out run keeps them in its shard files.
 */
export async function finish(
  plan: Omit<MintPlan, 'principals'>,
  batches: readonly (BatchResult | BatchSummary)[],
  deps: FinishDeps,
  removed?: readonly string[],
): Promise<MintResult> {
  const { logger, metrics } = deps;
  removed ??= await removeStale(plan.stale, deps);

  // Each batch's tokens are in ARN order already: one batch (a single function's run) needs no sort.
  const [only] = batches;
  const tokens =
    batches.length === 1 && only && 'tokens' in only
      ? only.tokens
      : sortByArn(batches.flatMap((b) => ('tokens' in b ? b.tokens : [])));
  const minted = batches.reduce((n, b) => n + ('tokens' in b ? b.tokens.length : b.minted), 0);
  const failed = batches.flatMap((b) => b.failed);
  const warnings = [...plan.warnings, ...batches.flatMap((b) => b.warnings)];
  for (const w of warnings) logger.warn(w);
  if (plan.unverified !== undefined) {
    metrics.count('UnknownPrincipals', plan.unknown.length);
    metrics.count('UnverifiedPrincipals', plan.unverified);
  }
  if (plan.shortLifetimes !== undefined) metrics.count('ShortLifetimes', plan.shortLifetimes);
  metrics.count('TokensMinted', minted);
  metrics.count('TokenFailures', failed.length);
  metrics.count('TokensRemoved', removed.length);
  metrics.duration('RunDuration', Date.now() - plan.startedAt);
  if (plan.policyAccountsLeftOut !== undefined)
    metrics.count('PolicyAccountsLeftOut', plan.policyAccountsLeftOut);
  // The stack alarms a year ahead (docs/tokens.md, "Root certificate renewal").
  if (plan.rootDaysLeft !== undefined) metrics.count('RootCertificateDaysLeft', plan.rootDaysLeft);
  if (plan.configVersion) metrics.metadata('configVersion', plan.configVersion);
  logger.info('mint finished', {
    configVersion: plan.configVersion,
    minted,
    failed: failed.length,
    unknown: plan.unknown.length,
    removed: removed.length,
    durationMs: Date.now() - plan.startedAt,
  });

  return {
    configVersion: plan.configVersion,
    unknown: plan.unknown,
    minted,
    tokens,
    failed,
    removed,
    warnings,
    trustBundle: plan.trust.bundle,
    jwks: plan.trust.jwks,
    signingKey: plan.signingKey,
  };
}

/**
 * Ends a locked run: releases the lock (leaving `note` with it), then compares the grants'
 * current version with the one minted. Returns the newer version when the grants changed during
 * the run (the caller mints again), undefined when the run minted the latest grants or the
 * source cannot tell.
 */
export async function releaseAndCheck(
  lock: RunLock,
  config: ConfigSource,
  minted: string | undefined,
  note?: ReleaseNote,
): Promise<string | undefined> {
  await lock.release(note);
  const current = await config.currentVersion?.();
  return current === undefined || current === minted ? undefined : current;
}
