/**
 * A strict DER (ITU-T X.690) reader for the bytes regtoken takes from outside: ECDSA signatures
 * from KMS or a key, certificates from a published trust bundle, public keys. Structures are
 * built and encoded by `@peculiar/asn1-x509` and `@peculiar/asn1-ecc` (x509.ts, ecdsa.ts); their
 * parser, asn1js, reads BER and so accepts indefinite and non-minimal lengths, non-minimal
 * integers and trailing bytes. Input whose exact bytes matter is checked here instead: a lenient
 * parse could accept something another implementation (the registry's Go, OpenSSL) reads
 * differently. Only single-byte tags (tag numbers 0–30) and definite lengths exist here, which
 * is all DER allows for the structures regtoken reads.
 */

/** Universal and constructed tag bytes found in regtoken's certificates and signatures. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One parsed tag-length-value. `value` and `der` are views into the parsed buffer, not copies. */
export interface Tlv {
  /** The identifier byte (e.g. 0x30 for SEQUENCE). */
  readonly tag: number;
  /** The content octets. */
  readonly value: Uint8Array;
  /** The whole encoding: identifier, length and content. */
  readonly der: Uint8Array;
}

/**
 * Reads the TLV that starts at `offset` and returns it with the offset just past it. Rejects
 * multi-byte tags, indefinite and non-minimal lengths, and lengths running past the buffer: each
 * would mean the input is not DER.
 */
export function readTlv(buf: Uint8Array, offset = 0): { tlv: Tlv; end: number } {
  const tag = buf[offset];
  if (tag === undefined) throw new Error('DER input ends where a tag was expected');
  if ((tag & 0x1f) === 0x1f) throw new Error('DER multi-byte tags are not supported');
  const first = buf[offset + 1];
  if (first === undefined) throw new Error('DER input ends where a length was expected');
  let length = first;
  let header = 2;
  if (first === 0x80) throw new Error('DER does not allow indefinite lengths');
  if (first > 0x80) {
    const count = first & 0x7f;
    if (count > 4) throw new Error('DER length is too large');
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[offset + 2 + i];
      if (b === undefined) throw new Error('DER input ends inside a length');
      if (i === 0 && b === 0) throw new Error('DER length is not minimally encoded');
      length = length * 256 + b;
    }
    if (length < 0x80) throw new Error('DER length is not minimally encoded');
    header += count;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new Error('DER length runs past the end of the input');
  return {
    tlv: { tag, value: buf.subarray(offset + header, end), der: buf.subarray(offset, end) },
    end,
  };
}

/** Parses a buffer that must hold exactly one TLV, optionally of an expected tag. */
export function parseDer(buf: Uint8Array, expectedTag?: number): Tlv {
  const { tlv: node, end } = readTlv(buf, 0);
  if (end !== buf.length) throw new Error('DER input has trailing bytes');
  if (expectedTag !== undefined && node.tag !== expectedTag) {
    throw new Error(`DER tag is 0x${hex(node.tag)}, expected 0x${hex(expectedTag)}`);
  }
  return node;
}

/** Splits constructed content (a SEQUENCE's or SET's `value`) into its consecutive TLVs. */
export function readChildren(content: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < content.length; ) {
    const { tlv: node, end } = readTlv(content, at);
    out.push(node);
    at = end;
  }
  return out;
}

/**
 * The magnitude of a non-negative DER INTEGER: its content without the 0x00 sign byte. Rejects
 * negative values and non-minimal encodings, which strict verifiers (and DER) do not accept.
 */
export function readUnsignedInteger(node: Tlv): Uint8Array {
  if (node.tag !== TAG.INTEGER) throw new Error(`DER tag is 0x${hex(node.tag)}, expected INTEGER`);
  const v = node.value;
  const b0 = v[0];
  const b1 = v[1];
  if (b0 === undefined) throw new Error('DER INTEGER is empty');
  if ((b0 & 0x80) !== 0) throw new Error('DER INTEGER is negative');
  if (b1 !== undefined && b0 === 0 && (b1 & 0x80) === 0) {
    throw new Error('DER INTEGER is not minimally encoded');
  }
  return b0 === 0 && v.length > 1 ? v.subarray(1) : v;
}

/** The dotted form of an OBJECT IDENTIFIER node (to check algorithm identifiers). */
export function readObjectIdentifier(node: Tlv): string {
  if (node.tag !== TAG.OID) throw new Error(`DER tag is 0x${hex(node.tag)}, expected OID`);
  const arcs: number[] = [];
  let n = 0;
  let fresh = true;
  for (const b of node.value) {
    if (fresh && b === 0x80) throw new Error('DER OID arc is not minimally encoded');
    n = n * 128 + (b & 0x7f);
    if (!Number.isSafeInteger(n)) throw new Error('DER OID arc is too large');
    fresh = (b & 0x80) === 0;
    if (fresh) {
      arcs.push(n);
      n = 0;
    }
  }
  const head = arcs.shift();
  if (head === undefined || !fresh) throw new Error('DER OID is truncated');
  const first = head < 80 ? Math.floor(head / 40) : 2;
  return [first, head - first * 40, ...arcs].join('.');
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
