/**
 * The trust bundle as a verifier sees it: the registry's `auth.token.rootcertbundle` parsed
 * into what Distribution 2.8 derives from it at start-up (registry/auth/token/accesscontroller.go):
 *
 * - every certificate is a **root** for `x5c` chains, and
 * - every certificate's public key is a **trusted key**, found by its libtrust key ID (`kid`).
 *
 * The token endpoint verifies with exactly this, so a token it accepts is one the registry
 * accepts (docs/registry.md, "The token endpoint").
 */

import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { libtrustKeyId } from './libtrust.js';

/** One certificate of the bundle. */
export interface TrustRoot {
  readonly certificate: X509Certificate;
  /** The libtrust key ID of its public key: what a `kid` header names. */
  readonly kid: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A parsed trust bundle. Immutable; a changed bundle is parsed into a new one. */
export interface TrustAnchors {
  readonly roots: readonly TrustRoot[];
  /** Public key by libtrust key ID. */
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** SHA-256 of the bundle text, to tell versions apart in logs. */
  readonly fingerprint: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * Parses a PEM bundle. Only CERTIFICATE blocks count (the registry ignores anything else, and a
 * private key has no business in a bundle: it is refused, naming where it was found). Throws
 * an Error naming `where` and the block when the bundle holds no certificate or a broken one.
 */
export function parseTrustBundle(pem: string, where: string): TrustAnchors {
  const roots: TrustRoot[] = [];
  const keys = new Map<string, KeyObject>();
  let index = 0;
  for (const match of pem.matchAll(PEM_BLOCK)) {
    index += 1;
    const label = match[1] ?? '';
    if (/PRIVATE KEY/.test(label))
      throw new Error(`${where}: block ${index} is a private key, not a certificate`);
    if (label !== 'CERTIFICATE') continue;
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(match[0]);
    } catch {
      throw new Error(`${where}: certificate ${index} is not a valid X.509 certificate`);
    }
    const spki = new Uint8Array(certificate.publicKey.export({ type: 'spki', format: 'der' }));
    const kid = libtrustKeyId(spki);
    roots.push({
      certificate,
      kid,
      notBefore: new Date(certificate.validFrom),
      notAfter: new Date(certificate.validTo),
    });
    keys.set(kid, certificate.publicKey);
  }
  if (roots.length === 0) throw new Error(`${where}: no certificate in the trust bundle`);
  return {
    roots,
    keys,
    fingerprint: createHash('sha256').update(pem).digest('hex').slice(0, 16),
  };
}
