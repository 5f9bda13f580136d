/**
 * The validated grants model and how it turns into each principal's access.
 *
 * Semantics (docs/config.md): a principal's access is the union of every grant naming it;
 * `push` implies `pull` because the registry requires both for any upload; `*` means every
 * action; `catalog: true` grants `registry:catalog:*`. Wildcard patterns are expanded against a
 * repository inventory; exact names are always granted.
 */

import type { Principal } from './principal.js';
import type { RepositoryPattern } from './repository.js';

/** Where something was written in the grants file. */
export interface Location {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export const ACTIONS = ['pull', 'push', 'delete', '*'] as const;
export type Action = (typeof ACTIONS)[number];

export type AccessEntry =
  | {
      readonly kind: 'repository';
      readonly pattern: RepositoryPattern;
      readonly actions: readonly Action[];
    }
  | { readonly kind: 'catalog' };

export interface Grant {
  /** Position of the grant in the file, counted from 1 (as a reviewer would say "grant #3"). */
  readonly number: number;
  readonly principals: readonly Principal[];
  readonly ttlSeconds: number | undefined;
  /** Where the grant's `ttl` is written, when it has one. */
  readonly ttlAt?: Location;
  readonly access: readonly AccessEntry[];
  readonly at: Location;
}

export interface RegistrySettings {
  readonly host: string;
  readonly service: string;
  readonly issuer: string;
  readonly maxTokenBytes: number;
}

/** A grants file that passed validation. */
export interface GrantsConfig {
  readonly file: string;
  readonly registry: RegistrySettings;
  readonly tokenTtlSeconds: number;
  /** Where `tokenTtl` is written; undefined when the file uses the default. */
  readonly tokenTtlAt?: Location;
  readonly grants: readonly Grant[];
}

/** One entry of a token's `access` claim, exactly as the registry reads it. */
export interface ResourceAccess {
  readonly type: 'repository' | 'registry';
  readonly name: string;
  readonly actions: readonly string[];
}

/** A principal's resolved access: what goes into its token, and which grant contributed what. */
export interface PrincipalAccess {
  readonly principal: Principal;
  readonly ttlSeconds: number;
  readonly access: readonly ResourceAccess[];
  /** Number of access entries each grant contributed, to explain an oversized token. */
  readonly contributions: ReadonlyMap<Grant, number>;
  /** Wildcard patterns that matched no repository in the inventory. */
  readonly unmatched: readonly string[];
  /** Repositories granted `push` without `pull`, where `pull` was added because push needs it. */
  readonly impliedPull: readonly string[];
}

const ACTION_ORDER: readonly string[] = ['pull', 'push', 'delete'];

/**
 * Normalises a set of actions the way the registry needs them: `*` absorbs everything, `push`
 * brings `pull`, and the order is stable (pull, push, delete) so tokens and plans are reproducible.
 */
export function effectiveActions(actions: Iterable<string>): string[] {
  const set = new Set(actions);
  if (set.has('*')) return ['*'];
  if (set.has('push')) set.add('pull');
  return ACTION_ORDER.filter((a) => set.has(a));
}

/** Actions as bits, so a principal's actions on a repository are merged with one `|`. */
const ACTION_BIT: Readonly<Record<Action, number>> = { pull: 1, push: 2, delete: 4, '*': 8 };
const PULL = ACTION_BIT.pull;
const PUSH = ACTION_BIT.push;
const STAR = ACTION_BIT['*'];

function actionMask(actions: readonly Action[]): number {
  let mask = 0;
  for (const a of actions) mask |= ACTION_BIT[a];
  return mask;
}

/**
 * {@link effectiveActions} of every action mask, computed once. The arrays are shared by every
 * entry with those actions (read-only; not frozen, which makes JSON.stringify slower).
 */
const EFFECTIVE_ACTIONS: readonly (readonly string[])[] = Array.from({ length: 16 }, (_, mask) =>
  effectiveActions((Object.keys(ACTION_BIT) as Action[]).filter((a) => mask & ACTION_BIT[a])),
);

/** Every distinct principal in the config, in order of first appearance. */
export function principalsOf(config: GrantsConfig): Principal[] {
  const seen = new Map<string, Principal>();
  for (const grant of config.grants)
    for (const p of grant.principals) if (!seen.has(p.arn)) seen.set(p.arn, p);
  return [...seen.values()];
}

/** True when some grant uses a wildcard pattern, i.e. minting needs a repository inventory. */
export function needsInventory(config: GrantsConfig): boolean {
  return config.grants.some((g) =>
    g.access.some((a) => a.kind === 'repository' && !a.pattern.exact),
  );
}

/**
 * Expands wildcard patterns against one inventory. The inventory is sorted once, and a pattern
 * is tested only against the names that start with its literal prefix (the text before its
 * first `*`: every name a pattern matches starts with it), found by binary search; so a grants
 * file with a `team-N/*` pattern per team costs about the number of matches, not
 * patterns × inventory. Results are cached by pattern text: `base/**` in a thousand grants is
 * expanded once.
 */
class PatternExpander {
  #sorted: string[] | undefined;
  readonly #cache = new Map<string, readonly string[]>();

  constructor(private readonly inventory: readonly string[]) {}

  expand(pattern: RepositoryPattern): readonly string[] {
    let names = this.#cache.get(pattern.source);
    if (!names) {
      names = pattern.exact ? [pattern.source] : this.matches(pattern);
      this.#cache.set(pattern.source, names);
    }
    return names;
  }

  private matches(pattern: RepositoryPattern): string[] {
    this.#sorted ??= [...this.inventory].sort();
    const sorted = this.#sorted;
    const prefix = pattern.source.slice(0, pattern.source.indexOf('*'));
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((sorted[mid] as string) < prefix) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < sorted.length; i++) {
      const name = sorted[i] as string;
      if (!name.startsWith(prefix)) break;
      // Skip duplicates in the inventory, as a set of names would.
      if (pattern.matches(name) && out[out.length - 1] !== name) out.push(name);
    }
    return out;
  }
}

/**
 * Resolves every principal's access against a repository inventory. Pure: the same config and
 * inventory always give the same result, in the same order.
 *
 * A principal's access depends only on which grants name it, and most principals share that
 * combination with others (a team's services are all in the team's grant). So each distinct
 * combination is resolved once, and its principals share the result (`access`,
 * `contributions`, `unmatched`, `impliedPull`: read-only, never mutated). Entries for the same
 * repository and actions are shared objects too.
 */
export function resolveAccess(
  config: GrantsConfig,
  inventory: readonly string[] = [],
  options: { literalPatterns?: boolean } = {},
): PrincipalAccess[] {
  // For plans without an inventory, a pattern stands for itself.
  const expander = options.literalPatterns ? undefined : new PatternExpander(inventory);
  const expand = (pattern: RepositoryPattern): readonly string[] =>
    expander ? expander.expand(pattern) : [pattern.source];
  const entries = new Map<string, ResourceAccess>();
  const entry = (name: string, mask: number): ResourceAccess => {
    const key = `${mask}:${name}`;
    let e = entries.get(key);
    if (!e) {
      e = { type: 'repository', name, actions: EFFECTIVE_ACTIONS[mask] as readonly string[] };
      entries.set(key, e);
    }
    return e;
  };

  // What each grant gives, computed once.
  interface Given {
    readonly repos: readonly { names: readonly string[]; mask: number; source: string }[];
    readonly catalog: boolean;
    /** Access entries the grant contributes (for explaining an oversized token). */
    readonly count: number;
  }
  const given = new Map<Grant, Given>();
  const givenBy = (grant: Grant): Given => {
    let g = given.get(grant);
    if (!g) {
      const repos = [];
      let catalog = false;
      let count = 0;
      for (const e of grant.access) {
        if (e.kind === 'catalog') {
          catalog = true;
          count += 1;
          continue;
        }
        const names = expand(e.pattern);
        repos.push({ names, mask: actionMask(e.actions), source: e.pattern.source });
        count += names.length;
      }
      g = { repos, catalog, count };
      given.set(grant, g);
    }
    return g;
  };

  type Shared = Omit<PrincipalAccess, 'principal'>;
  const resolve = (grants: readonly Grant[]): Shared => {
    let ttl: number | undefined;
    const repos = new Map<string, number>();
    let catalog = false;
    const contributions = new Map<Grant, number>();
    const unmatched = new Set<string>();
    for (const grant of grants) {
      const g = givenBy(grant);
      ttl ??= grant.ttlSeconds;
      if (g.catalog) catalog = true;
      for (const { names, mask, source } of g.repos) {
        if (names.length === 0) unmatched.add(source);
        for (const name of names) repos.set(name, (repos.get(name) ?? 0) | mask);
      }
      contributions.set(grant, (contributions.get(grant) ?? 0) + g.count);
    }
    const names = [...repos.keys()].sort();
    const access: ResourceAccess[] = names.map((name) => entry(name, repos.get(name) ?? 0));
    if (catalog) access.push({ type: 'registry', name: 'catalog', actions: ['*'] });
    return {
      ttlSeconds: ttl ?? config.tokenTtlSeconds,
      access,
      contributions,
      unmatched: [...unmatched],
      impliedPull: names.filter((name) => {
        const mask = repos.get(name) ?? 0;
        return (mask & PUSH) !== 0 && (mask & (PULL | STAR)) === 0;
      }),
    };
  };

  // Which grants name each principal, in file order; principals in order of first appearance.
  const memberships = new Map<string, { principal: Principal; grants: Grant[] }>();
  const grantIds = new Map<Grant, number>();
  for (const grant of config.grants) {
    grantIds.set(grant, grantIds.size);
    for (const principal of grant.principals) {
      let m = memberships.get(principal.arn);
      if (!m) {
        m = { principal, grants: [] };
        memberships.set(principal.arn, m);
      }
      m.grants.push(grant);
    }
  }
  const byCombination = new Map<string, Shared>();
  return [...memberships.values()].map(({ principal, grants }) => {
    const key = grants.map((g) => grantIds.get(g)).join(',');
    let shared = byCombination.get(key);
    if (!shared) {
      shared = resolve(grants);
      byCombination.set(key, shared);
    }
    return { principal, ...shared };
  });
}
