/**
 * The docker/libtrust key ID. Docker Distribution's token authentication (registry 2.8) looks up
 * a token's verification key by the JWT header's `kid`, and for keys taken from its root
 * certificate bundle that `kid` must be the libtrust fingerprint of the certificate's public key:
 * with any other value the registry rejects the token as "signed by untrusted key".
 */

import { createHash } from 'node:crypto';
import { parseDer, readChildren, TAG } from './der.js';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * Returns the libtrust key ID of a public key given as DER SubjectPublicKeyInfo (what Go's
 * `x509.MarshalPKIXPublicKey` produces): SHA-256 of the DER, truncated to 240 bits, base32
 * (RFC 4648 standard alphabet, no padding), in 12 colon-separated groups of 4 characters, e.g.
 * `UEV2:PPF2:4DMU:WZYF:WOWU:677P:B7XU:SGFA:BMUG:NCTC:R7CL:XFKZ`. Throws when the input is not a
 * DER SubjectPublicKeyInfo, since hashing anything else would yield a plausible but useless ID.
 */
export function libtrustKeyId(spkiDer: Uint8Array): string {
  assertSpki(spkiDer);
  // 30 bytes = 240 bits = exactly 48 base32 characters, so no padding ever arises.
  const digest = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const text = base32(digest);
  return text.match(/.{4}/g)?.join(':') ?? '';
}

function assertSpki(der: Uint8Array): void {
  try {
    const children = readChildren(parseDer(der, TAG.SEQUENCE).value);
    const [algorithm, key] = children;
    if (children.length !== 2 || algorithm?.tag !== TAG.SEQUENCE || key?.tag !== TAG.BIT_STRING) {
      throw new Error('expected SEQUENCE { AlgorithmIdentifier, BIT STRING }');
    }
  } catch (err) {
    throw new Error(`public key is not a DER SubjectPublicKeyInfo: ${(err as Error).message}`);
  }
}

function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = ((buffer << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >> bits) & 0x1f];
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 0x1f];
  return out;
}
