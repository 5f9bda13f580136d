import { describe, expect, it } from '@jest/globals';
import { parseGrantsSync } from '../../lambda/core/config-positions.js';
import { planChanges, renderPlan } from '../../lambda/core/plan.js';

const head = `version: 1
registry: {host: registry.example.com, service: registry.example.com, issuer: regtoken}
tokenTtl: 12h
grants:
`;
const grants = (body: string) => parseGrantsSync(head + body, 'g.yaml');

const OLD = grants(`  - principal: arn:aws:iam::111122223333:role/ci
    access:
      - {repository: team-a/app, actions: [pull]}
      - {repository: base/*, actions: [pull]}
  - principal: arn:aws:iam::111122223333:user/bob
    access: [{repository: team-a/app, actions: [pull]}]
  - principal: arn:aws:iam::111122223333:user/carol
    access: [{repository: docs, actions: [pull]}]
`);
const NEW = grants(`  - principal: arn:aws:iam::111122223333:role/ci
    ttl: 1h
    access:
      - {repository: team-a/app, actions: [push]}
      - {repository: team-b/api, actions: [pull]}
  - principal: arn:aws:iam::111122223333:role/new
    access: [{repository: team-a/app, actions: [push]}, {catalog: true}]
  - principal: arn:aws:iam::111122223333:user/carol
    access: [{repository: docs, actions: [pull]}]
`);

describe('plan', () => {
  const plan = planChanges(OLD, NEW);

  it('classifies every principal', () => {
    expect(plan.principals.map((p) => [p.principal.split(':').at(-1), p.status])).toEqual([
      ['role/ci', 'changed'],
      ['role/new', 'added'],
      ['user/bob', 'removed'],
      ['user/carol', 'unchanged'],
    ]);
    expect(plan.summary).toEqual({ added: 1, removed: 1, changed: 1, unchanged: 1 });
  });

  it('lists access added, removed, changed and unchanged, and says when pull is implied', () => {
    const ci = plan.principals[0];
    expect(ci?.ttl).toEqual({ from: 43200, to: 3600 });
    expect(ci?.added).toEqual([
      { resource: 'repository:team-b/api', actions: ['pull'], impliedPull: false },
    ]);
    expect(ci?.removed).toEqual([
      { resource: 'repository:base/*', actions: ['pull'], impliedPull: false },
    ]);
    expect(ci?.changed).toEqual([
      {
        resource: 'repository:team-a/app',
        from: ['pull'],
        to: ['pull', 'push'],
        impliedPull: true,
      },
    ]);
    expect(plan.principals[1]?.added).toEqual([
      { resource: 'repository:team-a/app', actions: ['pull', 'push'], impliedPull: true },
      { resource: 'registry:catalog', actions: ['*'], impliedPull: false },
    ]);
  });

  it('renders a reviewer-readable text', () => {
    expect(renderPlan(plan)).toBe(`~ arn:aws:iam::111122223333:role/ci (token lifetime 12h → 1h)
    + team-b/api: pull
    - base/*: pull
    ~ team-a/app: pull → pull, push (pull implied by push)
+ arn:aws:iam::111122223333:role/new (new: token lifetime 12h)
    + team-a/app: pull, push (pull implied by push)
    + catalog (registry): *
- arn:aws:iam::111122223333:user/bob (removed: its token is deleted on the next run)
    - team-a/app: pull
= arn:aws:iam::111122223333:user/carol (unchanged)

Principals: 1 added, 1 changed, 1 removed, 1 unchanged
`);
  });

  it('expands patterns when given an inventory', () => {
    const p = planChanges(OLD, OLD, ['base/a', 'base/b']);
    expect(p.principals[0]?.unchanged.map((e) => e.resource)).toEqual([
      'repository:base/a',
      'repository:base/b',
      'repository:team-a/app',
    ]);
  });

  it('treats a missing old config as nothing deployed and flags registry changes', () => {
    expect(planChanges(undefined, NEW).summary).toEqual({
      added: 3,
      removed: 0,
      changed: 0,
      unchanged: 0,
    });
    const moved = parseGrantsSync(
      head.replace('issuer: regtoken', 'issuer: other') +
        '  - principal: arn:aws:iam::111122223333:user/carol\n    access: [{repository: docs, actions: [pull]}]\n',
      'g.yaml',
    );
    const p = planChanges(OLD, moved);
    expect(p.registry).toEqual([{ field: 'issuer', from: 'regtoken', to: 'other' }]);
    expect(renderPlan(p)).toContain(
      'the registry rejects the new tokens until its auth.token settings match',
    );
  });
});
