/**
 * Deterministic test keys: a P-256 private key derived from a seed, so tests that need exact
 * key IDs and reproducible fixtures never read a key from disk (no key files are committed).
 */

import { createECDH, createHash, createPrivateKey, type KeyObject } from 'node:crypto';

/** The P-256 private key whose scalar is SHA-256("regtoken-test-<seed>"). */
export function fixedEcKey(seed = 1): KeyObject {
  const d = createHash('sha256').update(`regtoken-test-${seed}`).digest();
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  const pub = ecdh.getPublicKey();
  return createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: d.toString('base64url'),
      x: pub.subarray(1, 33).toString('base64url'),
      y: pub.subarray(33).toString('base64url'),
    },
  });
}

/** A fixed instant for exact claims: 2026-01-02T03:04:05Z. */
export const FIXED_NOW = new Date('2026-01-02T03:04:05Z');
