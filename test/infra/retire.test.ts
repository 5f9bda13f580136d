/**
 * docs/deploy.md, "Retiring a deployment", against the template: the commands there find what
 * the stack keeps by resource type and logical ID prefix (`kept TYPE PREFIX`), so every
 * resource the stack retains, with every option on, must be found by one of them and removed
 * by a later step, and no prefix may find nothing (a renamed construct would leave its
 * resource behind unnoticed). The commands themselves were run against the AWS stand-in.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { Template } from 'aws-cdk-lib/assertions';
import { RegtokenStack } from '../../infra/stack.js';
import { newApp, ROOT } from '../helpers/cdk.js';

const doc = readFileSync(`${ROOT}docs/deploy.md`, 'utf8');
const section = doc.slice(doc.indexOf('## Retiring a deployment'));
const script = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');

/** `NAME=$(kept TYPE PREFIX)` lines of the doc. */
const finds = [...script.matchAll(/^(\w+)=\$\(kept (\S+) '?([\w]*)'?\)/gm)].map(
  ([, name, type, prefix]) => ({
    name: name as string,
    type: type as string,
    prefix: prefix ?? '',
  }),
);

const template = Template.fromStack(
  new RegtokenStack(newApp(), 'Regtoken', {
    grantsFile: `${ROOT}examples/config-repo/grants.yaml`,
    rootKeys: ['1', '2'],
    alarmEmail: 'ops@example.com',
    githubRepository: 'my-org/registry-grants',
    realm: true,
    recordTokenReads: true,
  }),
).toJSON() as { Resources: Record<string, { Type: string; DeletionPolicy?: string }> };
const resources = Object.entries(template.Resources);
const matches = (f: (typeof finds)[number], [id, r]: (typeof resources)[number]) =>
  r.Type === f.type && id.startsWith(f.prefix);

describe('docs/deploy.md, Retiring a deployment', () => {
  it('has the commands', () => {
    expect(script).toContain('aws cloudformation delete-stack --stack-name "$STACK"');
    expect(finds.map((f) => f.name)).toEqual([
      'TOKEN_BUCKET',
      'CONFIG_BUCKET',
      'READS_BUCKET',
      'ACCESS_LOGS',
      'ROOT_KEYS',
      'LOG_GROUPS',
      'FUNCTIONS',
    ]);
  });

  it('finds every resource the stack retains', () => {
    const retained = resources.filter(([, r]) => r.DeletionPolicy === 'Retain');
    expect(retained.length).toBeGreaterThanOrEqual(10);
    const missed = retained
      .filter((res) => !finds.some((f) => matches(f, res)))
      .map(([id, r]) => `${r.Type} ${id}`);
    expect(missed).toEqual([]);
  });

  it('finds with every prefix something that exists', () => {
    expect(finds.filter((f) => !resources.some((res) => matches(f, res)))).toEqual([]);
  });

  it('removes what it found, the token bucket policy first', () => {
    const after = script.slice(script.indexOf('delete-stack'));
    for (const { name } of finds)
      expect({ name, used: after.includes(`$${name}`) }).toEqual({
        name,
        used: true,
      });
    expect(after.indexOf('delete-bucket-policy --bucket "$TOKEN_BUCKET"')).toBeLessThan(
      after.indexOf('empty "$b"'),
    );
  });
});
