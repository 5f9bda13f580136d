import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseTrustBundle } from '../../lambda/core/trust.js';
import { type RefusalReason, TokenVerifier } from '../../lambda/core/verify.js';
import { registryClaims, signJws } from '../helpers/jws.js';
import { makeIssued, makeRoot, type TestCert } from '../helpers/pki.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { libtrustKeyId } from '../helpers/tokens.js';

/**
 * The verifier against certificates made by openssl. Each row is one token and the expected
 * outcome: accepted, or refused for a stated reason. The integration test (realm.test.ts)
 * checks the same kinds of token against the real registry.
 */

/** Set once the certificates exist: openssl makes them valid from the second they are made. */
let NOW: Date;
const SETTINGS = () => ({ issuer: 'regtoken', service: 'registry.test', now: NOW });

let dir: string;
let root: TestCert; // a CA in the bundle
let rsaRoot: TestCert; // an RSA CA in the bundle
let notCa: TestCert; // a bundle certificate that is not a CA
let foreign: TestCert; // a CA not in the bundle
let leaf: TestCert; // issued by root
let foreignLeaf: TestCert; // issued by foreign
let intermediate: TestCert; // a CA issued by root
let deepLeaf: TestCert; // issued by intermediate
let notCaLeaf: TestCert; // issued by notCa
let verifier: TokenVerifier;

const kidOf = (c: TestCert) => libtrustKeyId(createPublicKey(c.privateKey));

beforeAll(async () => {
  dir = await makeTempDir('verify');
  root = await makeRoot(dir, 'root');
  rsaRoot = await makeRoot(dir, 'rsa-root', { rsa: true });
  notCa = await makeRoot(dir, 'not-ca', { ca: false });
  foreign = await makeRoot(dir, 'foreign');
  leaf = await makeIssued(dir, 'leaf', root);
  foreignLeaf = await makeIssued(dir, 'foreign-leaf', foreign);
  intermediate = await makeIssued(dir, 'intermediate', root, { ca: true });
  deepLeaf = await makeIssued(dir, 'deep-leaf', intermediate);
  notCaLeaf = await makeIssued(dir, 'not-ca-leaf', notCa);
  NOW = new Date();
  verifier = new TokenVerifier(
    parseTrustBundle(`${root.pem}${rsaRoot.pem}${notCa.pem}`, 'bundle.pem'),
  );
}, 60_000);

afterAll(async () => {
  await removeTempDir(dir);
});

/** Name, token, expected outcome, and optionally the verifier's clock in seconds after NOW. */
type Row = readonly [string, () => string, RefusalReason | 'ok', number?];

const es = (cert: TestCert, claims = registryClaims(NOW), extra: Record<string, unknown> = {}) =>
  signJws({ alg: 'ES256', typ: 'JWT', kid: kidOf(cert), ...extra }, claims, cert.privateKey);
const chain = (signer: TestCert, x5c: string[], claims = registryClaims(NOW)) =>
  signJws({ alg: 'ES256', typ: 'JWT', x5c }, claims, signer.privateKey);
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
const exp = (offset: number) =>
  registryClaims(NOW, { exp: Math.floor(NOW.getTime() / 1000) + offset });

const rows: Row[] = [
  // accepted
  ['kid of a bundle certificate (ES256)', () => es(root), 'ok'],
  [
    'kid of an RSA bundle certificate (RS256)',
    () =>
      signJws(
        { alg: 'RS256', typ: 'JWT', kid: kidOf(rsaRoot) },
        registryClaims(NOW),
        rsaRoot.privateKey,
      ),
    'ok',
  ],
  ['x5c leaf issued by a bundle root', () => chain(leaf, [leaf.x5c]), 'ok'],
  ['x5c leaf followed by its bundle root', () => chain(leaf, [leaf.x5c, root.x5c]), 'ok'],
  ['x5c that is a bundle root itself', () => chain(root, [root.x5c]), 'ok'],
  [
    'nbf 50 s ahead (within the leeway)',
    () => es(root, registryClaims(NOW, { nbf: Math.floor(NOW.getTime() / 1000) + 50 })),
    'ok',
  ],
  ['exactly 60 s left', () => es(root, exp(60)), 'ok'],
  [
    'no access claim (the registry allows /v2/)',
    () => es(root, { ...registryClaims(NOW), access: undefined }),
    'ok',
  ],
  // malformed
  ['two parts', () => es(root).split('.').slice(0, 2).join('.'), 'malformed'],
  ['four parts', () => `${es(root)}.x`, 'malformed'],
  ['not base64url', () => `${es(root).slice(0, 10)}!${es(root).slice(11)}`, 'malformed'],
  ['header not JSON', () => `bm90LWpzb24.${es(root).split('.').slice(1).join('.')}`, 'malformed'],
  ['empty signature', () => `${es(root).split('.').slice(0, 2).join('.')}.`, 'malformed'],
  [
    'aud as an array (registry 2.8: malformed)',
    () => es(root, registryClaims(NOW, { aud: ['registry.test'] })),
    'malformed',
  ],
  ['exp as a string', () => es(root, registryClaims(NOW, { exp: '9999999999' })), 'malformed'],
  ['exp not an integer', () => es(root, registryClaims(NOW, { exp: 1.5e9 + 0.5 })), 'malformed'],
  ['no exp', () => es(root, { ...registryClaims(NOW), exp: undefined }), 'malformed'],
  [
    'access not a list of entries',
    () => es(root, registryClaims(NOW, { access: [{ type: 'repository' }] })),
    'malformed',
  ],
  // algorithms
  [
    'alg none',
    () => signJws({ alg: 'none', typ: 'JWT', kid: kidOf(root) }, registryClaims(NOW), undefined),
    'algorithm',
  ],
  [
    'alg HS256 keyed with the public key',
    () =>
      signJws(
        { alg: 'HS256', typ: 'JWT', kid: kidOf(root) },
        registryClaims(NOW),
        createPublicKey(root.privateKey).export({ type: 'spki', format: 'der' }),
      ),
    'algorithm',
  ],
  ['alg ES384', () => es(root, registryClaims(NOW), { alg: 'ES384' }), 'algorithm'],
  [
    'RS256 claimed for an EC key',
    () =>
      signJws(
        { alg: 'RS256', typ: 'JWT', kid: kidOf(root) },
        registryClaims(NOW),
        rsaRoot.privateKey,
      ),
    'algorithm',
  ],
  // keys
  ['kid not in the bundle', () => es(foreign), 'untrusted-key'],
  [
    'no kid, no x5c',
    () => signJws({ alg: 'ES256', typ: 'JWT' }, registryClaims(NOW), root.privateKey),
    'untrusted-key',
  ],
  [
    'an embedded jwk (even of a trusted key)',
    () =>
      signJws(
        { alg: 'ES256', typ: 'JWT', jwk: { kty: 'EC' } },
        registryClaims(NOW),
        root.privateKey,
      ),
    'untrusted-key',
  ],
  ['x5c leaf of a foreign root', () => chain(foreignLeaf, [foreignLeaf.x5c]), 'untrusted-key'],
  [
    'x5c leaf of a foreign root, foreign root attached',
    () => chain(foreignLeaf, [foreignLeaf.x5c, foreign.x5c]),
    'untrusted-key',
  ],
  [
    'x5c through an intermediate (not supported)',
    () => chain(deepLeaf, [deepLeaf.x5c, intermediate.x5c]),
    'untrusted-key',
  ],
  [
    'x5c issued by a bundle certificate that is not a CA',
    () => chain(notCaLeaf, [notCaLeaf.x5c]),
    'untrusted-key',
  ],
  [
    'x5c not a certificate',
    () => chain(leaf, [Buffer.from('junk').toString('base64')]),
    'untrusted-key',
  ],
  [
    'x5c leaf expired (clock 3 days on)',
    () => chain(leaf, [leaf.x5c], registryClaims(at(3 * 86400))),
    'untrusted-key',
    3 * 86400,
  ],
  [
    'x5c with too many entries',
    () => chain(leaf, [leaf.x5c, root.x5c, root.x5c, root.x5c, root.x5c]),
    'untrusted-key',
  ],
  // signatures
  [
    'claims changed after signing',
    () => {
      const [h, , s] = es(root).split('.');
      return `${h}.${Buffer.from(JSON.stringify(registryClaims(NOW, { access: [{ type: 'repository', name: 'team-a/app', actions: ['*'] }] }))).toString('base64url')}.${s}`;
    },
    'signature',
  ],
  [
    'signed by another key under a trusted kid',
    () =>
      signJws(
        { alg: 'ES256', typ: 'JWT', kid: kidOf(root) },
        registryClaims(NOW),
        foreign.privateKey,
      ),
    'signature',
  ],
  ['x5c leaf presented, signed by another key', () => chain(foreignLeaf, [leaf.x5c]), 'signature'],
  // claims
  ['another issuer', () => es(root, registryClaims(NOW, { iss: 'someone-else' })), 'issuer'],
  ['another audience', () => es(root, registryClaims(NOW, { aud: 'other.registry' })), 'audience'],
  ['expired', () => es(root, exp(-1)), 'expired'],
  [
    'expired 30 s ago (the registry still allows it; the endpoint does not)',
    () => es(root, exp(-30)),
    'expired',
  ],
  ['59 s left', () => es(root, exp(59)), 'expiring'],
  [
    'nbf 61 s ahead',
    () => es(root, registryClaims(NOW, { nbf: Math.floor(NOW.getTime() / 1000) + 61 })),
    'not-yet-valid',
  ],
];

describe('TokenVerifier', () => {
  it.each(rows.map(([name, make, expected, now]) => ({ name, make, expected, now })))(
    '$name → $expected',
    ({ make, expected, now }) => {
      const result = verifier.verify(make(), {
        ...SETTINGS(),
        now: now === undefined ? NOW : at(now),
      });
      if (expected === 'ok') {
        expect(result).toMatchObject({ ok: true });
      } else {
        expect(result).toMatchObject({ ok: false, reason: expected });
      }
    },
  );

  it('names no token content in its messages', () => {
    const token = es(root, exp(-5));
    const result = verifier.verify(token, SETTINGS());
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toBe(
        `the token expired at ${new Date((Math.floor(NOW.getTime() / 1000) - 5) * 1000).toISOString().replace('.000', '')}`,
      );
      for (const part of token.split('.')) expect(result.message).not.toContain(part);
    }
  });

  it('escapes control characters and clips long claim values in messages', () => {
    const result = verifier.verify(
      es(root, registryClaims(NOW, { iss: `\u001b]0;owned\u0007${'x'.repeat(500)}` })),
      SETTINGS(),
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toContain('\\x1b]0;owned\\x07');
      expect(result.message).not.toContain('\u001b');
      expect(result.message.length).toBeLessThan(200);
    }
  });

  it('returns the claims of a refused token only when its signature verified', () => {
    const expired = verifier.verify(es(root, exp(-5)), SETTINGS());
    expect(expired).toMatchObject({
      ok: false,
      claims: { sub: 'arn:aws:iam::111122223333:role/ci-runner' },
    });
    const forged = verifier.verify(es(foreign), SETTINGS());
    expect(forged).toMatchObject({ ok: false, claims: undefined });
  });

  it('caches a verified chain: a changed leaf signature is still checked every time', () => {
    const good = chain(leaf, [leaf.x5c]);
    expect(verifier.verify(good, SETTINGS()).ok).toBe(true);
    expect(verifier.verify(good, SETTINGS()).ok).toBe(true);
    const forged = chain(foreignLeaf, [leaf.x5c]);
    expect(verifier.verify(forged, SETTINGS())).toMatchObject({ ok: false, reason: 'signature' });
  });

  it('refuses a cached chain once its certificate has expired', () => {
    const v = new TokenVerifier(parseTrustBundle(root.pem, 'bundle.pem'));
    expect(v.verify(chain(leaf, [leaf.x5c]), SETTINGS()).ok).toBe(true);
    const later = at(3 * 86400);
    const result = v.verify(chain(leaf, [leaf.x5c], registryClaims(later)), {
      ...SETTINGS(),
      now: later,
    });
    expect(result).toMatchObject({ ok: false, reason: 'untrusted-key' });
  });
});

describe('parseTrustBundle', () => {
  it('takes every certificate as a root and a kid', () => {
    const trust = parseTrustBundle(`${root.pem}\n${rsaRoot.pem}`, 'b.pem');
    expect(trust.roots.map((r) => r.kid)).toEqual([kidOf(root), kidOf(rsaRoot)]);
    expect([...trust.keys.keys()]).toEqual([kidOf(root), kidOf(rsaRoot)]);
  });

  it.each([
    ['an empty file', ''],
    ['no certificate', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'],
  ])('refuses %s', (_name, text) => {
    expect(() => parseTrustBundle(text, 'b.pem')).toThrow(
      'b.pem: no certificate in the trust bundle',
    );
  });

  it('refuses a broken certificate, naming it', () => {
    expect(() =>
      parseTrustBundle(
        `${root.pem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`,
        'b.pem',
      ),
    ).toThrow('b.pem: certificate 2 is not a valid X.509 certificate');
  });

  it('refuses a private key without quoting it', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    let message = '';
    try {
      parseTrustBundle(`${root.pem}${pem}`, 'b.pem');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('b.pem: block 2 is a private key, not a certificate');
  });
});
