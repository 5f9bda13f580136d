import { describe, expect, it } from '@jest/globals';
import { setRegistryToken } from '../../lambda/core/docker-config.js';
import { InputError } from '../../lambda/errors.js';

const HOST = 'registry.example.com';
const FILE = '/home/me/.docker/config.json';
const TOKEN = 'eyJ.new.token';

const json = (v: unknown) => JSON.stringify(v);

describe('setRegistryToken: merge rules', () => {
  // what, existing file text (undefined: none) → resulting object, removed fields
  it.each([
    ['no file', undefined, { auths: { [HOST]: { registrytoken: TOKEN } } }, []],
    [
      'an empty file (Docker reads it as {})',
      '  \n',
      { auths: { [HOST]: { registrytoken: TOKEN } } },
      [],
    ],
    ['{} without auths', '{}', { auths: { [HOST]: { registrytoken: TOKEN } } }, []],
    [
      'other registries, credsStore, credHelpers and unknown keys are kept, in order',
      json({
        psFormat: 'table {{.ID}}',
        auths: { 'ghcr.io': { auth: 'dTpw' }, 'https://index.docker.io/v1/': {} },
        credsStore: 'desktop',
        credHelpers: { '123.dkr.ecr.eu-west-1.amazonaws.com': 'ecr-login' },
        currentContext: 'colima',
        plugins: { buildx: { x: '1' } },
      }),
      {
        psFormat: 'table {{.ID}}',
        auths: {
          'ghcr.io': { auth: 'dTpw' },
          'https://index.docker.io/v1/': {},
          [HOST]: { registrytoken: TOKEN },
        },
        credsStore: 'desktop',
        credHelpers: { '123.dkr.ecr.eu-west-1.amazonaws.com': 'ecr-login' },
        currentContext: 'colima',
        plugins: { buildx: { x: '1' } },
      },
      [],
    ],
    [
      'an old token for HOST is replaced in place (HOST keeps its position)',
      json({ auths: { [HOST]: { registrytoken: 'old' }, 'ghcr.io': {} } }),
      { auths: { [HOST]: { registrytoken: TOKEN }, 'ghcr.io': {} } },
      [],
    ],
    [
      'a stored password and email for HOST are removed',
      json({ auths: { [HOST]: { auth: 'dXNlcjpwYXNz', email: 'me@example.com' } } }),
      { auths: { [HOST]: { registrytoken: TOKEN } } },
      ['auth', 'email'],
    ],
    [
      'an identity token for HOST is removed',
      json({ auths: { [HOST]: { identitytoken: 'refresh', registrytoken: 'old' } } }),
      { auths: { [HOST]: { registrytoken: TOKEN } } },
      ['identitytoken'],
    ],
    [
      'a key named __proto__ survives as data',
      '{"__proto__": {"x": 1}, "auths": {}}',
      JSON.parse(`{"__proto__": {"x": 1}, "auths": {"${HOST}": {"registrytoken": "${TOKEN}"}}}`),
      [],
    ],
  ])('%s', (_what, existing, expected, removed) => {
    const r = setRegistryToken(existing, HOST, TOKEN, FILE);
    expect(JSON.parse(r.text)).toEqual(expected);
    expect(Object.keys(JSON.parse(r.text))).toEqual(Object.keys(expected as object));
    expect(r.removed).toEqual(removed);
    expect(r.changed).toBe(true);
    expect(r.text.endsWith('}\n')).toBe(true);
  });

  it('writes tab-indented JSON, as Docker does', () => {
    expect(setRegistryToken(undefined, HOST, TOKEN, FILE).text).toBe(
      `{\n\t"auths": {\n\t\t"${HOST}": {\n\t\t\t"registrytoken": "${TOKEN}"\n\t\t}\n\t}\n}\n`,
    );
  });

  it('reports no change when the file already holds this token for HOST', () => {
    const existing = json({ auths: { [HOST]: { registrytoken: TOKEN } }, credsStore: 'desktop' });
    expect(setRegistryToken(existing, HOST, TOKEN, FILE)).toMatchObject({
      changed: false,
      warnings: [],
    });
  });

  it('says when it replaced stored credentials, without showing them', () => {
    const r = setRegistryToken(
      json({ auths: { [HOST]: { auth: 'c2VjcmV0' } } }),
      HOST,
      TOKEN,
      FILE,
    );
    expect(r.warnings).toEqual([
      `replaced the stored credentials for ${HOST} in ${FILE} (auth): the token takes their place`,
    ]);
    expect(r.warnings.join()).not.toContain('c2VjcmV0');
  });

  it('warns about a credential helper for HOST and keeps it', () => {
    const r = setRegistryToken(
      json({ credHelpers: { [HOST]: 'secretservice', 'other.io': 'pass' } }),
      HOST,
      TOKEN,
      FILE,
    );
    expect(JSON.parse(r.text).credHelpers).toEqual({ [HOST]: 'secretservice', 'other.io': 'pass' });
    expect(r.warnings).toEqual([
      `${FILE} sends ${HOST} to the credential helper docker-credential-secretservice (credHelpers): Docker still uses the token, but fails the pull when that helper fails; remove credHelpers["${HOST}"] unless you need it`,
    ]);
  });

  it('does not warn about a credential helper for another host or a global credsStore', () => {
    const r = setRegistryToken(
      json({ credsStore: 'desktop', credHelpers: { 'other.io': 'pass' } }),
      HOST,
      TOKEN,
      FILE,
    );
    expect(r.warnings).toEqual([]);
  });

  it.each([
    [
      'invalid JSON (the message locates the error and quotes nothing: it may hold passwords)',
      '{"auths": {"ghcr.io": {"auth": "c2VjcmV0"} oops',
      `${FILE} is not valid JSON (line 1, column 44); fix or move it and retry — it was not changed`,
    ],
    [
      'an error on line 2',
      '{\n\t"auths": {',
      `${FILE} is not valid JSON (line 2, column 12); fix or move it and retry — it was not changed`,
    ],
    [
      'a bare word',
      'c2VjcmV0',
      `${FILE} is not valid JSON (syntax error); fix or move it and retry — it was not changed`,
    ],
    [
      'a truncated file',
      '{"auths": ',
      `${FILE} is not valid JSON (unexpected end); fix or move it and retry — it was not changed`,
    ],
    [
      'a JSON array',
      '[]',
      `${FILE} is not a JSON object; fix or move it and retry — it was not changed`,
    ],
    [
      'auths that is not an object',
      '{"auths": []}',
      `${FILE}: "auths" is not an object; fix or move the file and retry — it was not changed`,
    ],
  ])('refuses %s', (_what, existing, message) => {
    expect(() => setRegistryToken(existing, HOST, TOKEN, FILE)).toThrow(new InputError(message));
  });
});
