/**
 * One mint run: read the grants, resolve each principal's access, sign every token, write them,
 * remove tokens of principals no longer granted, and publish the trust bundle.
 *
 * This is the one code path both entry points (CLI and Lambda handler) start. It talks to the
 * outside only through ports, so the same run works on a folder or on S3 + KMS. It is three
 * steps (lambda/steps/), each taking and returning plain data so that a run could be spread over
 * several processes (docs/performance.md, "Past one function"):
 * plan ({@link planWrites}: grants, inventory, IAM check, policy and trust),
 * {@link signAndWrite} (one batch of principals, given their access and a signer) and
 * {@link finish} (removal, metrics; lock release and version check for a locked run). A single
 * run lists the stored tokens and removes the stale ones while it writes the new ones; under a
 * lock it gave back itself, it takes them from the note its last run left with the lock.
 *
 * The path through the code is in docs/architecture.md. Guarantees (docs/aws.md, "Nothing lost,
 * nothing stale"):
 * - a grants file that fails validation stops the run before anything is written;
 * - a principal whose token cannot be made or written keeps its previous token, is reported in
 *   `failed`, and does not stop the others;
 * - tokens are removed only for principals absent from the config (or unknown to IAM).
 */

import type { ReleaseNote, RunLock } from './core/ports.js';
import {
  type FinishDeps,
  finish,
  type MintResult,
  releaseAndCheck,
  removeStale,
} from './steps/finish.js';
import { listStale, loadGrants, type PlanDeps, planWrites } from './steps/plan.js';
import { type BatchDeps, signAndWrite } from './steps/sign-and-write.js';

export type { MintResult } from './steps/finish.js';
export type { MintedToken } from './steps/sign-and-write.js';
export { TOKEN_WARN_BYTES } from './steps/sign-and-write.js';

/** Everything a mint run talks to: the ports of its three steps. */
export interface MintDeps extends PlanDeps, BatchDeps, FinishDeps {}

/**
 * Runs one mint. Throws ConfigError on a bad config (nothing written). Principals that could not
 * get a new token are listed in `failed`; callers turn a non-empty list into a failed run.
 */
export async function mint(deps: MintDeps): Promise<MintResult> {
  return (await mintAndNote(deps, undefined)).result;
}

/**
 * {@link mint}, given the stored token keys when the run knows them (`known`, from the note its
 * lock came with) instead of listing them; it returns the note to leave with the lock.
 */
async function mintAndNote(
  deps: MintDeps,
  known: readonly string[] | undefined,
): Promise<{ result: MintResult; note: ReleaseNote }> {
  const { plan: planned, key } = await planWrites(deps);
  if (known)
    deps.logger.debug('stored tokens known from the last run of this process: not listed', {
      count: known.length,
    });
  // The stored tokens are listed and the stale ones removed side by side with the writes: no
  // token of the run is stale, and the listing grows with the tokens, so waiting for it would
  // hold up the first write. A failure of the writes is reported first.
  const stale = listStale(deps.store, planned.principals, known);
  const [batch, removal] = await Promise.allSettled([
    signAndWrite({ settings: planned.settings, principals: planned.principals }, key, deps),
    stale.then((keys) => removeStale(keys, deps)),
  ]);
  if (batch.status === 'rejected') throw batch.reason;
  if (removal.status === 'rejected') throw removal.reason;
  const staleKeys = await stale;
  const result = await finish({ ...planned, stale: staleKeys }, [batch.value], deps, removal.value);
  // What the store may hold now: every wanted key (a write that failed may still have landed)
  // and the stale keys not removed.
  const removed = new Set(removal.value);
  const storedTokens = [
    ...planned.principals.map((p) => p.key),
    ...staleKeys.filter((k) => !removed.has(k)),
  ];
  return { result, note: { storedTokens } };
}

/** How many times one run mints again because the config changed while it was minting. */
export const MAX_PASSES = 3;

/** What {@link mintExclusive} did. */
export type ExclusiveResult =
  | { readonly skipped: false; readonly result: MintResult; readonly passes: number }
  | { readonly skipped: true };

/**
 * Mints under the run lock, so overlapping runs (a schedule and a config upload at once, or an
 * asynchronous retry) never interleave their writes. Each pass stamps its tokens with the
 * lease's clock (AWS's time), so a wrong local clock cannot mint tokens that are not valid yet,
 * and every write checks the lease first (docs/aws.md, "Overlapping runs").
 *
 * A run that finds the lock held returns `skipped`, leaving the grants to the holder: after
 * releasing the lock, the holder compares the grants' current version with the one it minted
 * and mints again when they differ, up to {@link MAX_PASSES} passes. That covers a change that
 * lands while the holder is running. It does not cover a holder that dies (its lease must run
 * out) or a change after its last pass: then the change takes effect with the next run after
 * the lease — at the latest the next scheduled one.
 */
export async function mintExclusive(deps: MintDeps, lock: RunLock): Promise<ExclusiveResult> {
  // A bad grants file must leave the store exactly as it was, lock object included: check it
  // before taking the lock. The run reads it again under the lock, to mint the latest, unless
  // no other run has held the lock since this process gave it back (see below).
  // Likewise a store this run may not write at all (a bucket serving another token store).
  // Both only read, so they run side by side; a bad grants file is reported first.
  const [grants, claim] = await Promise.allSettled([
    loadGrants(deps.config, deps.grantsCache),
    deps.store.claim?.(),
  ]);
  if (grants.status === 'rejected') throw grants.reason;
  if (claim.status === 'rejected') throw claim.reason;
  let last: MintResult | undefined;
  for (let pass = 1; pass <= MAX_PASSES; pass++) {
    const lease = await lock.acquire();
    if (!lease) {
      deps.logger.info('another run holds the lock; it picks up config changes when it ends', {
        pass,
      });
      return last ? { skipped: false, result: last, passes: pass - 1 } : { skipped: true };
    }
    // Taken from this process's own release, untouched since, the lock has had no other holder
    // since the grants were checked: none enforced a newer version in between, and a change
    // that landed after the check is caught by the version check after the release, like one
    // that lands while the run mints. Any other lock, or a later pass, reads them again.
    const checked = pass === 1 && lease.sinceOwnRelease ? grants.value : undefined;
    let note: ReleaseNote;
    try {
      // deps.clock is set only by tests that need tokens stamped at a chosen time.
      // The note the lock came with names the stored tokens: only the minters write them, and
      // only under the lock, so no listing could find others (docs/aws.md, "Nothing lost,
      // nothing stale"). A run that fails leaves no note: the next one lists.
      ({ result: last, note } = await mintAndNote(
        { ...deps, grants: checked, clock: deps.clock ?? (() => lease.now()) },
        lease.note?.storedTokens,
      ));
    } catch (err) {
      // Free the lock for the next run, but report the run's own error, not a release failure.
      await lock.release().catch(() => undefined);
      throw err;
    }
    const current = await releaseAndCheck(lock, deps.config, last.configVersion, note);
    if (current === undefined) return { skipped: false, result: last, passes: pass };
    deps.logger.info('the config changed during the run; minting again', {
      minted: last.configVersion,
      current,
    });
  }
  return { skipped: false, result: last as MintResult, passes: MAX_PASSES };
}
