/**
 * Repository names and the patterns grants may use for them.
 *
 * The registry compares repository names in a token exactly, so a pattern is expanded to the
 * concrete names it matches in the repository inventory at mint time. Names follow the
 * registry's reference grammar: lower-case path components of `[a-z0-9]` separated by `.`, `_`,
 * `__` or runs of `-`, joined by `/`, at most 255 characters in all.
 *
 * Patterns (gitignore-like):
 * - `*` inside a component matches any characters of that one component (`base/*`, `app-*`);
 * - `**` as a whole component matches across components: `team-a/**` matches everything below
 *   `team-a/` (not `team-a` itself), `**\/cache` matches `cache` at any depth, `a/**\/b` matches
 *   `a/b`, `a/x/b`, `a/x/y/b`; `**` alone matches every repository; `**\/**` is refused.
 *
 * Matching uses no regular expression (see {@link matchComponent}): its time is bounded by the
 * name's length times the pattern's, so no pattern can stall a run.
 */

import type { ParseResult } from './principal.js';
import { quote } from './text.js';

export const MAX_REPOSITORY_NAME_LENGTH = 255;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const COMPONENT_RE = new RegExp(`^${COMPONENT}$`);
/** The repository grammar as a regular expression, shared with the JSON Schema (kept in sync by a test). */
export const REPOSITORY_PATTERN_SCHEMA = '^(\\*\\*|[a-z0-9._*-]+)(/(\\*\\*|[a-z0-9._*-]+))*$';

/** True when `name` is a valid repository name. */
export function isRepositoryName(name: string): boolean {
  return checkRepositoryName(name) === undefined;
}

/** Returns why `name` is not a valid repository name, or undefined when it is one. */
export function checkRepositoryName(name: string): string | undefined {
  if (name === '') return 'repository name is empty';
  if (name.length > MAX_REPOSITORY_NAME_LENGTH)
    return `repository name is ${name.length} characters (at most ${MAX_REPOSITORY_NAME_LENGTH})`;
  for (const component of name.split('/')) {
    if (component === '') return `repository name ${quote(name)} has an empty path component`;
    if (!COMPONENT_RE.test(component))
      return /[A-Z]/.test(component)
        ? `repository name ${quote(name)} must be lower case`
        : `repository name ${quote(name)}: component ${quote(component)} must be lower-case letters and digits, separated by ".", "_", "__" or "-"`;
  }
  return undefined;
}

/** A compiled repository pattern. `exact` patterns have no wildcard and name one repository. */
export interface RepositoryPattern {
  readonly source: string;
  readonly exact: boolean;
  matches(name: string): boolean;
}

/** Parses an exact name or a pattern; on failure `reason` says what is wrong. */
export function parseRepositoryPattern(source: string): ParseResult<RepositoryPattern> {
  if (!source.includes('*')) {
    const reason = checkRepositoryName(source);
    if (reason) return { ok: false, reason };
    return { ok: true, value: { source, exact: true, matches: (name) => name === source } };
  }
  if (source.length > MAX_REPOSITORY_NAME_LENGTH)
    return { ok: false, reason: `pattern is longer than ${MAX_REPOSITORY_NAME_LENGTH} characters` };
  const items: PatternItem[] = [];
  for (const component of source.split('/')) {
    if (component === '**') {
      if (items.at(-1) === GLOBSTAR)
        return {
          ok: false,
          reason: `pattern ${quote(source)}: "**/**" means the same as "**": write it once`,
        };
      items.push(GLOBSTAR);
      continue;
    }
    if (component.includes('**'))
      return {
        ok: false,
        reason: `pattern ${quote(source)}: "**" must be a whole path component (like team-a/**)`,
      };
    if (component === '')
      return { ok: false, reason: `pattern ${quote(source)} has an empty path component` };
    // A component with `*` must still be a valid component once the wildcards match something.
    if (!COMPONENT_RE.test(component.replaceAll('*', 'a')) && component !== '*')
      return {
        ok: false,
        reason: /[A-Z]/.test(component)
          ? `pattern ${quote(source)} must be lower case`
          : `pattern ${quote(source)}: component ${quote(component)} may use only lower-case letters, digits, ".", "_", "-" and "*"`,
      };
    items.push(component.split('*'));
  }
  const runs = splitRuns(items);
  return {
    ok: true,
    value: { source, exact: false, matches: (name) => matchRuns(runs, name.split('/')) },
  };
}

/**
 * A pattern component: `**` (any number of components), or the literal pieces of a component
 * between its `*` wildcards (`app-*-x` → ["app-", "-x"]; no wildcard → one piece).
 */
type PatternItem = typeof GLOBSTAR | readonly string[];
const GLOBSTAR = Symbol('**');

/**
 * A pattern as runs of component globs separated by `**`. `first` and `last` are anchored at
 * the name's start and end (each empty when the pattern starts or ends with `**`); `middle`
 * runs float in between.
 */
interface Runs {
  readonly first: readonly (readonly string[])[];
  readonly middle: readonly (readonly (readonly string[])[])[];
  readonly last: readonly (readonly string[])[];
  /** False for a pattern without `**`: then `first` must match the whole name. */
  readonly globstar: boolean;
  /** True when the pattern ends with `**`, which must match at least one component. */
  readonly trailing: boolean;
}

function splitRuns(items: readonly PatternItem[]): Runs {
  const runs: (readonly string[])[][] = [[]];
  for (const item of items)
    if (item === GLOBSTAR) runs.push([]);
    else runs[runs.length - 1]?.push(item);
  const first = runs[0] ?? [];
  if (runs.length === 1) return { first, middle: [], last: [], globstar: false, trailing: false };
  return {
    first,
    middle: runs.slice(1, -1),
    last: runs[runs.length - 1] ?? [],
    globstar: true,
    trailing: items[items.length - 1] === GLOBSTAR,
  };
}

/**
 * Matches one component against its pieces: the first is a prefix, the last a suffix, and each
 * piece between is found at its leftmost place after the previous one. Leftmost is always the
 * best choice for `*` wildcards, so nothing is ever retried: time grows with the component's
 * length times the number of pieces, never exponentially (a regular expression backtracks
 * through every split of the name between the wildcards).
 */
function matchComponent(pieces: readonly string[], text: string): boolean {
  const head = pieces[0] ?? '';
  if (pieces.length === 1) return text === head;
  const tail = pieces[pieces.length - 1] ?? '';
  if (text.length < head.length + tail.length || !text.startsWith(head) || !text.endsWith(tail))
    return false;
  const end = text.length - tail.length;
  let at = head.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] ?? '';
    const found = text.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

/** True when `run` matches the components of `parts` starting at `start`. */
function runAt(
  run: readonly (readonly string[])[],
  parts: readonly string[],
  start: number,
): boolean {
  return run.every((pieces, i) => matchComponent(pieces, parts[start + i] ?? ''));
}

/**
 * Matches a name's components against the runs, the same way one level up: the first and last
 * runs at their anchors, each middle run at its leftmost place between them. `**` matches any
 * number of components, at least one when it ends the pattern (`team-a/**` is below `team-a`).
 */
function matchRuns(runs: Runs, parts: readonly string[]): boolean {
  const { first, middle, last } = runs;
  if (!runs.globstar) return parts.length === first.length && runAt(first, parts, 0);
  const lastStart = parts.length - last.length;
  if (lastStart < first.length || !runAt(first, parts, 0)) return false;
  let at = first.length;
  for (const run of middle) {
    let found = -1;
    for (let j = at; j + run.length <= lastStart && found < 0; j++)
      if (runAt(run, parts, j)) found = j;
    if (found < 0) return false;
    at = found + run.length;
  }
  if (runs.trailing) return parts.length - at >= 1;
  return lastStart >= at && runAt(last, parts, lastStart);
}

/**
 * Names a pattern grants, given the inventory: an exact name is granted even before the
 * repository exists (so a first push works); a wildcard pattern yields the inventory's matches.
 */
export function expandPattern(pattern: RepositoryPattern, inventory: Iterable<string>): string[] {
  if (pattern.exact) return [pattern.source];
  const out: string[] = [];
  for (const name of inventory) if (pattern.matches(name)) out.push(name);
  return out;
}
