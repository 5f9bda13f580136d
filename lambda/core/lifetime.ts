/**
 * Token lifetimes against the minting schedule. Tokens are re-minted every schedule period; a
 * token must outlive one failed scheduled run, so its lifetime must be at least
 * 2 × period + margin (the margin covers a run's own duration, clock skew and the client's
 * refresh). The stack checks the lifetimes it can see at synth; the function, `regtoken
 * validate` and `regtoken plan` check the grants actually deployed, when told the schedule.
 */

import { formatDuration, parseDuration } from './duration.js';
import type { GrantsConfig, Location } from './grants.js';
import { quote } from './text.js';

/** The smallest margin on top of two schedule periods: 5 minutes. */
export const LIFETIME_MARGIN_SECONDS = 5 * 60;

/** How often tokens are re-minted, and the margin on top of two periods. */
export interface Schedule {
  readonly periodSeconds: number;
  readonly marginSeconds: number;
}

/**
 * The schedule from its written form (`1h`; margin `5m` when not given), or undefined without a
 * period. A period must be whole minutes, as EventBridge Scheduler's rate is; `problem` makes
 * the error for a bad value, so each caller names its own flag or variable.
 */
export function readSchedule(
  period: string | undefined,
  margin: string | undefined,
  problem: (which: 'period' | 'margin', message: string) => Error,
): Schedule | undefined {
  if (period === undefined) {
    if (margin !== undefined) throw problem('margin', 'is only used with a schedule period');
    return undefined;
  }
  const periodSeconds = parseDuration(period);
  if (!periodSeconds || periodSeconds % 60 !== 0)
    throw problem('period', `${quote(period)} is not a duration of whole minutes like 1h or 30m`);
  if (margin === undefined) return { periodSeconds, marginSeconds: LIFETIME_MARGIN_SECONDS };
  const marginSeconds = parseDuration(margin);
  if (!marginSeconds) throw problem('margin', `${quote(margin)} is not a duration like 5m`);
  return { periodSeconds, marginSeconds };
}

/** The shortest lifetime that outlives one failed run: 2 × period + margin. */
export function minimumLifetime(schedule: Schedule): number {
  return 2 * schedule.periodSeconds + schedule.marginSeconds;
}

/** Principals whose tokens live shorter than {@link minimumLifetime}, by where that is set. */
export interface ShortLifetime {
  /** The `ttl` (or `tokenTtl`) that sets it; undefined for the default `tokenTtl`. */
  readonly at: Location | undefined;
  /** `ttl` of a grant, or the file's `tokenTtl`. */
  readonly setting: 'ttl' | 'tokenTtl';
  readonly seconds: number;
  readonly neededSeconds: number;
  /** Principal ARNs, in file order. */
  readonly principals: readonly string[];
}

/**
 * Every lifetime in `config` shorter than {@link minimumLifetime}, with the principals it
 * applies to. A principal's lifetime is the `ttl` of the first grant naming it that has one,
 * else the file's `tokenTtl` (as minting reads it).
 */
export function shortLifetimes(config: GrantsConfig, schedule: Schedule): ShortLifetime[] {
  const needed = minimumLifetime(schedule);
  type Source = Omit<ShortLifetime, 'principals' | 'neededSeconds'>;
  // Every principal in file order, with the first grant naming it that sets a ttl.
  const decided = new Map<string, Source | undefined>();
  for (const grant of config.grants)
    for (const { arn } of grant.principals)
      if (decided.get(arn) === undefined)
        decided.set(
          arn,
          grant.ttlSeconds === undefined
            ? undefined
            : { at: grant.ttlAt ?? grant.at, setting: 'ttl', seconds: grant.ttlSeconds },
        );
  const fallback: Source = {
    at: config.tokenTtlAt,
    setting: 'tokenTtl',
    seconds: config.tokenTtlSeconds,
  };
  const short = new Map<Source, string[]>();
  const bySetting = new Map<string, Source>();
  for (const [arn, decision] of decided) {
    const source = decision ?? fallback;
    if (source.seconds >= needed) continue;
    // Grants are distinct objects, so their sources are keyed by position.
    const key = source.at ? `${source.at.line}:${source.at.col}` : 'default';
    const known = bySetting.get(key) ?? source;
    bySetting.set(key, known);
    short.set(known, [...(short.get(known) ?? []), arn]);
  }
  return [...short].map(([source, principals]) => ({
    ...source,
    neededSeconds: needed,
    principals,
  }));
}

/**
 * One line about a short lifetime: `FILE:LINE:COL: ttl 1h is shorter than …`, naming the fix
 * and (up to three of) the principals it applies to.
 */
export function describeShortLifetime(
  file: string,
  short: ShortLifetime,
  schedule: Schedule,
): string {
  const where = short.at ? `${file}:${short.at.line}:${short.at.col}` : file;
  const what =
    short.at === undefined
      ? `the default tokenTtl ${formatDuration(short.seconds)}`
      : `${short.setting} ${formatDuration(short.seconds)}`;
  const shown = short.principals.slice(0, 3).join(', ');
  const more = short.principals.length > 3 ? ` and ${short.principals.length - 3} more` : '';
  return (
    `${where}: ${what} is shorter than 2 × schedule (${formatDuration(schedule.periodSeconds)}) + ` +
    `margin (${formatDuration(schedule.marginSeconds)}) = ${formatDuration(short.neededSeconds)}: ` +
    `when one scheduled run fails, these tokens expire before they are replaced (${shown}${more}). ` +
    `Raise it to at least ${formatDuration(short.neededSeconds)}.`
  );
}
