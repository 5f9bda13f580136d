/**
 * A secret given where a grants file (or an inventory) was expected never reaches the output:
 * `regtoken validate .regtoken/signing-key.pem`, `mint` with `--config` and `--signing-key`
 * swapped, an AWS credentials file as grants or inventory. The error names the file and the
 * place, and says what is wrong, without quoting the content.
 */

import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { cli } from '../helpers/cli.js';
import { fixedEcKey } from '../helpers/keys.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('secrets-');
});
afterEach(async () => removeTempDir(dir));

const ACCESS_KEY_ID = 'AKIAQWERTYUIOPASDFGH';
const SECRET_KEY = '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';
const SESSION_TOKEN = 'IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQDsessionTOKENpart';

/** Every piece of a PEM's body and every credential value: none may appear in any output. */
function secretsOf(text: string): string[] {
  return (
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .map((l) => l.split(/=|: /).at(-1)?.trim() ?? l)
      .filter((s) => s.length >= 16)
      // A 16-character window of each: an excerpt of a secret is as bad as all of it.
      .flatMap((s) => Array.from({ length: s.length - 15 }, (_, i) => s.slice(i, i + 16)))
  );
}

function files(): Record<string, { path: string; text: string }> {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs1',
    format: 'pem',
  }) as string;
  const credentials = `[default]\naws_access_key_id = ${ACCESS_KEY_ID}\naws_secret_access_key = ${SECRET_KEY}\naws_session_token = ${SESSION_TOKEN}\n`;
  const bare = `aws_access_key_id = ${ACCESS_KEY_ID}\naws_secret_access_key = ${SECRET_KEY}\n`;
  const yamlish = `aws_access_key_id: ${ACCESS_KEY_ID}\naws_secret_access_key: ${SECRET_KEY}\n`;
  const env = `AWS_SECRET_ACCESS_KEY=${SECRET_KEY}\n`;
  const out: Record<string, { path: string; text: string }> = {};
  for (const [name, text] of Object.entries({
    'signing-key.pem': pem,
    'rsa-key.pem': rsa,
    credentials,
    'credentials-no-section': bare,
    'credentials.yaml': yamlish,
    '.env': env,
  })) {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    out[name] = { path, text };
  }
  return out;
}

/** A valid signing key, so that a run gets as far as reading the inventory. */
function key(): string {
  const path = join(dir, 'k.pem');
  writeFileSync(path, fixedEcKey().export({ type: 'pkcs8', format: 'pem' }) as string, {
    mode: 0o600,
  });
  return path;
}

function expectNoSecret(output: string, text: string): void {
  for (const secret of secretsOf(text)) expect(output).not.toContain(secret);
}

describe('a secret file where a grants file belongs', () => {
  const names = [
    'signing-key.pem',
    'rsa-key.pem',
    'credentials',
    'credentials-no-section',
    'credentials.yaml',
    '.env',
  ];

  it.each(names)(
    'validate %s: exit 1, one positioned line per problem, no content',
    async (name) => {
      const f = files()[name];
      if (!f) throw new Error(name);
      const r = await cli(['validate', f.path]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      for (const line of r.stderr.trimEnd().split('\n'))
        expect(line).toMatch(new RegExp(`^${f.path.replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
      expectNoSecret(r.stdout + r.stderr, f.text);
    },
  );

  it.each(['signing-key.pem', 'rsa-key.pem'])(
    'validate %s says it is not a grants file (a key, by its look)',
    async (name) => {
      const f = files()[name];
      if (!f) throw new Error(name);
      const r = await cli(['validate', f.path]);
      expect(r.stderr).toBe(
        `${f.path}:1:1: not a grants file: this looks like a PEM key or certificate (a grants file is a YAML mapping with version, registry and grants)\n`,
      );
    },
  );

  it('mint with --config and --signing-key swapped writes nothing and prints no key material', async () => {
    const f = files()['signing-key.pem'];
    if (!f) throw new Error('key');
    const out = join(dir, 'out');
    const r = await cli([
      'mint',
      '--config',
      f.path,
      '--signing-key',
      'examples/grants.yaml',
      '--out',
      out,
    ]);
    expect(r.code).toBe(1);
    expectNoSecret(r.stdout + r.stderr, f.text);
    expect(r.stderr).toContain(`${f.path}:1:1: not a grants file`);
  });

  it.each(names)('plan --to %s prints no content', async (name) => {
    const f = files()[name];
    if (!f) throw new Error(name);
    const r = await cli(['plan', '--to', f.path]);
    expect(r.code).toBe(1);
    expectNoSecret(r.stdout + r.stderr, f.text);
  });
});

describe('a secret file where the repository inventory belongs', () => {
  it.each(['credentials', 'credentials-no-section', '.env', 'signing-key.pem'])(
    'mint --repositories %s names the line, not its content',
    async (name) => {
      const f = files()[name];
      if (!f) throw new Error(name);
      const r = await cli([
        'mint',
        '--config',
        'examples/grants.yaml',
        '--repositories',
        f.path,
        '--out',
        join(dir, 'out'),
        '--signing-key',
        key(),
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^regtoken: ${f.path.replace(/[.]/g, '\\.')}:1: not a repository name \\(expected one name per line`,
        ),
      );
      expectNoSecret(r.stdout + r.stderr, f.text);
    },
  );
});
