/**
 * The client code path with in-memory identity and token sources (the AWS adapters are covered
 * against moto in test/integration/client.test.ts), the user config file, and the parts of the
 * client commands that need no AWS at all: help, usage errors, settings.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { OwnTokenRead } from '../../lambda/adapters/s3/own-token.js';
import { readUserConfig, userConfigPath } from '../../lambda/adapters/user-config.js';
import { type ClientDeps, checkUsable, fetchOwnToken, identify } from '../../lambda/client.js';
import { parseUserConfig, pick } from '../../lambda/core/client-settings.js';
import {
  AccessDeniedError,
  InputError,
  NoTokenError,
  UnsupportedIdentityError,
} from '../../lambda/errors.js';
import { cli } from '../helpers/cli.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const A = '111122223333';
const NOW = new Date('2026-01-02T03:00:00Z');

function fakeDeps(arn: string, read: OwnTokenRead, asked: string[] = []): ClientDeps {
  return {
    identity: { callerArn: async () => arn },
    source: {
      locate: (key) => `s3://tokens-bucket/prefix/${key}`,
      read: async (key) => {
        asked.push(key);
        return read;
      },
    },
    clock: () => NOW,
  };
}

function tokenText(principal: string, exp: number): string {
  const claims = Buffer.from(JSON.stringify({ exp, nbf: exp - 3600, iat: exp - 3600 })).toString(
    'base64url',
  );
  return JSON.stringify({
    principal,
    registry: 'registry.example.com',
    token: `e30.${claims}.c2ln`,
    issuedAt: '',
    expiresAt: '',
    access: [],
  });
}

describe('the client code path', () => {
  it('reads the role token of a role session, by the key without the path', async () => {
    const asked: string[] = [];
    const exp = NOW.getTime() / 1000 + 1800;
    const deps = fakeDeps(
      `arn:aws:sts::${A}:assumed-role/ec2-web/i-0abc`,
      { kind: 'found', text: tokenText(`arn:aws:iam::${A}:role/web/ec2-web`, exp), awsDate: NOW },
      asked,
    );
    const who = await identify(deps);
    expect(who).toMatchObject({
      key: `tokens/${A}/role/ec2-web.json`,
      url: `s3://tokens-bucket/prefix/tokens/${A}/role/ec2-web.json`,
    });
    const fetched = await fetchOwnToken(deps, who);
    expect(asked).toEqual([`tokens/${A}/role/ec2-web.json`]);
    expect(checkUsable(deps, fetched, undefined)).toMatchObject({
      remainingSeconds: 1800,
      skewSeconds: 0,
    });
  });

  it('refuses the root user before reading anything', async () => {
    const asked: string[] = [];
    const deps = fakeDeps(`arn:aws:iam::${A}:root`, { kind: 'missing' }, asked);
    await expect(identify(deps)).rejects.toThrow(UnsupportedIdentityError);
    expect(asked).toEqual([]);
  });

  it('explains a missing token (NoSuchKey)', async () => {
    const deps = fakeDeps(`arn:aws:iam::${A}:user/alice`, { kind: 'missing' });
    await expect(fetchOwnToken(deps, await identify(deps))).rejects.toThrow(
      new NoTokenError(
        `no token for arn:aws:iam::${A}:user/alice at s3://tokens-bucket/prefix/tokens/${A}/user/alice.json yet: arn:aws:iam::${A}:user/alice is not in the grants file, or the minter has not run since it was added`,
      ),
    );
  });

  it('explains access denied, naming the caller, the role and the key', async () => {
    const deps = fakeDeps(`arn:aws:sts::${A}:assumed-role/ci/s`, {
      kind: 'denied',
      code: 'AccessDenied',
    });
    await expect(fetchOwnToken(deps, await identify(deps))).rejects.toThrow(
      new AccessDeniedError(
        `access denied reading s3://tokens-bucket/prefix/tokens/${A}/role/ci.json as arn:aws:sts::${A}:assumed-role/ci/s: role ci in account ${A} has no token there yet (not in the grants file, or not minted yet), or its IAM policy does not allow s3:GetObject on that key; ask the registry administrators`,
      ),
    );
  });
});

describe('settings: flag, then environment, then the user config file', () => {
  it('picks the first present source and names it', () => {
    expect(
      pick([undefined, '--from'], ['s3://env-b', 'REGTOKEN_FROM'], ['s3://f', 'file']),
    ).toEqual({ value: 's3://env-b', source: 'REGTOKEN_FROM' });
    expect(pick([undefined, '--from'], [undefined, 'REGTOKEN_FROM'])).toBeUndefined();
  });

  it('finds the config file under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(userConfigPath({ xdgConfigHome: '/x', home: '/h' })).toBe('/x/regtoken/config.json');
    expect(userConfigPath({ xdgConfigHome: undefined, home: '/h' })).toBe(
      '/h/.config/regtoken/config.json',
    );
  });

  it.each([
    [
      '{"from": " s3://b/p ", "registry": "r.example.com"}',
      { from: 's3://b/p', registry: 'r.example.com' },
    ],
    ['{}', {}],
  ])('parses %s', (text, expected) => {
    expect(parseUserConfig(text, 'c.json')).toEqual(expected);
  });

  it.each([
    ['{', /^c\.json: not valid JSON \(.+\)$/],
    ['[]', /^c\.json: expected a JSON object like \{"from": "s3:\/\/TOKEN_BUCKET"\}$/],
    ['{"form": "s3://b"}', /^c\.json: unknown key "form" \(allowed: from, registry, registries\)$/],
    ['{"from": 3}', /^c\.json: "from" must be a non-empty string$/],
  ])('refuses %s', (text, message) => {
    expect(() => parseUserConfig(text, 'c.json')).toThrow(InputError);
    expect(() => parseUserConfig(text, 'c.json')).toThrow(message);
  });
});

describe('client commands without AWS', () => {
  let home: string;
  beforeEach(async () => {
    home = await makeTempDir('client-unit-');
  });
  afterEach(async () => removeTempDir(home));
  const env = () => ({ HOME: home, DOCKER_CONFIG: join(home, 'docker') });

  it.each(['login', 'token', 'whoami'])('%s --help prints usage and exits 0', async (name) => {
    const r = await cli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^Usage: regtoken ${name} (\\[--helper\\] )?\\[--from s3://TOKEN_BUCKET`),
    );
  });

  it('lists them in the overview', async () => {
    const r = await cli(['--help']);
    expect(r.stdout).toMatch(/\n\s+login .*\n\s+token .*\n\s+whoami /);
  });

  it('asks for a token location when none is set, exit 2', async () => {
    const r = await cli(['login'], env());
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr: `regtoken: no token location: pass --from s3://TOKEN_BUCKET[/PREFIX], set REGTOKEN_FROM, or put {"from": "s3://TOKEN_BUCKET"} in ${home}/.config/regtoken/config.json\nRun 'regtoken login --help' for usage.\n`,
    });
  });

  it.each([
    [
      ['token', '--from', './out'],
      {},
      '--from: "./out" is not a token location (expected s3://TOKEN_BUCKET[/PREFIX])',
    ],
    [
      ['whoami'],
      { REGTOKEN_FROM: 'https://bucket' },
      'REGTOKEN_FROM: "https://bucket" is not a token location (expected s3://TOKEN_BUCKET[/PREFIX])',
    ],
    [['login', '--registry'], {}, "login: Option '--registry <value>' argument missing"],
    [['token', '--json'], {}, "token: Unknown option '--json'"],
  ])('%j is a usage error', async (args, extra, message) => {
    const r = await cli(args, { ...env(), ...extra });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`regtoken: ${message}`);
  });

  it('names a broken user config file, exit 1, and writes nothing', async () => {
    const dir = join(home, '.config', 'regtoken');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{"from": "s3://bucket", "regsitry": "x"}');
    const r = await cli(['login'], env());
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `regtoken: ${dir}/config.json: unknown key "regsitry" (allowed: from, registry, registries)\n`,
    });
    await expect(readUserConfig(join(home, 'nope', 'config.json'))).resolves.toEqual({});
  });

  it('takes the location from the config file under XDG_CONFIG_HOME (and says where it came from)', async () => {
    const xdg = join(home, 'xdg');
    mkdirSync(join(xdg, 'regtoken'), { recursive: true });
    writeFileSync(join(xdg, 'regtoken', 'config.json'), '{"from": "file:///tmp"}');
    const r = await cli(['token'], { ...env(), XDG_CONFIG_HOME: xdg });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `regtoken: ${xdg}/regtoken/config.json: "file:///tmp" is not a token location (expected s3://TOKEN_BUCKET[/PREFIX])`,
    );
  });
});
