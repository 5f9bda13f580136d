/**
 * ECDSA signature format conversion. AWS KMS `Sign` and `node:crypto.sign` return the DER
 * ECDSA-Sig-Value `SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279), while a JWS carries the fixed
 * width `r || s` concatenation (RFC 7518 §3.4). Getting the padding wrong only fails for the
 * occasional signature whose r or s is short or has its top bit set, so both directions are
 * strict and reject anything that is not exactly one well-formed signature: DER from outside is
 * read by the strict reader (der.ts), and written by `@peculiar/asn1-ecc`.
 */

import { ECDSASigValue } from '@peculiar/asn1-ecc';
import { AsnConvert } from '@peculiar/asn1-schema';
import { parseDer, readChildren, readUnsignedInteger, TAG } from './der.js';

/** The two integers of an ECDSA signature as unsigned big-endian magnitudes, minimal length. */
export interface EcdsaSignatureParts {
  readonly r: Uint8Array;
  readonly s: Uint8Array;
}

/**
 * Parses a DER ECDSA-Sig-Value into r and s (without sign bytes). Throws an Error naming the
 * defect when the input is not exactly one SEQUENCE of two positive, minimally encoded INTEGERs;
 * messages never echo the input bytes.
 */
export function parseEcdsaSignature(der: Uint8Array): EcdsaSignatureParts {
  let parts: Uint8Array[];
  try {
    const children = readChildren(parseDer(der, TAG.SEQUENCE).value);
    if (children.length !== 2) {
      throw new Error(`SEQUENCE has ${children.length} elements, expected 2`);
    }
    parts = children.map(readUnsignedInteger);
  } catch (err) {
    throw new Error(`ECDSA signature is not a DER ECDSA-Sig-Value: ${(err as Error).message}`);
  }
  const [r = new Uint8Array(), s = new Uint8Array()] = parts;
  // Zero is never a valid r or s (both lie in [1, n-1]); catching it here beats a silent
  // verification failure at the registry.
  if (isZero(r)) throw new Error('ECDSA signature has r = 0');
  if (isZero(s)) throw new Error('ECDSA signature has s = 0');
  return { r, s };
}

/**
 * Converts a DER ECDSA-Sig-Value (AWS KMS Sign, node:crypto.sign) to the JWS form `r || s`, each
 * left-padded with zeros to `size` bytes (32 for ES256, 48 for ES384, 66 for ES512). Throws when
 * the DER is malformed or r or s does not fit in `size` bytes.
 */
export function derToJose(der: Uint8Array, size = 32): Uint8Array {
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error('ECDSA size must be positive');
  const { r, s } = parseEcdsaSignature(der);
  if (r.length > size) throw new Error(`ECDSA signature r is longer than ${size} bytes`);
  if (s.length > size) throw new Error(`ECDSA signature s is longer than ${size} bytes`);
  const out = new Uint8Array(2 * size);
  out.set(r, size - r.length);
  out.set(s, 2 * size - s.length);
  return out;
}

/**
 * Converts a JWS ECDSA signature `r || s` (two equal halves) to a DER ECDSA-Sig-Value with
 * minimally encoded, positive INTEGERs, the form X.509 and `crypto.verify` expect by default.
 * Throws when the input is empty, of odd length, or has r or s equal to zero.
 */
export function joseToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new Error(`ECDSA signature r || s has odd or zero length ${raw.length}`);
  }
  const half = raw.length / 2;
  const r = raw.subarray(0, half);
  const s = raw.subarray(half);
  if (isZero(r)) throw new Error('ECDSA signature has r = 0');
  if (isZero(s)) throw new Error('ECDSA signature has s = 0');
  return new Uint8Array(
    AsnConvert.serialize(new ECDSASigValue({ r: positiveInteger(r), s: positiveInteger(s) })),
  );
}

/**
 * The content octets of a minimal, positive DER INTEGER for an unsigned magnitude: leading
 * zero bytes dropped, and a 0x00 sign byte when the top bit is set.
 */
function positiveInteger(magnitude: Uint8Array): ArrayBuffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = magnitude.subarray(start);
  return ((bytes[0] ?? 0) & 0x80 ? Uint8Array.of(0, ...bytes) : bytes.slice()).buffer;
}

function isZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}
