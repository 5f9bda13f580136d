/**
 * How a fanned-out run cuts its principals into shards (docs/performance.md, "Past one
 * function"): one shard per account, split further at a size limit, so every worker writes
 * under one `tokens/ACCOUNT/` prefix and holds a bounded number of principals.
 */

import { compareCodeUnits } from './text.js';

/** Principals per shard unless the deployment says otherwise. */
export const DEFAULT_SHARD_SIZE = 5_000;

/** The largest shard size accepted: a shard file of ~1 KB per principal stays under ~100 MB. */
export const MAX_SHARD_SIZE = 100_000;

/** One shard: an account and some of its principals, in the plan's order. */
export interface Shard<T> {
  /** 1-based, in the order of the manifest. */
  readonly index: number;
  readonly account: string;
  readonly principals: readonly T[];
}

/**
 * Cuts `principals` into shards of at most `size`, one account per shard. Accounts come in
 * code-unit order (the same on every machine), principals keep their order within an account.
 * No principal is left out or repeated; an empty list gives no shard.
 */
export function cutShards<T extends { readonly principal: { readonly account: string } }>(
  principals: readonly T[],
  size: number,
): Shard<T>[] {
  if (!Number.isInteger(size) || size < 1 || size > MAX_SHARD_SIZE)
    throw new RangeError(`shard size must be a whole number from 1 to ${MAX_SHARD_SIZE}`);
  const byAccount = new Map<string, T[]>();
  for (const p of principals) {
    const list = byAccount.get(p.principal.account);
    if (list) list.push(p);
    else byAccount.set(p.principal.account, [p]);
  }
  const accounts = [...byAccount.keys()].sort(compareCodeUnits);
  const shards: Shard<T>[] = [];
  for (const account of accounts) {
    const list = byAccount.get(account) ?? [];
    for (let at = 0; at < list.length; at += size)
      shards.push({ index: shards.length + 1, account, principals: list.slice(at, at + size) });
  }
  return shards;
}

/** The file name of shard `index` in a run's folder: `shard-0001.json`. */
export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(4, '0')}.json`;
}

/** The file name of shard `index`'s result in a run's folder: `result-0001.json`. */
export function resultFileName(index: number): string {
  return `result-${String(index).padStart(4, '0')}.json`;
}

const RUN_ID_RE = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * Whether `run` may name a run's folder (`state/runs/RUN/`): letters, digits, `-` and `_`, at
 * most 80 characters (a Step Functions execution name that S3 keys and IAM ARNs take as is).
 */
export function isRunId(run: string): boolean {
  return RUN_ID_RE.test(run);
}
