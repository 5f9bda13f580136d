/**
 * The published JWKS of a local key: its one key is the signing key's public half, with the
 * token header's `kid`, so an independent verifier (jose, as a registry v3 `auth.token.jwks`
 * would) accepts the tokens the key signs.
 */

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from 'jose';
import { localSigningKey } from '../../lambda/adapters/pem-signer.js';
import { buildClaims, signToken } from '../../lambda/core/token.js';
import { FIXED_NOW, fixedEcKey } from '../helpers/keys.js';

const rsa = (_seed: number): KeyObject =>
  generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

describe('the JWKS of a local signing key', () => {
  it.each([
    [
      'P-256',
      (seed: number) => fixedEcKey(seed),
      'ES256',
      ['kty', 'x', 'y', 'crv', 'kid', 'alg', 'use'],
    ],
    ['RSA', rsa, 'RS256', ['kty', 'n', 'e', 'kid', 'alg', 'use']],
  ])('holds the %s public key under the kid the tokens carry', async (_, make, alg, members) => {
    const key = await localSigningKey(make(1), FIXED_NOW, undefined, 'test key');
    const [jwk] = key.trust.jwks.keys;
    expect(Object.keys(jwk ?? {})).toEqual(members);
    expect(jwk).toMatchObject({ alg, use: 'sig', kid: (key.keyHeader as { kid: string }).kid });
    const token = await signToken(
      buildClaims({
        issuer: 'iss',
        service: 'registry.test',
        subject: 'arn:aws:iam::111122223333:role/ci',
        now: new Date(),
        ttlSeconds: 600,
        jti: 'j',
        access: [],
      }),
      key,
    );
    const jwks = createLocalJWKSet(key.trust.jwks as JSONWebKeySet);
    const { payload } = await jwtVerify(token, jwks, { audience: 'registry.test', issuer: 'iss' });
    expect(payload.sub).toBe('arn:aws:iam::111122223333:role/ci');
    // Another key's JWKS does not verify it.
    const other = await localSigningKey(make(2), FIXED_NOW, undefined, 'other');
    await expect(
      jwtVerify(token, createLocalJWKSet(other.trust.jwks as JSONWebKeySet)),
    ).rejects.toThrow();
  });
});
