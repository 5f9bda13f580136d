/**
 * The validated grants model and how it turns into each principal's access.
 *
 * Semantics (docs/config.md): a principal's access is the union of every grant naming it;
 * `push` implies `pull` because the registry requires both for any upload; `*` means every
 * action; `catalog: true` grants `registry:catalog:*`. Wildcard patterns are expanded against a
 * repository inventory; exact names are always granted.
 */

import type { Principal } from './principal.js';
import { expandPattern, type RepositoryPattern } from './repository.js';

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
      readonly at: Location;
    }
  | { readonly kind: 'catalog'; readonly at: Location };

export interface Grant {
  /** Position of the grant in the file, counted from 1 (as a reviewer would say "grant #3"). */
  readonly number: number;
  readonly principals: readonly Principal[];
  readonly ttlSeconds: number | undefined;
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
 * Resolves every principal's access against a repository inventory. Pure: the same config and
 * inventory always give the same result, in the same order.
 */
export function resolveAccess(
  config: GrantsConfig,
  inventory: readonly string[] = [],
  options: { literalPatterns?: boolean } = {},
): PrincipalAccess[] {
  interface Acc {
    principal: Principal;
    ttl: number | undefined;
    repos: Map<string, Set<string>>;
    catalog: boolean;
    contributions: Map<Grant, number>;
    unmatched: Set<string>;
  }
  const byArn = new Map<string, Acc>();
  // Expanding a pattern is the costly part; grants shared by many principals expand once.
  const expansions = new Map<RepositoryPattern, string[]>();
  for (const grant of config.grants) {
    for (const principal of grant.principals) {
      let acc = byArn.get(principal.arn);
      if (!acc) {
        acc = {
          principal,
          ttl: undefined,
          repos: new Map(),
          catalog: false,
          contributions: new Map(),
          unmatched: new Set(),
        };
        byArn.set(principal.arn, acc);
      }
      acc.ttl ??= grant.ttlSeconds;
      let count = 0;
      for (const entry of grant.access) {
        if (entry.kind === 'catalog') {
          acc.catalog = true;
          count += 1;
          continue;
        }
        let names = expansions.get(entry.pattern);
        if (!names) {
          // For plans without an inventory, a pattern stands for itself.
          names = options.literalPatterns
            ? [entry.pattern.source]
            : expandPattern(entry.pattern, inventory);
          expansions.set(entry.pattern, names);
        }
        if (names.length === 0) acc.unmatched.add(entry.pattern.source);
        for (const name of names) {
          let actions = acc.repos.get(name);
          if (!actions) {
            actions = new Set();
            acc.repos.set(name, actions);
          }
          for (const a of entry.actions) actions.add(a);
        }
        count += names.length;
      }
      acc.contributions.set(grant, (acc.contributions.get(grant) ?? 0) + count);
    }
  }
  return [...byArn.values()].map((acc) => {
    const access: ResourceAccess[] = [...acc.repos.keys()].sort().map((name) => ({
      type: 'repository',
      name,
      actions: effectiveActions(acc.repos.get(name) ?? []),
    }));
    if (acc.catalog) access.push({ type: 'registry', name: 'catalog', actions: ['*'] });
    return {
      principal: acc.principal,
      ttlSeconds: acc.ttl ?? config.tokenTtlSeconds,
      access,
      contributions: acc.contributions,
      unmatched: [...acc.unmatched],
      impliedPull: [...acc.repos]
        .filter(([, a]) => a.has('push') && !a.has('pull') && !a.has('*'))
        .map(([name]) => name)
        .sort(),
    };
  });
}
