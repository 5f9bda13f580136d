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
 *   `a/b`, `a/x/b`, `a/x/y/b`; `**` alone matches every repository.
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
  const parts: string[] = [];
  const components = source.split('/');
  for (const [i, component] of components.entries()) {
    const last = i === components.length - 1;
    if (component === '**') {
      if (components.length === 1) parts.push('.+');
      else if (i === 0) parts.push('(?:.+/)?');
      else if (last) parts.push('/.+');
      else parts.push('/(?:.+/)?');
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
    const prev = components[i - 1];
    const sep = i === 0 || prev === '**' ? '' : '/';
    parts.push(sep + component.split('*').map(escapeRegExp).join('[^/]*'));
  }
  const re = new RegExp(`^${parts.join('')}$`);
  return { ok: true, value: { source, exact: false, matches: (name) => re.test(name) } };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
