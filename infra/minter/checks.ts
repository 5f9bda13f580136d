/**
 * What `RegistryTokenMinter` checks at synth, before it builds anything: key names and
 * prefixes, the schedule, and token lifetimes against the schedule.
 */

import { readFileSync } from 'node:fs';
import { Duration } from 'aws-cdk-lib';
import { parseGrantsSync } from '../../lambda/core/config-positions.js';
import { formatDuration, MAX_TTL_SECONDS } from '../../lambda/core/duration.js';
import { resolveAccess } from '../../lambda/core/grants.js';
import { LIFETIME_MARGIN_SECONDS, minimumLifetime } from '../../lambda/core/lifetime.js';
import { ConfigError } from '../../lambda/errors.js';

/** Slack on top of two schedule periods in the lifetime check: clock skew, client refresh. */
export const LIFETIME_MARGIN = Duration.seconds(LIFETIME_MARGIN_SECONDS);

/**
 * The margin of the lifetime check for a function with this timeout: {@link LIFETIME_MARGIN},
 * or the timeout when longer (a run may take that long before it writes).
 */
export function lifetimeMargin(timeout: Duration): Duration {
  return Duration.seconds(Math.max(LIFETIME_MARGIN.toSeconds(), timeout.toSeconds()));
}

/**
 * Checks that tokens outlive one failed scheduled run: the shortest lifetime must be at least
 * 2 × schedule + margin, the margin being the larger of {@link LIFETIME_MARGIN} and the
 * function's timeout (a run may take that long before it writes). Returns the problem in words,
 * or undefined when the lifetime is long enough.
 */
export function lifetimeProblem(options: {
  readonly minTokenTtl: Duration;
  readonly schedule: Duration;
  readonly timeout: Duration;
  /** Where the lifetime comes from, for the message (e.g. "grants.yaml, arn:…"). */
  readonly source: string;
}): string | undefined {
  const ttl = options.minTokenTtl.toSeconds();
  const period = options.schedule.toSeconds();
  const margin = lifetimeMargin(options.timeout).toSeconds();
  const needed = minimumLifetime({ periodSeconds: period, marginSeconds: margin });
  if (ttl >= needed) return undefined;
  return (
    `token lifetime ${formatDuration(ttl)} (${options.source}) is shorter than 2 × schedule ` +
    `(${formatDuration(period)}) + margin (${formatDuration(margin)}) = ${formatDuration(needed)}: ` +
    'when one scheduled run fails, tokens would expire before their replacements are written. ' +
    `Raise the ttl in the grants to at least ${formatDuration(needed)} or shorten the schedule.`
  );
}

/** The shortest token lifetime in a grants file, and the principal that has it. */
export function shortestLifetime(
  text: string,
  file: string,
): { seconds: number; principal: string } | undefined {
  let config: ReturnType<typeof parseGrantsSync>;
  try {
    config = parseGrantsSync(text, file);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new Error(`RegistryTokenMinter: grantsFile ${file} is invalid:\n${err.message}`);
    throw err;
  }
  let shortest: { seconds: number; principal: string } | undefined;
  for (const p of resolveAccess(config, [], { literalPatterns: true }))
    if (!shortest || p.ttlSeconds < shortest.seconds)
      shortest = { seconds: p.ttlSeconds, principal: p.principal.arn };
  return shortest;
}

function readGrantsFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `RegistryTokenMinter: grantsFile ${file} cannot be read: ${(err as Error).message}`,
    );
  }
}

/**
 * Checks the shortest token lifetime (from minTokenTtl and/or grantsFile) against the
 * schedule; returns the grants file's text when there is one.
 */
export function checkLifetimes(
  props: { readonly minTokenTtl?: Duration; readonly grantsFile?: string },
  period: Duration,
  timeout: Duration,
): string | undefined {
  const grantsText = props.grantsFile ? readGrantsFile(props.grantsFile) : undefined;
  const fromFile =
    props.grantsFile && grantsText !== undefined
      ? shortestLifetime(grantsText, props.grantsFile)
      : undefined;
  if (props.minTokenTtl === undefined && props.grantsFile === undefined)
    throw new Error(
      'RegistryTokenMinter: set minTokenTtl (the shortest token lifetime your grants use) or grantsFile (grants deployed from this repository), so synth can check lifetimes against the schedule',
    );
  const lifetimes: { ttl: Duration; source: string }[] = [];
  if (props.minTokenTtl !== undefined)
    lifetimes.push({ ttl: props.minTokenTtl, source: 'minTokenTtl' });
  if (fromFile)
    lifetimes.push({
      ttl: Duration.seconds(fromFile.seconds),
      source: `${props.grantsFile}: ${fromFile.principal}`,
    });
  for (const { ttl, source } of lifetimes) {
    const problem = lifetimeProblem({ minTokenTtl: ttl, schedule: period, timeout, source });
    if (problem) throw new Error(`RegistryTokenMinter: ${problem}`);
  }
  return grantsText;
}

/** Checks the schedule period and the function's timeout. */
export function checkSchedule(period: Duration, timeout: Duration): void {
  const seconds = period.toSeconds();
  if (seconds < 60 || seconds % 60 !== 0)
    throw new Error(
      `RegistryTokenMinter: schedule must be whole minutes, at least 1 minute (got ${formatDuration(seconds)})`,
    );
  if (2 * seconds > MAX_TTL_SECONDS)
    throw new Error(
      `RegistryTokenMinter: schedule ${formatDuration(seconds)} is too long: tokens live at most ${formatDuration(MAX_TTL_SECONDS)}, which must cover two periods`,
    );
  if (timeout.toSeconds() > 900)
    throw new Error('RegistryTokenMinter: timeout must be at most 15 minutes (Lambda limit)');
}

const KEY_PREFIX_RE = /^([A-Za-z0-9!._'()=+@,;&-]+(\/[A-Za-z0-9!._'()=+@,;&-]+)*)?$/;

/** Returns `value` when it is a usable key prefix ('' or segments joined by "/"), else throws. */
export function checkPrefix(name: string, value: string): string {
  // Same character set the runtime accepts in policies: no "*", "?" or "${" that would widen a
  // Resource or a condition.
  if (!KEY_PREFIX_RE.test(value))
    throw new Error(
      `RegistryTokenMinter: ${name} "${value}" must be '' or segments joined by "/", without leading or trailing slash or wildcards`,
    );
  return value;
}

/** Returns `key` when it is a usable key of the grants object, else throws. */
export function checkConfigKey(key: string): string {
  if (!/^[A-Za-z0-9!._'()=+@,;&/-]+$/.test(key) || key.startsWith('/'))
    throw new Error(
      `RegistryTokenMinter: configKey "${key}" must be an S3 key without wildcards or leading slash`,
    );
  return key;
}

/** `prefix/` or '' for the bucket root. */
export function under(prefix: string): string {
  return prefix ? `${prefix}/` : '';
}
