/**
 * cfn-lint (the CloudFormation linter, `pip install cfn-lint`) on the templates the app
 * synthesizes: the default app, every option on, and every option on in a concrete account and
 * region. Zero errors. Its warnings are listed by rule: the only one allowed is W3005, about a
 * DependsOn that aws-cdk-lib itself writes next to a reference that implies it (harmless; not
 * ours to change), so any new kind of finding fails here and gets looked at.
 *
 * test/infra/synth.test.ts lints the template `npx cdk synth` writes, with the bundled asset.
 */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { propsFromContext, RegtokenStack, type RegtokenStackProps } from '../../infra/stack.js';
import { EVERY_OPTION, newApp } from '../helpers/cdk.js';
import { requireBinary, run } from '../helpers/process.js';

/** cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational. */
const ERRORS = 2;

const EVERYTHING: RegtokenStackProps = { ...EVERY_OPTION, schedule: Duration.minutes(30) };

interface Finding {
  readonly Rule: { readonly Id: string };
  readonly Level: string;
  readonly Message: string;
  readonly Filename: string;
}

let templates: string[];
let findings: Finding[];
let code: number;

beforeAll(async () => {
  await requireBinary('cfn-lint', 'pip install cfn-lint');
  const variants: [string, RegtokenStackProps | 'from context'][] = [
    ['Default', 'from context'],
    ['Everything', EVERYTHING],
    ['Concrete', { ...EVERYTHING, env: { account: '111122223333', region: 'eu-west-1' } }],
  ];
  templates = variants.map(([name, props]) => {
    const app = newApp();
    new RegtokenStack(app, name, props === 'from context' ? propsFromContext(app.node) : props);
    const dir = app.synth().directory;
    const files = readdirSync(dir).filter((f) => f.endsWith('.template.json'));
    expect(files).toEqual([`${name}.template.json`]);
    return join(dir, files[0] as string);
  });
  const r = await run('cfn-lint', ['--format', 'json', ...templates], { timeoutMs: 300_000 });
  code = r.code;
  findings = JSON.parse(r.stdout || '[]') as Finding[];
}, 360_000);

describe('cfn-lint on the synthesized templates', () => {
  it('lints all three', () => {
    expect(templates).toHaveLength(3);
  });

  it('finds no error', () => {
    expect(
      findings.filter((f) => f.Level === 'Error').map((f) => `${f.Rule.Id} ${f.Message}`),
    ).toEqual([]);
    expect(code & ERRORS).toBe(0);
  });

  it('warns only about DependsOn that aws-cdk-lib writes (W3005)', () => {
    expect([...new Set(findings.map((f) => f.Rule.Id))].sort()).toEqual(['W3005']);
  });
});
