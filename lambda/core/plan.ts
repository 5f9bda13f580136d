/**
 * What changes between two grants files, per principal: the reviewer's view of a config PR.
 *
 * Access is compared after the same normalisation minting applies (union of grants, `push`
 * brings `pull`, `*` absorbs the rest). Without an inventory, wildcard patterns are compared as
 * written (`base/*` is one resource); with one, they are expanded as minting would.
 */

import { formatDuration } from './duration.js';
import { type GrantsConfig, type PrincipalAccess, resolveAccess } from './grants.js';

export type PlanStatus = 'added' | 'removed' | 'changed' | 'unchanged';

export interface PlanEntry {
  /** `repository:NAME` or `registry:catalog`. */
  readonly resource: string;
  readonly actions: readonly string[];
  /** True when `pull` is in `actions` only because `push` requires it. */
  readonly impliedPull: boolean;
}

export interface PlanChange {
  readonly resource: string;
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly impliedPull: boolean;
}

export interface PrincipalPlan {
  readonly principal: string;
  readonly status: PlanStatus;
  readonly ttl: { readonly from: number | null; readonly to: number | null };
  readonly added: readonly PlanEntry[];
  readonly removed: readonly PlanEntry[];
  readonly changed: readonly PlanChange[];
  readonly unchanged: readonly PlanEntry[];
}

export interface Plan {
  readonly registry: readonly { field: string; from: unknown; to: unknown }[];
  readonly principals: readonly PrincipalPlan[];
  readonly summary: Readonly<Record<PlanStatus, number>>;
}

function entries(pa: PrincipalAccess | undefined): Map<string, PlanEntry> {
  const map = new Map<string, PlanEntry>();
  for (const a of pa?.access ?? []) {
    const resource = `${a.type}:${a.name}`;
    map.set(resource, {
      resource,
      actions: a.actions,
      impliedPull: a.type === 'repository' && (pa?.impliedPull.includes(a.name) ?? false),
    });
  }
  return map;
}

/** Compares two configs (`from` may be undefined: nothing deployed yet). */
export function planChanges(
  from: GrantsConfig | undefined,
  to: GrantsConfig,
  inventory?: readonly string[],
): Plan {
  const resolve = (c: GrantsConfig) =>
    new Map(
      resolveAccess(c, inventory ?? [], { literalPatterns: inventory === undefined }).map((a) => [
        a.principal.arn,
        a,
      ]),
    );
  const before = from ? resolve(from) : new Map<string, PrincipalAccess>();
  const after = resolve(to);

  const registry: { field: string; from: unknown; to: unknown }[] = [];
  if (from) {
    for (const field of ['host', 'service', 'issuer', 'maxTokenBytes'] as const)
      if (from.registry[field] !== to.registry[field])
        registry.push({ field, from: from.registry[field], to: to.registry[field] });
    if (from.tokenTtlSeconds !== to.tokenTtlSeconds)
      registry.push({
        field: 'tokenTtl',
        from: formatDuration(from.tokenTtlSeconds),
        to: formatDuration(to.tokenTtlSeconds),
      });
  }

  const arns = [...new Set([...before.keys(), ...after.keys()])].sort();
  const principals = arns.map((arn): PrincipalPlan => {
    const b = before.get(arn);
    const a = after.get(arn);
    const eb = entries(b);
    const ea = entries(a);
    const added: PlanEntry[] = [];
    const removed: PlanEntry[] = [];
    const changed: PlanChange[] = [];
    const unchanged: PlanEntry[] = [];
    for (const [resource, e] of ea) {
      const old = eb.get(resource);
      if (!old) added.push(e);
      else if (old.actions.join() !== e.actions.join())
        changed.push({ resource, from: old.actions, to: e.actions, impliedPull: e.impliedPull });
      else unchanged.push(e);
    }
    for (const [resource, e] of eb) if (!ea.has(resource)) removed.push(e);
    const ttl = { from: b?.ttlSeconds ?? null, to: a?.ttlSeconds ?? null };
    const status: PlanStatus = !b
      ? 'added'
      : !a
        ? 'removed'
        : added.length || removed.length || changed.length || ttl.from !== ttl.to
          ? 'changed'
          : 'unchanged';
    return { principal: arn, status, ttl, added, removed, changed, unchanged };
  });
  const summary = { added: 0, removed: 0, changed: 0, unchanged: 0 };
  for (const p of principals) summary[p.status] += 1;
  return { registry, principals, summary };
}

function actionsText(actions: readonly string[], impliedPull: boolean): string {
  return `${actions.join(', ')}${impliedPull ? ' (pull implied by push)' : ''}`;
}

function resourceText(resource: string): string {
  const [type, ...rest] = resource.split(':');
  return type === 'registry' ? `${rest.join(':')} (registry)` : rest.join(':');
}

/**
 * Renders a plan as Markdown-compatible text: readable in a terminal and as a PR comment.
 * Lines start with `+` (added), `-` (removed), `~` (changed) or `=` (unchanged).
 */
export function renderPlan(plan: Plan): string {
  const out: string[] = [];
  if (plan.registry.length) {
    out.push('Registry settings:');
    for (const r of plan.registry) out.push(`  ~ ${r.field}: ${String(r.from)} → ${String(r.to)}`);
    if (plan.registry.some((r) => r.field === 'service' || r.field === 'issuer'))
      out.push(
        '  ! service/issuer changed: the registry rejects the new tokens until its auth.token settings match',
      );
    out.push('');
  }
  const sign = { added: '+', removed: '-', changed: '~', unchanged: '=' } as const;
  for (const p of plan.principals) {
    if (p.status === 'unchanged') {
      out.push(`= ${p.principal} (unchanged)`);
      continue;
    }
    let note = '';
    if (p.status === 'added') note = ` (new: token lifetime ${formatDuration(p.ttl.to ?? 0)})`;
    else if (p.status === 'removed') note = ' (removed: its token is deleted on the next run)';
    else if (p.ttl.from !== p.ttl.to)
      note = ` (token lifetime ${formatDuration(p.ttl.from ?? 0)} → ${formatDuration(p.ttl.to ?? 0)})`;
    out.push(`${sign[p.status]} ${p.principal}${note}`);
    for (const e of p.added)
      out.push(`    + ${resourceText(e.resource)}: ${actionsText(e.actions, e.impliedPull)}`);
    for (const e of p.removed)
      out.push(`    - ${resourceText(e.resource)}: ${actionsText(e.actions, false)}`);
    for (const c of p.changed)
      out.push(
        `    ~ ${resourceText(c.resource)}: ${c.from.join(', ')} → ${actionsText(c.to, c.impliedPull)}`,
      );
    for (const e of p.unchanged)
      out.push(`    = ${resourceText(e.resource)}: ${actionsText(e.actions, e.impliedPull)}`);
  }
  const s = plan.summary;
  out.push('');
  out.push(
    `Principals: ${s.added} added, ${s.changed} changed, ${s.removed} removed, ${s.unchanged} unchanged`,
  );
  return `${out.join('\n')}\n`;
}
