/**
 * A local mint removes only what it wrote: token documents (recognised by their content, not
 * their extension) whose principal is no longer granted. Anything else under OUT/tokens/ — a
 * package.json, a backup, a copy of another principal's document — stays exactly as it was.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { cli } from '../helpers/cli.js';
import { fixedEcKey } from '../helpers/keys.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
let key: string;
beforeEach(async () => {
  dir = await makeTempDir('removal-');
  key = join(dir, 'key.pem');
  writeFileSync(key, fixedEcKey().export({ type: 'pkcs8', format: 'pem' }) as string, {
    mode: 0o600,
  });
});
afterEach(async () => removeTempDir(dir));

const CI = 'tokens/111122223333/role/ci-runner.json';
const WEB = 'tokens/111122223333/role/ec2-web.json';
const ALICE = 'tokens/444455556666/user/alice.json';
const ADMIN = 'tokens/111122223333/role/registry-admin.json';

/** Every file under `root` with a hash of its content. */
function files(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

async function mint(config: string, out: string) {
  const r = await cli([
    'mint',
    '--config',
    config,
    '--repositories',
    'examples/repositories.txt',
    '--signing-key',
    key,
    '--out',
    out,
    '--json',
  ]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(r.stdout) as { removed: string[] };
}

describe('local mint removal', () => {
  it('removes the token of a principal no longer granted, and nothing that is not one', async () => {
    const out = join(dir, 'out');
    await mint('examples/grants.yaml', out);

    // Files a person or a tool put there, none of them a token regtoken wrote for that name.
    const alien: Record<string, string> = {
      'tokens/package.json': '{"name": "tokens", "version": "1.0.0"}\n',
      'tokens/111122223333/role/backup.json': '{"note": "old tokens, keep"}\n',
      'tokens/111122223333/role/broken.json':
        '{"principal": "arn:aws:iam::111122223333:role/broken"',
      // A real token document, but of another principal than its name says (a renamed copy).
      'tokens/111122223333/role/copy-of-ci.json': readFileSync(join(out, CI), 'utf8'),
      'tokens/111122223333/role/list.json': '[1, 2, 3]\n',
      'tokens/notes/readme.json': '{}\n',
    };
    for (const [path, text] of Object.entries(alien)) {
      mkdirSync(join(out, path, '..'), { recursive: true });
      writeFileSync(join(out, path), text);
    }
    const before = files(out);

    // Alice's grant goes away.
    const smaller = join(dir, 'smaller.yaml');
    writeFileSync(
      smaller,
      readFileSync('examples/grants.yaml', 'utf8').replace(
        '      - arn:aws:iam::444455556666:user/alice\n',
        '',
      ),
    );
    const report = await mint(smaller, out);

    expect(report.removed).toEqual([ALICE]);
    const after = files(out);
    expect(Object.keys(after).sort()).toEqual(
      [...Object.keys(alien), CI, WEB, ADMIN, 'trust-bundle.pem', 'jwks.json'].sort(),
    );
    for (const path of Object.keys(alien)) expect(after[path]).toBe(before[path]);
  });
});
