/**
 * Grants files written to hurt: too big, too deep, alias bombs, huge values, terminal escapes.
 * Each one ends as a positioned config error and exit 1 (never "unexpected error"), no message
 * line grows with the input, and no control character reaches the terminal. How long these
 * take is measured by the benchmark (npm run bench), not asserted here.
 */

import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { parseGrantsSync } from '../../lambda/core/config-positions.js';
import { escapeControl, quote } from '../../lambda/core/text.js';
import {
  MAX_ALIAS_EXPANSIONS,
  MAX_GRANTS_BYTES,
  MAX_MAPPING_KEYS,
  MAX_NESTING,
} from '../../lambda/core/yaml-limits.js';
import { ConfigError } from '../../lambda/errors.js';
import { cli } from '../helpers/cli.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('hostile-');
});
afterEach(async () => removeTempDir(dir));

const HEAD = `version: 1
registry: {host: registry.test, service: registry.test, issuer: regtoken}
grants:
`;
const grant = (principal: string) =>
  `  - principal: ${principal}\n    access: [{repository: team-a/app, actions: [pull]}]\n`;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** `validate` on the file: exit 1 and exactly these stderr lines (without the file prefix). */
async function expectIssues(path: string, lines: readonly string[]): Promise<void> {
  const r = await cli(['validate', path]);
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
  expect(r.stderr.trimEnd().split('\n')).toEqual(lines.map((l) => `${path}:${l}`));
}

const billionLaughs = `version: 1
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
grants: *f
`;

describe('limits checked before parsing', () => {
  it('refuses a file over the size limit by its size, without reading it', async () => {
    const path = join(dir, 'huge.yaml');
    writeFileSync(path, HEAD + grant('arn:aws:iam::111122223333:role/ci'));
    truncateSync(path, 50 * 1024 * 1024); // 50 MB, mostly NUL bytes on a sparse file
    await expectIssues(path, [
      '1:1: the file is 52,428,800 bytes, over the limit of 10,485,760 bytes (10 MiB) for a grants file',
    ]);
  });

  it('refuses text over the size limit from any source', () => {
    const text = `${HEAD}${grant('arn:aws:iam::111122223333:role/ci')}#${'x'.repeat(MAX_GRANTS_BYTES)}\n`;
    expect(() => parseGrantsSync(text, 's3://config/grants.yaml')).toThrow(
      new ConfigError([
        {
          file: 's3://config/grants.yaml',
          line: 1,
          col: 1,
          message: `the file is ${Buffer.byteLength(text).toLocaleString('en-US')} bytes, over the limit of 10,485,760 bytes (10 MiB) for a grants file`,
        },
      ]),
    );
  });

  it('accepts a file at exactly the limit (the limit is inclusive)', () => {
    const body = HEAD + grant('arn:aws:iam::111122223333:role/ci');
    const text = `${body}#${'x'.repeat(MAX_GRANTS_BYTES - body.length - 2)}\n`;
    expect(Buffer.byteLength(text)).toBe(MAX_GRANTS_BYTES);
    expect(parseGrantsSync(text, 'g.yaml').grants).toHaveLength(1);
  });

  it.each([
    // Level 1 is the file's mapping, level 2 the grants list at 4:3; each "- " nests once more.
    ['a 3,000-deep block sequence on one line', `${HEAD}  - ${'- '.repeat(3000)}x\n`, '4:33'],
    [
      'a 3,000-deep block sequence, one level per line',
      `${HEAD}${Array.from({ length: 3000 }, (_, i) => `${'  '.repeat(i + 1)}-\n`).join('')}`,
      '19:33',
    ],
    ['3,000 nested flow lists', `${HEAD}  - ${'['.repeat(3000)}${']'.repeat(3000)}\n`, '4:19'],
    [
      '3,000 nested mappings',
      `version: 1\n${Array.from({ length: 3000 }, (_, i) => `${'  '.repeat(i)}k:\n`).join('')}`,
      `${MAX_NESTING + 2}:${2 * MAX_NESTING + 1}`,
    ],
  ])('refuses %s at the first level past the limit', async (_name, text, at) => {
    const path = file('deep.yaml', text);
    await expectIssues(path, [
      `${at}: nested more than ${MAX_NESTING} levels deep (a grants file needs 6)`,
    ]);
  });

  it('refuses a mapping with more keys than the limit (duplicate checks cost their square)', async () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `  k${i}: 1\n`).join('');
    const path = file('keys.yaml', `version: 1\nregistry:\n${keys}`);
    await expectIssues(path, [
      `3:3: a mapping with 20,000 keys, over the limit of ${MAX_MAPPING_KEYS}`,
    ]);
  });

  it('accepts nesting and mappings up to the limits', () => {
    const nested = `version: 1\nx: ${'['.repeat(MAX_NESTING - 1)}${']'.repeat(MAX_NESTING - 1)}\n`;
    const keys = `version: 1\nx: {${Array.from({ length: MAX_MAPPING_KEYS }, (_, i) => `k${i}: 1`).join(', ')}}\n`;
    for (const text of [nested, keys]) {
      try {
        parseGrantsSync(text, 'g.yaml');
      } catch (err) {
        // Only schema problems are left: the limits let the file through.
        expect((err as ConfigError).issues.map((i) => i.message)).not.toContainEqual(
          expect.stringMatching(/nested more than|over the limit/),
        );
      }
    }
  });
});

describe('aliases', () => {
  it('refuses an alias bomb with a positioned error', async () => {
    const path = file('bomb.yaml', billionLaughs);
    await expectIssues(path, [
      `3:8: YAML: aliases here expand to too much data (at most ${MAX_ALIAS_EXPANSIONS} alias expansions): write the values out`,
    ]);
  });

  it('still reads a file that uses a few aliases', () => {
    const text = `${HEAD}  - principal: arn:aws:iam::111122223333:role/ci
    access: &same [{repository: team-a/app, actions: [pull]}]
  - principal: arn:aws:iam::111122223333:role/web
    access: *same
`;
    expect(parseGrantsSync(text, 'g.yaml').grants).toHaveLength(2);
  });
});

describe('huge values', () => {
  it('quotes a 1 MB role name as a short excerpt', async () => {
    const name = 'A'.repeat(1_000_000);
    const path = file('long.yaml', HEAD + grant(`arn:aws:iam::111122223333:role/${name}`));
    await expectIssues(path, [
      `4:16: role name ${quote(name)} must be 1-64 characters from A-Z a-z 0-9 + = . @ _ -`,
    ]);
    const r = await cli(['validate', path]);
    expect(r.stderr).toContain('"AAAAAAAA');
    expect(r.stderr).toContain('…" (1000000 characters)');
    expect(r.stderr.length).toBeLessThan(300);
  });

  it('quotes a 1 MB unknown key as a short excerpt', async () => {
    const path = file(
      'key.yaml',
      // An explicit key ("? "): YAML itself refuses implicit keys over 1024 characters.
      `${HEAD}${grant('arn:aws:iam::111122223333:role/ci')}? ${'k'.repeat(1_000_000)}\n: 1\n`,
    );
    const r = await cli(['validate', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${path}:6:3: unknown field "${'k'.repeat(80)}…" (1000000 characters)\n`);
  });

  it('lists at most 100 problems, then how many more there are', async () => {
    const actions = Array.from({ length: 5000 }, (_, i) => `a${i}`).join(', ');
    const path = file(
      'many.yaml',
      `${HEAD}  - principal: arn:aws:iam::111122223333:role/ci\n    access: [{repository: x, actions: [${actions}]}]\n`,
    );
    const r = await cli(['validate', path]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(101);
    expect(lines[0]).toBe(`${path}:5:40: unknown action "a0" (allowed: pull, push, delete, *)`);
    expect(lines[100]).toMatch(/: and 4900 more problems from here on, not shown$/);
  });
});

/** Control characters other than the line feed that ends each line. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these characters.
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;

describe('control characters never reach the terminal', () => {
  const hostile = '\u001b]0;pwned\u0007\u001b[2J\r\u202e';

  it('escapes them in a message about a value', async () => {
    const path = file(
      'esc.yaml',
      HEAD + grant(`"arn:aws:iam::111122223333:role/x\\e]0;pwned\\a\\e[2J\\r\\u202e"`),
    );
    const r = await cli(['validate', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `${path}:4:16: "arn:aws:iam::111122223333:role/x\\x1b]0;pwned\\x07\\x1b[2J\\r\\u202e" is not an IAM ARN: expected arn:aws:iam::ACCOUNT:role/NAME or arn:aws:iam::ACCOUNT:user/NAME\n`,
    );
    const name = 'x\\e]0;pwned\\a\\e[2J\\u202e'; // no \\r: the ARN grammar stops at line ends
    const named = file('esc2.yaml', HEAD + grant(`"arn:aws:iam::111122223333:role/${name}"`));
    expect((await cli(['validate', named])).stderr).toBe(
      `${named}:4:16: role name "x\\x1b]0;pwned\\x07\\x1b[2J\\u202e" must be 1-64 characters from A-Z a-z 0-9 + = . @ _ -\n`,
    );
  });

  it('escapes them in every line the CLI prints, file names included', async () => {
    const path = file(`grants${hostile}.yaml`, 'version: 2\n');
    const r = await cli(['validate', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(escapeControl(path));
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    const unknown = await cli([`mint${hostile}`]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).not.toMatch(RAW_CONTROL);
    expect(unknown.stderr).toContain('unknown command "mint\\x1b]0;pwned\\x07\\x1b[2J\\r\\u202e"');
  });
});
