/**
 * Several registries, several AWS profiles: the user config file's `registries`, which hosts
 * the credential helper serves, where each one's token is and which profile reads it, and the
 * rewrite `regtoken login --helper` makes to the file.
 */

import { describe, expect, it } from '@jest/globals';
import { parseUserConfig, withRoute } from '../../lambda/core/client-settings.js';
import { type RouteSettings, routeFor, servedHosts } from '../../lambda/core/routes.js';
import { InputError } from '../../lambda/errors.js';

const FILE = '/home/me/.config/regtoken/config.json';

const settings = (file: object, env: { from?: string; registry?: string } = {}): RouteSettings => ({
  file: parseUserConfig(JSON.stringify(file), FILE),
  filePath: FILE,
  envFrom: env.from,
  envRegistry: env.registry,
});

describe('the user config file: registries', () => {
  it('parses hosts with a token location and an optional profile', () => {
    expect(
      parseUserConfig(
        JSON.stringify({
          from: 's3://default',
          registries: {
            'registry.example.com': { from: ' s3://prod ' },
            'staging.example.com:5000': { from: 's3://staging', profile: 'staging' },
            'other.example.com': {},
          },
        }),
        FILE,
      ),
    ).toEqual({
      from: 's3://default',
      registries: {
        'registry.example.com': { from: 's3://prod' },
        'staging.example.com:5000': { from: 's3://staging', profile: 'staging' },
        'other.example.com': {},
      },
    });
  });

  it.each([
    [
      { registries: [] },
      `${FILE}: "registries" must be an object like {"registry.example.com": {"from": "s3://TOKEN_BUCKET"}}`,
    ],
    [
      { registries: { 'Registry.Example.com': {} } },
      `${FILE}: registries["Registry.Example.com"]: not a registry host (expected HOST[:PORT] in lower case, e.g. "registry.example.com")`,
    ],
    [
      { registries: { 'https://r.example.com': {} } },
      `${FILE}: registries["https://r.example.com"]: not a registry host (expected HOST[:PORT] in lower case, e.g. "r.example.com")`,
    ],
    [
      { registries: { 'r.example.com': 's3://x' } },
      `${FILE}: registries["r.example.com"] must be an object like {"from": "s3://TOKEN_BUCKET"}`,
    ],
    [
      { registries: { 'r.example.com': { form: 's3://x' } } },
      `${FILE}: registries["r.example.com"]: unknown key "form" (allowed: from, profile)`,
    ],
    [
      { registries: { 'r.example.com': { profile: '' } } },
      `${FILE}: registries["r.example.com"].profile must be a non-empty string`,
    ],
  ])('refuses %j', (file, message) => {
    expect(() => parseUserConfig(JSON.stringify(file), FILE)).toThrow(new InputError(message));
  });
});

describe('which hosts are served, and from where', () => {
  const file = {
    from: 's3://top',
    registry: 'named.example.com',
    registries: {
      'registry.example.com': { from: 's3://prod' },
      'staging.example.com': { profile: 'staging' },
    },
  };

  it('serves the hosts of registries plus the one named registry, sorted', () => {
    expect(servedHosts(settings(file))).toEqual([
      'named.example.com',
      'registry.example.com',
      'staging.example.com',
    ]);
    expect(servedHosts(settings(file, { registry: 'https://Env.Example.com/' }))).toEqual([
      'env.example.com',
      'registry.example.com',
      'staging.example.com',
    ]);
    expect(servedHosts(settings({}))).toEqual([]);
  });

  // server as Docker sends it → from (source), profile; undefined: not served
  it.each([
    ['registry.example.com', { from: 's3://prod', profile: undefined }],
    ['https://registry.example.com/v1/', { from: 's3://prod', profile: undefined }],
    ['REGISTRY.example.com', { from: 's3://prod', profile: undefined }],
    ['staging.example.com', { from: 's3://env', profile: 'staging' }],
    ['named.example.com', { from: 's3://env', profile: undefined }],
    ['docker.io', undefined],
    ['https://index.docker.io/v1/', undefined],
    ['registry.example.com:5000', undefined],
    ['', undefined],
  ])('%s → %j', (server, expected) => {
    const route = routeFor(server, settings(file, { from: 's3://env' }));
    expect(route && { from: route.from.value, profile: route.profile }).toEqual(expected);
  });

  it('takes the most specific location: the host entry, then REGTOKEN_FROM, then the file', () => {
    const at = (host: string, env: { from?: string }) => routeFor(host, settings(file, env))?.from;
    expect(at('registry.example.com', { from: 's3://env' })).toEqual({
      value: 's3://prod',
      source: `${FILE} (registries["registry.example.com"].from)`,
    });
    expect(at('staging.example.com', { from: 's3://env' })).toEqual({
      value: 's3://env',
      source: 'REGTOKEN_FROM',
    });
    expect(at('staging.example.com', {})).toEqual({ value: 's3://top', source: FILE });
  });

  it('says how to give a served host a token location', () => {
    expect(() =>
      routeFor('r.example.com', settings({ registries: { 'r.example.com': {} } })),
    ).toThrow(
      new InputError(
        `no token location for r.example.com: put {"registries": {"r.example.com": {"from": "s3://TOKEN_BUCKET"}}} in ${FILE} (regtoken login --helper does), or set REGTOKEN_FROM`,
      ),
    );
  });
});

describe('login --helper routes a host in the file', () => {
  it('creates the file, adds a host, keeps everything else in order', () => {
    expect(JSON.parse(withRoute(undefined, 'r.example.com', { from: 's3://b' }) ?? '')).toEqual({
      registries: { 'r.example.com': { from: 's3://b' } },
    });
    const existing = JSON.stringify({
      registry: 'a.example.com',
      registries: { 'a.example.com': { from: 's3://a' } },
      from: 's3://top',
    });
    const next = withRoute(existing, 'r.example.com', { from: 's3://b', profile: 'p' }) ?? '';
    expect(Object.keys(JSON.parse(next))).toEqual(['registry', 'registries', 'from']);
    expect(JSON.parse(next).registries).toEqual({
      'a.example.com': { from: 's3://a' },
      'r.example.com': { from: 's3://b', profile: 'p' },
    });
    expect(next.endsWith('}\n')).toBe(true);
    expect(() => parseUserConfig(next, FILE)).not.toThrow();
  });

  it('replaces a host entry and leaves an identical one alone', () => {
    const existing = JSON.stringify({
      registries: { 'r.example.com': { from: 's3://old', profile: 'p' } },
    });
    expect(JSON.parse(withRoute(existing, 'r.example.com', { from: 's3://new' }) ?? '')).toEqual({
      registries: { 'r.example.com': { from: 's3://new' } },
    });
    expect(
      withRoute(existing, 'r.example.com', { from: 's3://old', profile: 'p' }),
    ).toBeUndefined();
  });
});
