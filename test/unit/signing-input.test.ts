/**
 * signEncoded writes each signing input into one reused buffer while the signer answers at once
 * (lambda/core/token.ts). These tests hold it to what that must never change: every token's
 * signature is over its own `header.claims`, however the signer answers and however long the
 * input is.
 */

import { createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { claimsEncoder, signEncoded, type TokenSigner } from '../../lambda/core/token.js';
import { FIXED_NOW, fixedEcKey } from '../helpers/keys.js';

const key = fixedEcKey();
const publicKey = createPublicKey(key);
const es256 = (input: Uint8Array) => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });

/** True when the token's signature verifies over its own `header.claims`. */
function verifies(token: string): boolean {
  const dot = token.lastIndexOf('.');
  return verify(
    'sha256',
    Buffer.from(token.slice(0, dot)),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(token.slice(dot + 1), 'base64url'),
  );
}

const encode = claimsEncoder({ issuer: 'iss', service: 'svc', now: FIXED_NOW });
const claims = (subject: string, repositories = 1) =>
  encode({
    subject,
    ttlSeconds: 3600,
    jti: `jti-${subject}`,
    access: Array.from({ length: repositories }, (_, i) => ({
      type: 'repository',
      name: `team-a/app-${i}`,
      actions: ['pull'],
    })),
  });

describe('signing inputs', () => {
  it('stay with a signer that answers later, while other tokens are signed meanwhile', async () => {
    // A remote signer (KMS direct mode) reads its input only when it answers.
    const later: TokenSigner = {
      alg: 'ES256',
      keyHeader: { kid: 'k' },
      remote: true,
      sign: (input) =>
        new Promise((resolve) => setImmediate(() => resolve(es256(Buffer.from(input))))),
    };
    const tokens = await Promise.all(
      ['a', 'bb', 'ccc', 'dddd'].map((s) =>
        signEncoded(claims(`arn:aws:iam::111122223333:role/${s}`), later),
      ),
    );
    expect(tokens.map(verifies)).toEqual([true, true, true, true]);
  });

  it('are whole for a signer that answers at once, short or longer than the buffer', async () => {
    const now: TokenSigner = { alg: 'ES256', keyHeader: { kid: 'k' }, sign: es256 };
    const tokens: string[] = [];
    // 1, then 300 access entries (about 20 KB: more than the buffer first made), then 1 again.
    for (const repositories of [1, 300, 1, 2])
      tokens.push(await signEncoded(claims('arn:aws:iam::111122223333:role/r', repositories), now));
    expect(tokens[1]?.length).toBeGreaterThan(16_384);
    expect(tokens.map(verifies)).toEqual([true, true, true, true]);
  });
});
