import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import schema from '../../config-schema/grants.schema.json' with { type: 'json' };
import { DEFAULT_MAX_TOKEN_BYTES } from '../../lambda/core/config.js';
import { parseGrantsSync } from '../../lambda/core/config-positions.js';
import { PRINCIPAL_ARN_PATTERN } from '../../lambda/core/principal.js';
import { REPOSITORY_PATTERN_SCHEMA } from '../../lambda/core/repository.js';
import { ConfigError, formatIssue } from '../../lambda/errors.js';

const INVALID = 'test/fixtures/invalid';

function issuesOf(text: string, file: string): string[] {
  try {
    parseGrantsSync(text, file);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

describe('invalid grants files', () => {
  const fixtures = readdirSync(INVALID).filter((f) => f.endsWith('.yaml'));

  it('has at least 20 fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(20);
  });

  it.each(fixtures)('%s reports exactly the expected problems', (name) => {
    const file = join(INVALID, name);
    const text = readFileSync(file, 'utf8');
    const expected = text
      .split('\n')
      .filter((l) => l.startsWith('# expect: '))
      .map((l) => `${file}:${l.slice('# expect: '.length)}`);
    expect(expected.length).toBeGreaterThan(0);
    expect(issuesOf(text, file)).toEqual(expected);
  });

  it('reports every problem at once, in file order', () => {
    const file = join(INVALID, 'many-errors.yaml');
    const issues = issuesOf(readFileSync(file, 'utf8'), file);
    expect(issues).toHaveLength(6);
    const lines = issues.map((i) => Number(i.split(':')[1]));
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('never leaks a stack trace or internal path into a message', () => {
    for (const name of fixtures) {
      const file = join(INVALID, name);
      for (const issue of issuesOf(readFileSync(file, 'utf8'), file)) {
        expect(issue).not.toMatch(/\n|\bat .*\.(ts|js):\d+|node_modules|instancePath/);
      }
    }
  });
});

describe('valid grants files', () => {
  it('accepts the example as written and reads its meaning', () => {
    const config = parseGrantsSync(readFileSync('examples/grants.yaml', 'utf8'), 'grants.yaml');
    expect(config.registry).toEqual({
      host: 'registry.example.com',
      service: 'registry.example.com',
      issuer: 'regtoken',
      maxTokenBytes: DEFAULT_MAX_TOKEN_BYTES,
    });
    expect(config.tokenTtlSeconds).toBe(12 * 3600);
    expect(config.grants.map((g) => g.principals.map((p) => p.arn))).toEqual([
      ['arn:aws:iam::111122223333:role/ci-runner'],
      ['arn:aws:iam::111122223333:role/web/ec2-web', 'arn:aws:iam::444455556666:user/alice'],
      ['arn:aws:iam::111122223333:role/registry-admin'],
    ]);
    expect(config.grants[1]?.ttlSeconds).toBe(3600);
    expect(config.grants[1]?.principals[0]).toMatchObject({
      account: '111122223333',
      type: 'role',
      path: '/web/',
      name: 'ec2-web',
    });
    expect(config.grants[2]?.access.map((a) => a.kind)).toEqual(['repository', 'catalog']);
    expect(config.grants[0]?.at).toEqual({ file: 'grants.yaml', line: 9, col: 5 });
  });

  it('points editors at the schema', () => {
    const first = readFileSync('examples/grants.yaml', 'utf8').split('\n')[0];
    expect(first).toBe('# yaml-language-server: $schema=../config-schema/grants.schema.json');
  });

  it('applies defaults when optional fields are left out', () => {
    const config = parseGrantsSync(
      `version: 1
registry: {host: 'localhost:5000', service: s, issuer: i}
grants:
  - principal: arn:aws-cn:iam::111122223333:user/a/b/carol
    access: [{repository: x, actions: [push]}]
`,
      'min.yaml',
    );
    expect(config.tokenTtlSeconds).toBe(12 * 3600);
    expect(config.registry.maxTokenBytes).toBe(16384);
    expect(config.grants[0]?.ttlSeconds).toBeUndefined();
  });

  it('lets a grant without ttl share a principal with a grant that sets one', () => {
    const config = parseGrantsSync(
      `version: 1
registry: {host: r, service: s, issuer: i}
grants:
  - principal: arn:aws:iam::111122223333:role/ci
    ttl: 1h
    access: [{repository: x, actions: [pull]}]
  - principal: arn:aws:iam::111122223333:role/ci
    access: [{repository: y, actions: [pull]}]
`,
      'f.yaml',
    );
    expect(config.grants.map((g) => g.ttlSeconds)).toEqual([3600, undefined]);
  });
});

describe('schema and validator agree', () => {
  it('uses the same ARN grammar', () => {
    expect(schema.$defs.principalArn.pattern).toBe(PRINCIPAL_ARN_PATTERN);
  });
  it('uses the same repository pattern grammar', () => {
    expect(schema.$defs.access.properties.repository.pattern).toBe(REPOSITORY_PATTERN_SCHEMA);
  });
  it('describes every field', () => {
    const undocumented: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      const props = (node as { properties?: Record<string, unknown> }).properties;
      for (const [k, v] of Object.entries(props ?? {})) {
        const def = v as { description?: string; $ref?: string };
        if (!def.description) undocumented.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
      }
      for (const [k, v] of Object.entries((node as { $defs?: object }).$defs ?? {}))
        walk(v, `$defs.${k}`);
    };
    walk(schema, '');
    expect(undocumented).toEqual([]);
  });
});
