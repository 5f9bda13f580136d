import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { cli } from '../helpers/cli.js';
import { fixedEcKey } from '../helpers/keys.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
let key: string;
beforeEach(async () => {
  dir = await makeTempDir('cli-');
  key = join(dir, 'key.pem');
  // Mode 0600 whatever the umask: a key file others could write is refused.
  writeFileSync(key, fixedEcKey().export({ type: 'pkcs8', format: 'pem' }) as string, {
    mode: 0o600,
  });
});
afterEach(async () => removeTempDir(dir));

/** Every file under `root` with a hash of its content and its mode, to prove nothing changed. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        out[p.slice(root.length)] =
          `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${statSync(p).mode}`;
    }
  };
  walk(root);
  return out;
}

describe('regtoken --help', () => {
  it.each(['validate', 'mint', 'plan'])('%s --help prints usage and exits 0', async (name) => {
    const r = await cli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: regtoken ${name}`));
  });
  it('lists the commands', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/validate .*\n\s+mint .*\n\s+plan /);
  });
});

describe('usage errors exit 2 with one line', () => {
  it.each([
    [['frobnicate'], 'regtoken: unknown command "frobnicate" (try \'regtoken --help\')'],
    [['mint'], 'regtoken: mint needs --config FILE (or REGTOKEN_CONFIG)'],
    [['mint', '--config'], "regtoken: mint: Option '--config <value>' argument missing"],
    [['mint', '--bogus'], "regtoken: mint: Unknown option '--bogus'"],
    [['validate'], 'regtoken: validate needs at least one FILE'],
    [['plan', '--from', 'a.yaml'], 'regtoken: plan needs --to FILE'],
  ])('%j', async (args, first) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(first);
    expect(r.stdout).toBe('');
  });
});

describe('validate', () => {
  it('exits 0 for a valid file', async () => {
    const r = await cli(['validate', 'examples/grants.yaml']);
    expect(r).toEqual({
      code: 0,
      stdout: 'examples/grants.yaml: valid (3 grants, 4 principals)\n',
      stderr: '',
    });
  });
  it('exits 1 and prints every problem as file:line:col for an invalid one', async () => {
    const r = await cli([
      'validate',
      'examples/grants.yaml',
      'test/fixtures/invalid/many-errors.yaml',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(6);
    expect(r.stderr).toMatch(/^test\/fixtures\/invalid\/many-errors.yaml:4:12: /);
  });
  it('exits 1 with one line for a missing file', async () => {
    const r = await cli(['validate', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`regtoken: ${join(dir, 'nope.yaml')}: no such file\n`);
  });
});

describe('mint into a folder', () => {
  it('writes one token per principal and the trust bundle, and reports them as JSON', async () => {
    const out = join(dir, 'out');
    const r = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--repositories',
      'examples/repositories.txt',
      '--signing-key',
      key,
      '--out',
      out,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.trustBundle).toBe(join(out, 'trust-bundle.pem'));
    expect(
      report.tokens.map((t: { principal: string; path: string }) => [t.principal, t.path]),
    ).toEqual([
      [
        'arn:aws:iam::111122223333:role/ci-runner',
        join(out, 'tokens/111122223333/role/ci-runner.json'),
      ],
      [
        'arn:aws:iam::111122223333:role/registry-admin',
        join(out, 'tokens/111122223333/role/registry-admin.json'),
      ],
      [
        'arn:aws:iam::111122223333:role/web/ec2-web',
        join(out, 'tokens/111122223333/role/ec2-web.json'),
      ],
      ['arn:aws:iam::444455556666:user/alice', join(out, 'tokens/444455556666/user/alice.json')],
    ]);
    const doc = JSON.parse(
      readFileSync(join(out, 'tokens/111122223333/role/ec2-web.json'), 'utf8'),
    );
    expect(Object.keys(doc)).toEqual([
      'principal',
      'registry',
      'token',
      'issuedAt',
      'expiresAt',
      'access',
    ]);
    expect(Date.parse(doc.expiresAt) - Date.parse(doc.issuedAt)).toBe(3600_000);
    expect(statSync(join(out, 'tokens/111122223333/role/ec2-web.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, 'trust-bundle.pem'), 'utf8')).toMatch(
      /^-----BEGIN CERTIFICATE-----\n/,
    );
  });

  it('prints a summary table by default', async () => {
    const r = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      key,
      '--out',
      join(dir, 'o'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^Minted 4 tokens into .* with signing key .* \(ES256, kid [A-Z2-7:]{59}\)\./,
    );
    expect(r.stdout).toMatch(/PRINCIPAL +EXPIRES \(UTC\) +SIZE +ACCESS\n/);
    // Without an inventory, wildcard patterns grant nothing, and the run says so.
    expect(r.stderr).toContain(
      'warning: the grants use wildcard patterns but no repository inventory was given',
    );
  });

  it('writes nothing and leaves the folder exactly as it was when the config is invalid', async () => {
    const out = join(dir, 'out');
    expect(
      (await cli(['mint', '--config', 'examples/grants.yaml', '--signing-key', key, '--out', out]))
        .code,
    ).toBe(0);
    const before = snapshot(out);
    const r = await cli([
      'mint',
      '--config',
      'test/fixtures/invalid/many-errors.yaml',
      '--signing-key',
      key,
      '--out',
      out,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'regtoken: test/fixtures/invalid/many-errors.yaml is invalid; nothing was written',
    );
    expect(snapshot(out)).toEqual(before);
  });

  it('creates no folder and no key when the config is invalid', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      cpSync(join(cwd, 'test/fixtures/invalid/many-errors.yaml'), 'bad.yaml');
      const r = await cli(['mint', '--config', 'bad.yaml', '--out', 'out']);
      expect(r.code).toBe(1);
      expect(readdirSync('.').sort()).toEqual(['bad.yaml', 'key.pem']);
    } finally {
      process.chdir(cwd);
    }
  });

  it('creates the default signing key on first run, mode 0600, and reuses it', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      cpSync(join(cwd, 'examples/grants.yaml'), 'grants.yaml');
      const first = await cli(['mint', '--config', 'grants.yaml']);
      expect(first.code).toBe(0);
      expect(first.stderr).toContain('Created signing key .regtoken/signing-key.pem.');
      expect(statSync('.regtoken/signing-key.pem').mode & 0o777).toBe(0o600);
      const bundle = readFileSync('out/trust-bundle.pem', 'utf8');
      const second = await cli(['mint', '--config', 'grants.yaml']);
      expect(second.stderr).not.toContain('Created signing key');
      expect(readFileSync('out/trust-bundle.pem', 'utf8')).toBe(bundle);
    } finally {
      process.chdir(cwd);
    }
  });

  it('removes tokens of principals no longer granted, and only those', async () => {
    const out = join(dir, 'out');
    await cli(['mint', '--config', 'examples/grants.yaml', '--signing-key', key, '--out', out]);
    const smaller = join(dir, 'smaller.yaml');
    writeFileSync(
      smaller,
      readFileSync('examples/grants.yaml', 'utf8').replace(
        '      - arn:aws:iam::444455556666:user/alice\n',
        '',
      ),
    );
    const r = await cli([
      'mint',
      '--config',
      smaller,
      '--signing-key',
      key,
      '--out',
      out,
      '--json',
    ]);
    expect(JSON.parse(r.stdout).removed).toEqual(['tokens/444455556666/user/alice.json']);
    expect(readdirSync(join(out, 'tokens/111122223333/role')).sort()).toEqual([
      'ci-runner.json',
      'ec2-web.json',
      'registry-admin.json',
    ]);
  });

  it('refuses an oversized token, names the grant, keeps the previous token and exits 1', async () => {
    const out = join(dir, 'out');
    const inv = join(dir, 'repos.txt');
    const names = Array.from({ length: 400 }, (_, i) => `team-z/service-${i}`);
    writeFileSync(inv, `${names.join('\n')}\n`);
    await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      key,
      '--out',
      out,
      '--repositories',
      'examples/repositories.txt',
    ]);
    const adminPath = join(out, 'tokens/111122223333/role/registry-admin.json');
    const previous = readFileSync(adminPath, 'utf8');
    // The registry grew: "**" now expands to 400 repositories.
    const r = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      key,
      '--out',
      out,
      '--repositories',
      inv,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /FAILED arn:aws:iam::111122223333:role\/registry-admin: token would be \d+ bytes, over the limit of 16384 \(registry.maxTokenBytes\); grant #3 \(line 22\) contributes 401 of its 401 access entries/,
    );
    expect(readFileSync(adminPath, 'utf8')).toBe(previous);
    expect(r.stdout).toContain('Minted 3 tokens');
  });

  it('reports an unreadable signing key in one line without key material', async () => {
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const r = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      bad,
      '--out',
      join(dir, 'o'),
    ]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `regtoken: signing key ${bad}: not a PEM private key\n`,
    });
    const missing = await cli([
      'mint',
      '--config',
      'examples/grants.yaml',
      '--signing-key',
      join(dir, 'x.pem'),
    ]);
    expect(missing.stderr).toBe(`regtoken: signing key ${join(dir, 'x.pem')}: no such file\n`);
  });

  it('reports an output folder it cannot create in one line, whoever runs it', async () => {
    // A file where a folder is expected: unwritable to root too (CI runs as root, and root
    // ignores directory permissions).
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder\n');
    const out = join(file, 'out');
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
      stderr: `regtoken: ${out}: part of this path is a file, not a folder\n`,
    });
    expect(readFileSync(file, 'utf8')).toBe('not a folder\n');
  });

  it('reads settings from the environment, flags winning', async () => {
    const out = join(dir, 'env-out');
    const r = await cli(['mint', '--json'], {
      REGTOKEN_CONFIG: 'examples/grants.yaml',
      REGTOKEN_OUT: out,
      REGTOKEN_SIGNING_KEY: key,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).trustBundle).toBe(join(out, 'trust-bundle.pem'));
  });
});

describe('plan', () => {
  it('prints the per-principal plan and exits 0', async () => {
    const to = join(dir, 'to.yaml');
    writeFileSync(
      to,
      readFileSync('examples/grants.yaml', 'utf8').replace(
        'actions: [pull, push]',
        'actions: [pull]',
      ),
    );
    const r = await cli(['plan', '--from', 'examples/grants.yaml', '--to', to]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '~ arn:aws:iam::111122223333:role/ci-runner\n    ~ team-a/app: pull, push → pull\n',
    );
    const json = JSON.parse((await cli(['plan', '--to', to, '--json'])).stdout);
    expect(json.summary).toEqual({ added: 4, removed: 0, changed: 0, unchanged: 0 });
  });
  it('exits 1 when a file is invalid', async () => {
    const r = await cli([
      'plan',
      '--from',
      'examples/grants.yaml',
      '--to',
      'test/fixtures/invalid/empty-grants.yaml',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'test/fixtures/invalid/empty-grants.yaml:6:9: "grants" must not be empty\n',
    );
  });
});
