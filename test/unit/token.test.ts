import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { compactVerify, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { localSigningKey } from '../../lambda/adapters/pem-signer.js';
import { parseGrantsSync } from '../../lambda/core/config-positions.js';
import { resolveAccess } from '../../lambda/core/grants.js';
import { libtrustKeyId } from '../../lambda/core/libtrust.js';
import {
  buildClaims,
  claimsEncoder,
  decodeClaims,
  signEncoded,
  signToken,
} from '../../lambda/core/token.js';
import { FIXED_NOW, fixedEcKey } from '../helpers/keys.js';

const GRANTS = `version: 1
registry: {host: registry.example.com, service: registry.example.com, issuer: regtoken}
tokenTtl: 12h
grants:
  - principal: arn:aws:iam::111122223333:role/ci-runner
    access:
      - {repository: team-a/app, actions: [push]}
      - {repository: base/*, actions: [pull]}
  - principal: arn:aws:iam::111122223333:role/ci-runner
    access:
      - {repository: team-a/app, actions: [delete]}
      - catalog: true
`;

describe('claims', () => {
  it('are exactly what the registry checks, with a fixed clock', () => {
    const config = parseGrantsSync(GRANTS, 'g.yaml');
    const [access] = resolveAccess(config, ['base/alpine', 'other/x']);
    if (!access) throw new Error('no access');
    const claims = buildClaims({
      issuer: config.registry.issuer,
      service: config.registry.service,
      subject: access.principal.arn,
      now: new Date(FIXED_NOW.getTime() + 999), // sub-second part is dropped
      ttlSeconds: access.ttlSeconds,
      jti: 'jti-1',
      access: access.access,
    });
    const iat = FIXED_NOW.getTime() / 1000;
    expect(claims).toEqual({
      iss: 'regtoken',
      sub: 'arn:aws:iam::111122223333:role/ci-runner',
      aud: 'registry.example.com',
      exp: iat + 12 * 3600,
      nbf: iat,
      iat,
      jti: 'jti-1',
      access: [
        { type: 'repository', name: 'base/alpine', actions: ['pull'] },
        { type: 'repository', name: 'team-a/app', actions: ['pull', 'push', 'delete'] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
      ],
    });
    expect(typeof claims.aud).toBe('string'); // registry 2.8 rejects an array
    expect(access.impliedPull).toEqual(['team-a/app']);
  });
});

describe('signed tokens', () => {
  it('carry alg, typ and the libtrust kid, and verify with the published certificate', async () => {
    const key = fixedEcKey();
    const signing = await localSigningKey(key, FIXED_NOW, undefined, 'test key');
    const claims = buildClaims({
      issuer: 'regtoken',
      service: 'svc',
      subject: 'arn:aws:iam::111122223333:user/alice',
      now: new Date(),
      ttlSeconds: 600,
      jti: 'j',
      access: [],
    });
    const token = await signToken(claims, signing);
    const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
    expect(decodeProtectedHeader(token)).toEqual({
      alg: 'ES256',
      typ: 'JWT',
      kid: libtrustKeyId(spki),
    });
    const cert = await importX509(signing.trust.bundlePem, 'ES256');
    const { payload } = await jwtVerify(token, cert, { issuer: 'regtoken', audience: 'svc' });
    expect(payload).toEqual(claims);
    expect(decodeClaims(token)).toEqual(claims);
  });

  it('are refused when tampered with', async () => {
    const signing = await localSigningKey(fixedEcKey(), FIXED_NOW, undefined, 'k');
    const claims = buildClaims({
      issuer: 'i',
      service: 's',
      subject: 'arn:aws:iam::111122223333:user/a',
      now: new Date(),
      ttlSeconds: 600,
      jti: 'j',
      access: [{ type: 'repository', name: 'a', actions: ['pull'] }],
    });
    const [h, , s] = (await signToken(claims, signing)).split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...claims, access: [{ type: 'repository', name: 'a', actions: ['*'] }] }),
    ).toString('base64url');
    const cert = await importX509(signing.trust.bundlePem, 'ES256');
    await expect(compactVerify(`${h}.${forged}.${s}`, cert)).rejects.toThrow('signature');
  });

  it('encode the claims exactly as JSON.stringify does, for shared and unshared access lists', async () => {
    const config = parseGrantsSync(
      `version: 1
registry: {host: r.test, service: r.test, issuer: regtoken}
grants:
  - principals: [arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:role/b]
    access: [{repository: base/*, actions: [pull]}, {catalog: true}]
`,
      'g.yaml',
    );
    const [a, b] = resolveAccess(config, ['base/alpine', 'base/debian']);
    if (!a || !b) throw new Error('no access');
    expect(a.access).toBe(b.access); // one list for both principals
    const signing = await localSigningKey(fixedEcKey(), FIXED_NOW, undefined, 'k');
    const payloadOf = (token: string) => token.split('.')[1] ?? '';
    // The run's encoder reuses the list's encoding after a head of any length: each remainder
    // of its bytes by 3, in any order, with text of one to four UTF-8 bytes a character.
    const remainders = new Set<number>();
    for (const [issuer, service] of [
      ['regtoken', 'r.test'],
      ['régtoken', 'r "quoted" \\ service'],
      ['レジストリ', 'r.test'],
      ['reg😀token', 'tab\there'],
    ] as const) {
      const encode = claimsEncoder({ issuer, service, now: FIXED_NOW });
      for (const jti of ['j"1', 'j"12', 'j"123', 'j"1', 'x'])
        for (const [access, ttlSeconds] of [
          [a, 600],
          [b, 3600],
          [a, 86_400],
        ] as const) {
          const subject = access.principal.arn;
          const claims = buildClaims({
            issuer,
            service,
            subject,
            now: FIXED_NOW,
            ttlSeconds,
            jti,
            access: access.access,
          });
          const json = JSON.stringify(claims);
          const expected = Buffer.from(json).toString('base64url');
          const encoded = encode({ subject, ttlSeconds, jti, access: access.access });
          expect(encoded.payload.join('')).toBe(expected);
          expect([encoded.iat, encoded.exp]).toEqual([claims.iat, claims.exp]);
          expect(payloadOf(await signEncoded(encoded, signing))).toBe(expected);
          expect(payloadOf(await signToken(claims, signing))).toBe(expected);
          remainders.add(Buffer.byteLength(json.slice(0, json.indexOf(',"access":') + 10)) % 3);
        }
    }
    expect([...remainders].sort()).toEqual([0, 1, 2]);
    // Any other key order is serialized as it is.
    const reordered = { access: a.access, iss: 'i', sub: 's', aud: 'a', exp: 2, nbf: 1, iat: 1 };
    const token = await signToken(reordered as Parameters<typeof signToken>[0], signing);
    expect(Buffer.from(payloadOf(token), 'base64url').toString('utf8')).toBe(
      JSON.stringify(reordered),
    );
  });

  it('reuse a published certificate that already matches the key', async () => {
    const first = await localSigningKey(fixedEcKey(), FIXED_NOW, undefined, 'k');
    const again = await localSigningKey(fixedEcKey(), FIXED_NOW, first.trust.bundlePem, 'k');
    expect(again.trust.bundlePem).toBe(first.trust.bundlePem);
    const other = await localSigningKey(fixedEcKey(2), FIXED_NOW, first.trust.bundlePem, 'k');
    expect(other.trust.bundlePem).not.toBe(first.trust.bundlePem);
  });

  it('support RS256 with RSA keys and refuse weak or unsupported keys', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const signing = await localSigningKey(rsa, FIXED_NOW, undefined, 'rsa');
    expect(signing.alg).toBe('RS256');
    const token = await signToken(
      buildClaims({
        issuer: 'i',
        service: 's',
        subject: 'arn:aws:iam::111122223333:user/a',
        now: new Date(),
        ttlSeconds: 600,
        jti: 'j',
        access: [],
      }),
      signing,
    );
    await expect(
      jwtVerify(token, await importX509(signing.trust.bundlePem, 'RS256')),
    ).resolves.toBeDefined();
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    await expect(localSigningKey(weak, FIXED_NOW, undefined, 'weak')).rejects.toThrow(
      'weak: unsupported key type rsa (1024 bits)',
    );
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    await expect(localSigningKey(p384, FIXED_NOW, undefined, 'p384')).rejects.toThrow(
      'use a P-256 EC key (ES256)',
    );
  });
});
