/**
 * The signing root's self-signed certificate is checked each run and renewed under the same key
 * before it ends (lambda/core/root-certificate.ts; docs/tokens.md, "Root certificate renewal").
 * Every case runs the local signer at a chosen instant, so nothing depends on today's date.
 */

import { createPublicKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { localSigningKey } from '../../lambda/adapters/pem-signer.js';
import {
  ROOT_RENEW_DAYS,
  ROOT_WARN_DAYS,
  rootCertificateProblem,
} from '../../lambda/core/root-certificate.js';
import {
  certificateToPem,
  createCertificate,
  parsePemCertificates,
} from '../../lambda/core/x509.js';
import { FIXED_NOW, fixedEcKey } from '../helpers/keys.js';

const DAY = 86_400_000;
const key = fixedEcKey();
const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
const at = (days: number) => new Date(FIXED_NOW.getTime() + days * DAY);

/** A run of the local signer at `now` that found `bundle` published. */
const run = (now: Date, bundle?: string) => localSigningKey(key, now, bundle, 'signing key k');

/** The validity ends of a bundle's certificates, as ISO days, in bundle order. */
const ends = (bundle: string) =>
  parsePemCertificates(bundle).map((der) =>
    new Date(new X509Certificate(Buffer.from(der)).validTo).toISOString().slice(0, 10),
  );

/** A certificate for our public key, but signed by `signer` (or ours), valid for `days`. */
async function certificate(options: {
  from: Date;
  days: number;
  ca?: boolean;
  signer?: ReturnType<typeof fixedEcKey>;
}): Promise<string> {
  const signer = options.signer ?? key;
  const der = await createCertificate(
    {
      subjectCommonName: 'regtoken token signer',
      issuerCommonName: 'regtoken token signer',
      serialNumber: randomBytes(16),
      notBefore: options.from,
      notAfter: new Date(options.from.getTime() + options.days * DAY),
      subjectPublicKey: spki,
      issuerPublicKey: new Uint8Array(
        createPublicKey(signer).export({ type: 'spki', format: 'der' }),
      ),
      ca: options.ca ?? true,
      signatureAlgorithm: 'ES256',
    },
    (tbs) => sign('sha256', tbs, signer),
  );
  return certificateToPem(der);
}

describe('the root certificate, checked every run', () => {
  it('is made once and then reused unchanged while it has more than a year left', async () => {
    const first = await run(at(0));
    expect(ends(first.trust.bundlePem)).toEqual(['2036-01-02']);
    expect(first.root).toEqual({ daysLeft: 3652, notes: [] });
    const later = await run(at(3652 - ROOT_WARN_DAYS), first.trust.bundlePem);
    expect(later.trust.bundlePem).toBe(first.trust.bundlePem);
    expect(later.root).toEqual({ daysLeft: ROOT_WARN_DAYS, notes: [] });
  });

  it('warns, with the days left for the metric, within a year of its end, before renewing', async () => {
    const first = await run(at(0));
    const warned = await run(at(3652 - 300), first.trust.bundlePem);
    expect(warned.trust.bundlePem).toBe(first.trust.bundlePem);
    expect(warned.root).toEqual({
      daysLeft: 300,
      notes: [
        `signing key k: its root certificate expires on 2036-01-02, in 300 days; a new one is issued under the same key ${ROOT_RENEW_DAYS} days before`,
      ],
    });
  });

  it('is re-issued under the same key in its last months, both kept until the old one ends', async () => {
    const first = await run(at(0));
    const renewAt = at(3652 - ROOT_RENEW_DAYS + 1); // 2035-07-05: 181 days left
    const renewed = await run(renewAt, first.trust.bundlePem);
    expect(ends(renewed.trust.bundlePem)).toEqual(['2045-07-05', '2036-01-02']);
    expect(renewed.trust.bundlePem.endsWith(first.trust.bundlePem)).toBe(true);
    expect(renewed.root?.daysLeft).toBe(3653);
    expect(renewed.root?.notes).toEqual([
      'signing key k: issued a new root certificate under the same key, valid until 2045-07-05; the one ending 2036-01-02 stays in the bundle until then, and registries must load the new bundle before that day (they read it at start-up; the unit in examples/registry restarts them when it changes)',
    ]);
    // The new certificate is the same key's: the JWKS and every token's kid are unchanged.
    expect(renewed.trust.jwks).toEqual(first.trust.jwks);
    for (const der of parsePemCertificates(renewed.trust.bundlePem))
      expect(rootCertificateProblem(der, spki, renewAt)).toBeUndefined();

    // The next run keeps both and issues nothing; once the old one has ended, it leaves.
    const next = await run(at(3652 - 100), renewed.trust.bundlePem);
    expect(next.trust.bundlePem).toBe(renewed.trust.bundlePem);
    expect(next.root?.notes).toEqual([]);
    const afterEnd = await run(at(3653), renewed.trust.bundlePem);
    expect(ends(afterEnd.trust.bundlePem)).toEqual(['2045-07-05']);
    expect(afterEnd.root?.notes).toEqual([
      'signing key k: its root certificate in the published bundle is not reused: it expired on Jan  2 03:04:05 2036 GMT',
    ]);
  });

  it.each([
    [
      'signed by another key (planted with our public key)',
      () => certificate({ from: at(-1), days: 3650, signer: fixedEcKey(2) }),
      'its signature does not verify with the key',
    ],
    [
      'not a CA',
      () => certificate({ from: at(-1), days: 3650, ca: false }),
      'it is not a CA certificate',
    ],
    [
      'expired',
      () => certificate({ from: at(-400), days: 399 }),
      'it expired on Jan  1 03:04:05 2026 GMT',
    ],
    [
      'not valid yet',
      () => certificate({ from: at(2), days: 3650 }),
      'it is valid only from Jan  4 03:04:05 2026 GMT',
    ],
  ])('is not reused when %s: a new one replaces it', async (_name, make, reason) => {
    const bad = await make();
    const signing = await run(at(0), bad);
    expect(signing.trust.bundlePem).not.toContain(bad.trim());
    expect(ends(signing.trust.bundlePem)).toEqual(['2036-01-02']);
    expect(signing.root?.notes).toEqual([
      `signing key k: its root certificate in the published bundle is not reused: ${reason}`,
    ]);
  });
});
