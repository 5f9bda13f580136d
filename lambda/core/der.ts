/**
 * A deliberately small DER (ITU-T X.690) writer and reader: just enough ASN.1 to build X.509
 * certificates and to take apart ECDSA signatures and certificates, so the token signer needs no
 * ASN.1 dependency. Only single-byte tags (tag numbers 0–30) and definite lengths exist here,
 * which is all DER allows for the structures regtoken touches. The reader is strict (minimal
 * lengths, no trailing bytes) because it is fed signatures and certificates whose exact bytes
 * matter: a lenient parse could accept something another implementation reads differently.
 */

/** Universal and constructed tag bytes used by regtoken's certificates and signatures. */
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

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/** Concatenates byte arrays; the writer builds every structure bottom-up with it. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encodes a definite length: short form below 128, else the minimal long form DER requires. */
export function encodeLength(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new Error('DER length is not valid');
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** Wraps content in a tag-length-value triple; `tag` is the complete single identifier byte. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw new Error('DER tag must be a single identifier byte');
  }
  return concat(Uint8Array.of(tag), encodeLength(content.length), content);
}

/** SEQUENCE of already-encoded elements, in the given order. */
export function sequence(...elements: readonly Uint8Array[]): Uint8Array {
  return tlv(TAG.SEQUENCE, concat(...elements));
}

/**
 * SET OF already-encoded elements. DER orders SET OF members by their encodings; the elements
 * are sorted here so callers cannot produce a non-canonical set by accident.
 */
export function set(...elements: readonly Uint8Array[]): Uint8Array {
  const sorted = [...elements].sort(compareBytes);
  return tlv(TAG.SET, concat(...sorted));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * INTEGER holding the non-negative number whose unsigned big-endian magnitude is `magnitude`.
 * Redundant leading zero bytes are dropped and a 0x00 byte is added when the top bit is set, so
 * the value stays positive (serial numbers, ECDSA r and s); an empty array encodes zero.
 */
export function integer(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.length === 0 ? Uint8Array.of(0) : magnitude.subarray(start);
  const needsSignByte = ((trimmed[0] ?? 0) & 0x80) !== 0;
  return tlv(TAG.INTEGER, needsSignByte ? concat(Uint8Array.of(0), trimmed) : trimmed);
}

/** INTEGER from a non-negative safe integer (certificate version, path length constraint). */
export function integerFromNumber(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error('DER INTEGER from number needs a non-negative safe integer');
  }
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return integer(Uint8Array.from(bytes));
}

/** OBJECT IDENTIFIER from its dotted form (`1.2.840.10045.4.3.2`). */
export function objectIdentifier(dotted: string): Uint8Array {
  if (!/^\d+(\.\d+)+$/.test(dotted)) throw new Error(`OID ${dotted} is not in dotted form`);
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  if (arcs.some((a) => !Number.isSafeInteger(a)) || first > 2 || (first < 2 && second >= 40)) {
    throw new Error(`OID ${dotted} has an arc out of range`);
  }
  const body: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    // Base-128, most significant group first, continuation bit on every group but the last.
    const groups: number[] = [arc % 128];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) {
      groups.unshift(0x80 | (n % 128));
    }
    body.push(...groups);
  }
  return tlv(TAG.OID, Uint8Array.from(body));
}

/** NULL (the parameters of sha256WithRSAEncryption, which RFC 4055 requires to be present). */
export function nullValue(): Uint8Array {
  return Uint8Array.of(TAG.NULL, 0);
}

/** BOOLEAN; DER requires TRUE to be 0xFF. */
export function boolean(value: boolean): Uint8Array {
  return Uint8Array.of(TAG.BOOLEAN, 1, value ? 0xff : 0);
}

/**
 * BIT STRING whose last `unusedBits` bits (0–7) are padding. Those padding bits must already be
 * zero in `bytes`, as DER requires; keys and signatures always use 0 unused bits.
 */
export function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7) {
    throw new Error('BIT STRING unused bits must be 0 to 7');
  }
  if (bytes.length === 0 && unusedBits !== 0) throw new Error('empty BIT STRING has unused bits');
  const last = bytes[bytes.length - 1] ?? 0;
  if ((last & ((1 << unusedBits) - 1)) !== 0) throw new Error('BIT STRING padding bits are set');
  return tlv(TAG.BIT_STRING, concat(Uint8Array.of(unusedBits), bytes));
}

/** OCTET STRING (certificate extension values, key identifiers). */
export function octetString(bytes: Uint8Array): Uint8Array {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** UTF8String, the string type RFC 5280 asks new certificates to use for names. */
export function utf8String(text: string): Uint8Array {
  return tlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
}

function digits(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

function assertValidDate(date: Date): void {
  if (Number.isNaN(date.getTime())) throw new Error('date is not valid');
}

/** UTCTime `YYMMDDHHMMSSZ` (years 1950–2049); sub-second precision is dropped, as X.509 has none. */
export function utcTime(date: Date): Uint8Array {
  assertValidDate(date);
  const y = date.getUTCFullYear();
  if (y < 1950 || y > 2049) throw new Error('UTCTime only holds years 1950 to 2049');
  return tlv(TAG.UTC_TIME, new TextEncoder().encode(`${digits(y % 100, 2)}${timeOfYear(date)}Z`));
}

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (years 0–9999), without fractional seconds per RFC 5280. */
export function generalizedTime(date: Date): Uint8Array {
  assertValidDate(date);
  const y = date.getUTCFullYear();
  if (y < 0 || y > 9999) throw new Error('GeneralizedTime only holds years 0 to 9999');
  return tlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(`${digits(y, 4)}${timeOfYear(date)}Z`));
}

function timeOfYear(date: Date): string {
  return (
    digits(date.getUTCMonth() + 1, 2) +
    digits(date.getUTCDate(), 2) +
    digits(date.getUTCHours(), 2) +
    digits(date.getUTCMinutes(), 2) +
    digits(date.getUTCSeconds(), 2)
  );
}

/**
 * An X.509 `Time`: UTCTime for 1950–2049 and GeneralizedTime otherwise, exactly as RFC 5280
 * §4.1.2.5 mandates (a CA that uses GeneralizedTime for 2049 produces a non-conforming
 * certificate).
 */
export function x509Time(date: Date): Uint8Array {
  assertValidDate(date);
  const y = date.getUTCFullYear();
  return y >= 1950 && y <= 2049 ? utcTime(date) : generalizedTime(date);
}

/** Context-specific constructed tag `[n]` around already-encoded elements (EXPLICIT tagging). */
export function explicit(n: number, ...elements: readonly Uint8Array[]): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new Error('context tag number must be 0–30');
  return tlv(0xa0 | n, concat(...elements));
}

/**
 * Context-specific primitive tag `[n]` on raw content (IMPLICIT tagging of a primitive type, such
 * as the keyIdentifier `[0]` of the Authority Key Identifier extension).
 */
export function implicit(n: number, content: Uint8Array): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new Error('context tag number must be 0–30');
  return tlv(0x80 | n, content);
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

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
