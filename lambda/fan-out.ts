/**
 * One mint run spread over a Step Functions workflow (docs/aws.md, "Fan-out"): the same three
 * steps as {@link mint} (lambda/steps/), each in its own Lambda invocation, handing plain data
 * on through the workflow's state and the run's folder in the token bucket (`state/runs/RUN/`).
 *
 * - {@link planRun}: under the run lock, the plan step as in a single run (grants, inventory,
 *   IAM check, stale keys, bucket policy, trust bundle), except that it signs nothing; then one
 *   shard file per account (split at the shard size), the plan summary and the manifest the
 *   workflow's Distributed Map reads.
 * - {@link mintShard}: one worker per shard certifies an ephemeral key of its own under the
 *   root (one KMS Sign) and runs the sign-and-write step on its shard.
 * - {@link finishRun}: the finish step over the workers' results, then the lock's release and
 *   the grants' version check; it tells the workflow to start the next pass when they changed.
 *
 * The guarantees are those of a single run (lambda/mint.ts): a bad grants file stops the run
 * before any write, lock included; a principal whose token cannot be written keeps its old one
 * and fails the run; stale tokens are removed only after every shard succeeded; the lock is
 * released whether the shards succeeded or not.
 */

import { mapLimit } from './core/pool.js';
import type {
  ConfigSource,
  RootedSigner,
  RunFiles,
  Signer,
  SignerRoot,
  TransferableLock,
} from './core/ports.js';
import { cutShards, resultFileName, shardFileName } from './core/shards.js';
import { oneLine } from './core/text.js';
import { StoreError } from './errors.js';
import { MAX_PASSES, type MintDeps } from './mint.js';
import {
  type BatchSummary,
  type FinishDeps,
  finish,
  type MintResult,
  releaseAndCheck,
} from './steps/finish.js';
import {
  loadGrants,
  type MintPlan,
  type PrincipalWork,
  plan,
  type TokenSettings,
} from './steps/plan.js';
import { type BatchDeps, signAndWrite } from './steps/sign-and-write.js';

/** Run files written or read at once. */
const FILE_CONCURRENCY = 16;

/** One run of the workflow: its ID (the execution's name) and its pass (1 unless re-run). */
export interface RunRef {
  readonly run: string;
  readonly pass: number;
}

/** One item of the manifest: what the Distributed Map hands a worker. */
export interface ShardItem {
  /** 1-based position in the manifest; names the shard and result files. */
  readonly index: number;
  readonly account: string;
  readonly principals: number;
}

/**
 * The run lock as the plan step holds it, handed to the workers and the finish step: they join
 * its lease (their writes stop at the same time as the plan step's would) and the finish step
 * releases it.
 */
export interface HeldLock {
  /** The holding (the lock object's ETag). */
  readonly tag: string;
  /** AWS's time (ms since the epoch) from which no write of the run may start. */
  readonly writesEndAt: number;
}

/** What the plan step hands on through the workflow's state: small, whatever the run's size. */
export type PlanOutput =
  | (RunRef & { readonly skipped: true })
  | (RunRef & {
      readonly skipped: false;
      /** Key of the manifest in the token bucket: the Map's ItemReader reads it. */
      readonly manifest: string;
      readonly shards: number;
      readonly lock: HeldLock;
    });

/** A shard file: everything a worker needs, as plain data. */
interface ShardFile {
  /** 2: each principal carries its token key and ARN rank ({@link PrincipalWork}). */
  readonly version: 2;
  readonly settings: TokenSettings;
  readonly root: SignerRoot;
  readonly principals: readonly PrincipalWork[];
}

/** What the plan step needs: a single run's ports, a signer that can hand its root on, files. */
export interface PlanRunDeps extends MintDeps {
  readonly signer: RootedSigner;
  readonly files: RunFiles;
}

/**
 * The plan step of a fanned-out run. Checks the grants before taking the lock (a bad file leaves
 * everything as it was); returns `skipped` when another run holds the lock. On any failure after
 * the lock was taken, it releases the lock and rethrows.
 */
export async function planRun(
  deps: PlanRunDeps,
  lock: TransferableLock,
  ref: RunRef & { readonly shardSize: number },
): Promise<PlanOutput> {
  const { files, logger } = deps;
  await loadGrants(deps.config, deps.grantsCache);
  // Likewise a store this run may not write at all (a bucket serving another token store).
  await deps.store.claim?.();
  const lease = await lock.acquire();
  if (!lease) {
    logger.info('another run holds the lock; it picks up config changes when it ends', {
      run: ref.run,
      pass: ref.pass,
    });
    return { run: ref.run, pass: ref.pass, skipped: true };
  }
  try {
    let root: SignerRoot | undefined;
    // The plan step publishes the trust material; the workers certify their own keys.
    const rootOnly: Signer = {
      prepare: async (window) => {
        const prepared = await deps.signer.prepareRoot(window);
        root = prepared.root;
        return {
          alg: 'ES256',
          keyHeader: { x5c: [] },
          sign: () => Promise.reject(new Error('the plan step of a fanned-out run signs no token')),
          trust: prepared.trust,
          description: prepared.description,
          ...(prepared.rootStatus ? { root: prepared.rootStatus } : {}),
        };
      },
    };
    // Stamped with the lease's clock (AWS's time), as a single run's tokens are.
    const { plan: planned } = await plan({
      ...deps,
      signer: rootOnly,
      clock: deps.clock ?? (() => lease.now()),
    });
    if (!root) throw new Error('the signer prepared no root');
    const shards = cutShards(planned.principals, ref.shardSize);
    const items: ShardItem[] = shards.map((s) => ({
      index: s.index,
      account: s.account,
      principals: s.principals.length,
    }));
    const shardRoot = root;
    await writeAll(shards, (s) =>
      files.write(ref.run, shardFileName(s.index), {
        version: 2,
        settings: planned.settings,
        root: shardRoot,
        principals: s.principals,
      } satisfies ShardFile),
    );
    const { principals, ...summary } = planned;
    await files.write(ref.run, 'plan.json', summary);
    const manifest = await files.write(ref.run, 'manifest.json', items);
    logger.info('run planned', {
      run: ref.run,
      pass: ref.pass,
      principals: principals.length,
      shards: items.length,
    });
    const tag = lock.heldTag;
    if (tag === undefined) throw new Error('the run lock has no holding to hand on');
    return {
      ...ref,
      skipped: false,
      manifest,
      shards: items.length,
      lock: { tag, writesEndAt: lease.writesEndAt() },
    };
  } catch (err) {
    // Free the lock for the next run, but report the run's own error, not a release failure.
    await lock.release().catch(() => undefined);
    throw err;
  }
}

/** Runs `write` over `items`, {@link FILE_CONCURRENCY} at a time; the first failure is thrown at the end. */
async function writeAll<T>(items: readonly T[], write: (item: T) => Promise<unknown>) {
  let failure: { error: unknown } | undefined;
  await mapLimit(items, FILE_CONCURRENCY, async (item) => {
    if (failure) return;
    try {
      await write(item);
    } catch (error) {
      failure ??= { error };
    }
  });
  if (failure) throw failure.error;
}

/** What a worker needs: the sign-and-write step's ports, a signer that certifies under a root. */
export interface ShardDeps extends BatchDeps {
  readonly signer: RootedSigner;
  readonly files: RunFiles;
}

/** What a worker reports to the workflow (its full result is in the run's folder). */
export interface ShardOutput {
  readonly index: number;
  readonly minted: number;
  readonly failed: number;
}

/**
 * One worker: joins the run's lease, reads its shard, certifies an ephemeral key under the run's
 * root (one KMS Sign), signs and writes the shard's tokens, and writes its result beside the
 * shard. Throws when the lock is no longer the run's, the shard cannot be read, the key cannot
 * be certified or signing fails (a write would outlive the lease among them), so the workflow
 * retries it; a retry rewrites the same keys with new, valid tokens. A principal whose write
 * fails is reported in the result, as in a single run.
 */
export async function mintShard(
  input: { readonly run: string; readonly lock: HeldLock; readonly item: ShardItem },
  deps: ShardDeps,
  lock: TransferableLock,
): Promise<ShardOutput> {
  const { run, item } = input;
  await lock.join(input.lock.tag, input.lock.writesEndAt);
  const name = shardFileName(item.index);
  const shard = shardFile(await deps.files.read(run, name), deps.files.locate(run, name));
  const now = new Date(shard.settings.issuedAt);
  const longest = shard.principals.reduce((m, p) => Math.max(m, p.ttlSeconds), 0);
  const key = await deps.signer.certify(shard.root, {
    now,
    notAfter: new Date(now.getTime() + longest * 1000),
  });
  const batch = await signAndWrite(
    { settings: shard.settings, principals: shard.principals },
    key,
    deps,
  );
  const result: BatchSummary = {
    minted: batch.tokens.length,
    failed: batch.failed,
    warnings: batch.warnings,
  };
  await deps.files.write(run, resultFileName(item.index), result);
  deps.logger.info('shard minted', {
    run,
    shard: item.index,
    account: item.account,
    minted: result.minted,
    failed: result.failed.length,
  });
  return { index: item.index, minted: result.minted, failed: result.failed.length };
}

function shardFile(body: unknown, where: string): ShardFile {
  const f = body as Partial<ShardFile> | undefined;
  if (f === undefined) throw new StoreError(`${where}: no such shard file`);
  if (f?.version !== 2 || !Array.isArray(f.principals) || !f.settings || !f.root)
    throw new StoreError(`${where}: not a shard file this version of regtoken reads`);
  return f as ShardFile;
}

/** What the finish step is given: the plan step's output, and the Map's error if it failed. */
export type FinishInput = Extract<PlanOutput, { skipped: false }> & {
  /** Set by the workflow's Catch when a shard failed after its retries. */
  readonly failure?: { readonly Error?: string; readonly Cause?: string };
};

/** What the finish step tells the workflow. */
export interface FinishOutput extends RunRef {
  readonly status: 'succeeded' | 'failed';
  /** Why the run failed: an error name for the workflow's Fail state. */
  readonly error?: string;
  /** The failure in one line. */
  readonly cause?: string;
  /** Start the next pass: the grants changed while this one ran. */
  readonly rerun: boolean;
  /** The next pass's input, when {@link rerun}. */
  readonly next?: { readonly source: 'regtoken.config-changed'; readonly pass: number };
  /** Counts of the run (absent when a shard failed); the lists are in the log. */
  readonly minted?: number;
  readonly failed?: number;
  readonly removed?: number;
  readonly unknown?: number;
}

/** What the finish step needs: the finish step's ports, the grants (their version) and the files. */
export interface FinishRunDeps extends FinishDeps {
  readonly config: ConfigSource;
  readonly files: RunFiles;
}

/** Failed principals named in a run's one-line cause; the rest are counted. */
const NAMED_FAILURES = 20;

/**
 * The finish step of a fanned-out run. With every shard's result: removes the stale tokens, sums
 * the results (metrics, log), releases the lock, compares the grants' version and removes the
 * run's files. After a shard failed (`input.failure`): releases the lock only, removes nothing
 * (the next run removes the stale tokens), and keeps the run's files for diagnosis (the bucket's
 * lifecycle rule expires them). Either way the lock is released before it returns or throws.
 */
export async function finishRun(
  input: FinishInput,
  deps: FinishRunDeps,
  lock: TransferableLock,
): Promise<{ output: FinishOutput; result?: MintResult }> {
  const { files, logger } = deps;
  const ref = { run: input.run, pass: input.pass };
  lock.adopt(input.lock.tag);
  let result: MintResult;
  let names: string[];
  try {
    const items = manifestItems(await files.read(ref.run, 'manifest.json'), files, ref.run);
    names = [
      'plan.json',
      'manifest.json',
      ...items.flatMap((i) => [shardFileName(i.index), resultFileName(i.index)]),
    ];
    if (input.failure) {
      await lock.release();
      const { Error: error = 'error', Cause: why = '' } = input.failure;
      const cause = `a shard failed after its retries: ${oneLine(`${error}: ${why}`, 500)}`;
      logger.error('run failed', { ...ref, error: cause });
      return { output: { ...ref, status: 'failed', error: 'ShardFailed', cause, rerun: false } };
    }
    // Its deletes are the run's writes: under the run's lease, if the lock is still the run's.
    await lock.join(input.lock.tag, input.lock.writesEndAt);
    const summary = (await files.read(ref.run, 'plan.json')) as
      | Omit<MintPlan, 'principals'>
      | undefined;
    if (!summary) throw new StoreError(`${files.locate(ref.run, 'plan.json')}: no such file`);
    const results: BatchSummary[] = [];
    await writeAll(items, async (i) => {
      const r = (await files.read(ref.run, resultFileName(i.index))) as BatchSummary | undefined;
      if (!r)
        throw new StoreError(`${files.locate(ref.run, resultFileName(i.index))}: no such file`);
      results[i.index - 1] = r;
    });
    result = await finish(summary, results, deps);
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
  const current = await releaseAndCheck(lock, deps.config, result.configVersion);
  await files.remove(ref.run, names);
  const rerun = current !== undefined && ref.pass < MAX_PASSES;
  if (current !== undefined)
    logger.info(
      rerun
        ? 'the config changed during the run; minting again'
        : 'the config changed during the last pass; the next run mints it',
      {
        minted: result.configVersion,
        current,
      },
    );
  const outcome = {
    ...ref,
    rerun,
    ...(rerun ? { next: { source: 'regtoken.config-changed' as const, pass: ref.pass + 1 } } : {}),
    minted: result.minted,
    failed: result.failed.length,
    removed: result.removed.length,
    unknown: result.unknown.length,
  };
  if (result.failed.length === 0) return { output: { ...outcome, status: 'succeeded' }, result };
  const named = result.failed.slice(0, NAMED_FAILURES).map((f) => `${f.principal}: ${f.reason}`);
  const more = result.failed.length - named.length;
  const cause = `${result.failed.length} principal(s) got no new token: ${named.join('; ')}${more ? `; and ${more} more` : ''}`;
  return {
    output: { ...outcome, status: 'failed', error: 'RunIncompleteError', cause },
    result,
  };
}

function manifestItems(body: unknown, files: RunFiles, run: string): ShardItem[] {
  if (!Array.isArray(body))
    throw new StoreError(`${files.locate(run, 'manifest.json')}: no manifest of this run`);
  return body as ShardItem[];
}
