/**
 * A signing key someone else could have planted is refused, as ssh refuses such key files: one
 * that group or others can write (in a shared directory, a pre-placed `.regtoken/signing-key.pem`
 * of mode 0666 was used and its public key published), or one that belongs to another user.
 * The message says how to fix it; nothing is written.
 */

import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { keyFileProblem, PemSigner } from '../../lambda/adapters/pem-signer.js';
import { cli } from '../helpers/cli.js';
import { FIXED_NOW, fixedEcKey } from '../helpers/keys.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
let key: string;
const uid = process.getuid?.() ?? 0;
const PEM = fixedEcKey().export({ type: 'pkcs8', format: 'pem' }) as string;

beforeEach(async () => {
  dir = await makeTempDir('keyfile-');
  key = join(dir, 'key.pem');
  writeFileSync(key, PEM, { mode: 0o600 });
});
afterEach(async () => removeTempDir(dir));

const prepare = (signer: PemSigner) =>
  signer.prepare({ now: FIXED_NOW, publishedBundle: undefined });

describe('the key file must be writable by its owner only', () => {
  it.each([
    ['0666', 'group and others'],
    ['0646', 'others'],
    ['0660', 'group'],
    ['0622', 'group and others'],
  ])('mode %s: refused, saying who can write and how to fix it', async (octal, who) => {
    const mode = Number.parseInt(octal, 8);
    chmodSync(key, mode);
    const out = join(dir, 'out');
    const r = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      key,
      '--out',
      out,
    ]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `regtoken: signing key ${key}: ${who} can write it (mode ${octal}), so anyone could have replaced it; if it is yours, run: chmod go-w ${key}\n`,
    });
    expect(existsSync(out)).toBe(false);
  });

  it.each(['0600', '0400', '0640', '0644'])('mode %s: used', async (octal) => {
    chmodSync(key, Number.parseInt(octal, 8));
    await expect(prepare(new PemSigner(key, { create: false }))).resolves.toMatchObject({
      alg: 'ES256',
    });
  });

  it('follows a symbolic link and judges the file it points to', async () => {
    const link = join(dir, 'link.pem');
    symlinkSync(key, link);
    chmodSync(key, 0o666);
    await expect(prepare(new PemSigner(link, { create: false }))).rejects.toThrow(
      'can write it (mode 0666)',
    );
  });

  it('refuses the default key when it was planted writable, and does not replace it', async () => {
    const cwd = process.cwd();
    const work = join(dir, 'shared');
    mkdirSync(join(work, '.regtoken'), { recursive: true, mode: 0o777 });
    writeFileSync(join(work, '.regtoken/signing-key.pem'), PEM, { mode: 0o666 });
    chmodSync(join(work, '.regtoken/signing-key.pem'), 0o666);
    process.chdir(work);
    try {
      const r = await cli(['mint', '--config', join(cwd, 'examples/grants.yaml'), '--out', 'out']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        'regtoken: signing key .regtoken/signing-key.pem: group and others can write it (mode 0666)',
      );
      expect(existsSync(join(work, 'out'))).toBe(false);
    } finally {
      process.chdir(cwd);
    }
  });
});

/** Only root can give a file away (chown); CI runs the suite as root. Elsewhere these skip. */
const asRoot = uid === 0 ? it : it.skip;

describe('the key file must belong to the user running regtoken (or root)', () => {
  it.each([
    // [file owner, mode, user regtoken runs as, problem or undefined]
    [1000, 0o600, 1000, undefined],
    [0, 0o600, 1000, undefined],
    [0, 0o644, 0, undefined],
    [
      1001,
      0o600,
      1000,
      'it belongs to user 1001, not to you (user 1000) or root, so someone else could have planted it; if it is yours, run: chown 1000 k.pem',
    ],
    [
      1000,
      0o600,
      0,
      'it belongs to user 1000, not to you (user 0) or root, so someone else could have planted it; if it is yours, run: chown 0 k.pem',
    ],
    [
      0,
      0o1777,
      1000,
      'group and others can write it (mode 1777), so anyone could have replaced it; if it is yours, run: chmod go-w k.pem',
    ],
  ])('owner %i, mode %o, run as user %i', (owner, mode, user, problem) => {
    expect(keyFileProblem('k.pem', { uid: owner, mode: 0o100000 | mode }, user)).toBe(problem);
  });

  asRoot('accepts a key owned by root for any user', async () => {
    await expect(prepare(new PemSigner(key, { create: false, uid: 1000 }))).resolves.toMatchObject({
      alg: 'ES256',
    });
  });

  asRoot('refuses a key really owned by another user', async () => {
    chownSync(key, 4242, 4242);
    const r = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      key,
      '--out',
      join(dir, 'o'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `regtoken: signing key ${key}: it belongs to user 4242, not to you (user 0) or root, so someone else could have planted it; if it is yours, run: chown 0 ${key}\n`,
    );
  });
});
