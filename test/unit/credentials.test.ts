/**
 * The credential helpers' token path (lambda/credentials.ts) with an in-memory AWS side and a
 * real cache directory: a cached answer touches no AWS client at all; a claim STS contradicts
 * is never remembered, so another identity cannot reach the token; a cache that cannot be
 * written costs time, not the answer; a token for another registry is refused. The AWS side
 * itself is exercised against moto in test/integration/credential-helper.test.ts.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { TokenCache } from '../../lambda/adapters/token-cache.js';
import type { AwsClientDeps } from '../../lambda/client.js';
import type { CredentialSource } from '../../lambda/core/aws-source.js';
import type { Route } from '../../lambda/core/routes.js';
import {
  type AwsSide,
  type CredentialsDeps,
  registryCredentials,
} from '../../lambda/credentials.js';
import { UnknownRegistryError } from '../../lambda/errors.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const A = '111122223333';
const NOW = new Date('2026-01-02T03:00:00Z');
const EXP = NOW.getTime() / 1000 + 3600;
const HOST = 'registry.example.com';
const ROUTE: Route = {
  host: HOST,
  from: { value: 's3://tokens', source: 'test' },
  profile: undefined,
};
const DEPLOY = { kind: 'role', account: A, name: 'deploy' } as const;

/** A token document of `principal` for `registry`, its token marked by `mark`. */
function doc(principal: string, mark: string, registry = HOST): string {
  const claims = Buffer.from(JSON.stringify({ exp: EXP, mark })).toString('base64url');
  return JSON.stringify({
    principal,
    registry,
    token: `e30.${claims}.c2ln`,
    issuedAt: '',
    expiresAt: '',
    access: [],
  });
}

/** An AWS side that counts its calls; `caller` and `text` say what STS and S3 would answer. */
function fakeAws(source: CredentialSource, who: { caller: string; text: string }) {
  const calls: string[] = [];
  const client: AwsClientDeps = {
    identity: {
      callerArn: async () => {
        calls.push('STS GetCallerIdentity');
        return who.caller;
      },
    },
    source: {
      locate: (key) => `s3://tokens/${key}`,
      read: async (key) => {
        calls.push(`S3 GetObject ${key}`);
        return { kind: 'found', text: who.text, awsDate: NOW };
      },
    },
    clock: () => NOW,
    credentialKeyId: async () => 'ASIA',
  };
  let created = 0;
  const aws: AwsSide = {
    source: async () => source,
    clientDeps: async () => {
      created += 1;
      return client;
    },
  };
  return { aws, calls, clientsCreated: () => created };
}

let dir: string;
let cache: TokenCache;
beforeEach(async () => {
  dir = await makeTempDir('credentials-');
  cache = new TokenCache(join(dir, 'regtoken'));
});
afterEach(async () => removeTempDir(dir));

const deps = (aws: AwsSide): CredentialsDeps => ({ cache, clock: () => NOW, aws });
const profile = (claim = DEPLOY): CredentialSource => ({
  kind: 'known',
  material: '["profile","deploy"]',
  description: 'AWS profile deploy',
  claim,
});

describe('registryCredentials', () => {
  it('fetches once, then answers from the cache without creating any AWS client', async () => {
    const who = {
      caller: `arn:aws:sts::${A}:assumed-role/deploy/s1`,
      text: doc(`arn:aws:iam::${A}:role/deploy`, 'one'),
    };
    const cold = fakeAws(profile(), who);
    const first = await registryCredentials(ROUTE, deps(cold.aws));
    expect(first).toMatchObject({ fromCache: false, host: HOST, expiresAt: EXP, warnings: [] });
    expect(cold.calls).toEqual([
      'STS GetCallerIdentity',
      `S3 GetObject tokens/${A}/role/deploy.json`,
    ]);
    const warm = fakeAws(profile(), who);
    const second = await registryCredentials(ROUTE, deps(warm.aws));
    expect(second).toMatchObject({ fromCache: true, token: first.token, remainingSeconds: 3600 });
    expect(warm.calls).toEqual([]);
    expect(warm.clientsCreated()).toBe(0);
  });

  it('does not remember a source whose claim STS contradicts: every answer asks STS again', async () => {
    // The profile claims role deploy; STS says the credentials are another role's.
    const who = {
      caller: `arn:aws:sts::${A}:assumed-role/other/s1`,
      text: doc(`arn:aws:iam::${A}:role/other`, 'other'),
    };
    const first = fakeAws(profile(), who);
    const answer = await registryCredentials(ROUTE, deps(first.aws));
    expect(answer.principal).toBe(`arn:aws:iam::${A}:role/other`);
    expect(await cache.identity('["profile","deploy"]')).toBeUndefined();
    const again = fakeAws(profile(), who);
    await registryCredentials(ROUTE, deps(again.aws));
    expect(again.calls).toEqual(['STS GetCallerIdentity']); // its token is cached, its name is not
  });

  it('never answers one source with the token cached for another', async () => {
    const deploy = {
      caller: `arn:aws:sts::${A}:assumed-role/deploy/s`,
      text: doc(`arn:aws:iam::${A}:role/deploy`, 'deploy'),
    };
    const reader = {
      caller: `arn:aws:sts::${A}:assumed-role/reader/s`,
      text: doc(`arn:aws:iam::${A}:role/reader`, 'reader'),
    };
    const readerSource: CredentialSource = {
      kind: 'known',
      material: '["profile","reader"]',
      description: 'AWS profile reader',
      claim: { kind: 'role', account: A, name: 'reader' },
    };
    const a = await registryCredentials(ROUTE, deps(fakeAws(profile(), deploy).aws));
    const b = await registryCredentials(ROUTE, deps(fakeAws(readerSource, reader).aws));
    expect(b.fromCache).toBe(false);
    expect(b.token).not.toBe(a.token);
    expect((await registryCredentials(ROUTE, deps(fakeAws(profile(), deploy).aws))).token).toBe(
      a.token,
    );
    expect((await registryCredentials(ROUTE, deps(fakeAws(readerSource, reader).aws))).token).toBe(
      b.token,
    );
  });

  it('answers even when the cache cannot be written, and says so', async () => {
    writeFileSync(join(dir, 'regtoken'), 'a file where the directory should be');
    const who = {
      caller: `arn:aws:iam::${A}:user/alice`,
      text: doc(`arn:aws:iam::${A}:user/alice`, 'a'),
    };
    const keys: CredentialSource = { kind: 'known', material: '["env"]', description: 'keys' };
    const r = await registryCredentials(ROUTE, deps(fakeAws(keys, who).aws));
    expect(r.fromCache).toBe(false);
    expect(r.warnings).toEqual([
      `cannot write the token cache ${join(dir, 'regtoken')} (ENOTDIR): every request asks AWS until it can; check that directory's owner and permissions`,
    ]);
  });

  it('refuses a token for another registry than the host asked for', async () => {
    const who = {
      caller: `arn:aws:iam::${A}:user/alice`,
      text: doc(`arn:aws:iam::${A}:user/alice`, 'a', 'other.example.com'),
    };
    const attempt = registryCredentials(ROUTE, deps(fakeAws(profile(), who).aws));
    await expect(attempt).rejects.toThrow(UnknownRegistryError);
    await expect(registryCredentials(ROUTE, deps(fakeAws(profile(), who).aws))).rejects.toThrow(
      `your token at s3://tokens/tokens/${A}/user/alice.json is for registry other.example.com, not ${HOST}: give ${HOST} its own token location (registries["${HOST}"].from in the regtoken config file; this one came from test), or ask for a grant on ${HOST}`,
    );
  });
});
