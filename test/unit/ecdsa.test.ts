import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { derToJose, joseToDer, parseEcdsaSignature } from '../../lambda/core/ecdsa.js';

const hex = (text: string): Uint8Array =>
  new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const rep = (byteHex: string, count: number): string => byteHex.repeat(count);
/** Bytes 0x01, 0x02, … `count` long, starting at `from`: recognisable, top bit clear. */
const run = (from: number, count: number): string =>
  Array.from({ length: count }, (_, i) => (from + i).toString(16).padStart(2, '0')).join('');

// Each case spells the expected DER out by hand (not with the encoder under test).
const TABLE: { name: string; size: number; r: string; s: string; der: string }[] = [
  {
    name: 'plain 32-byte r and s',
    size: 32,
    r: run(0x01, 32),
    s: run(0x21, 32),
    der: `3044 0220 ${run(0x01, 32)} 0220 ${run(0x21, 32)}`,
  },
  {
    name: 'r with one leading zero byte (31-byte INTEGER)',
    size: 32,
    r: `00${run(0x01, 31)}`,
    s: run(0x21, 32),
    der: `3043 021f ${run(0x01, 31)} 0220 ${run(0x21, 32)}`,
  },
  {
    name: 's with one leading zero byte (31-byte INTEGER)',
    size: 32,
    r: run(0x01, 32),
    s: `00${run(0x21, 31)}`,
    der: `3043 0220 ${run(0x01, 32)} 021f ${run(0x21, 31)}`,
  },
  {
    name: 'r = 1 (31 leading zero bytes)',
    size: 32,
    r: `${rep('00', 31)}01`,
    s: run(0x21, 32),
    der: `3025 0201 01 0220 ${run(0x21, 32)}`,
  },
  {
    name: 'r with the high bit set (0x00 sign byte)',
    size: 32,
    r: `80${rep('00', 31)}`,
    s: run(0x21, 32),
    der: `3045 0221 0080${rep('00', 31)} 0220 ${run(0x21, 32)}`,
  },
  {
    name: 's with the high bit set (0x00 sign byte)',
    size: 32,
    r: run(0x01, 32),
    s: rep('ff', 32),
    der: `3045 0220 ${run(0x01, 32)} 0221 00${rep('ff', 32)}`,
  },
  {
    name: 'both with the high bit set',
    size: 32,
    r: rep('ff', 32),
    s: `80${rep('ff', 31)}`,
    der: `3046 0221 00${rep('ff', 32)} 0221 0080${rep('ff', 31)}`,
  },
  {
    name: 'leading zero followed by a high bit (sign byte kept, 32-byte INTEGER)',
    size: 32,
    r: `0080${rep('11', 30)}`,
    s: `00${rep('00', 30)}ff`,
    der: `3026 0220 0080${rep('11', 30)} 0202 00ff`,
  },
  {
    name: 'P-384 size 48',
    size: 48,
    r: `ab${rep('01', 47)}`,
    s: `00${rep('7f', 47)}`,
    der: `3064 0231 00ab${rep('01', 47)} 022f ${rep('7f', 47)}`,
  },
  {
    name: 'P-521 size 66 (long-form SEQUENCE length)',
    size: 66,
    r: `01${rep('ff', 65)}`,
    s: `0000${rep('ee', 64)}`,
    der: `3081 87 0242 01${rep('ff', 65)} 0241 00${rep('ee', 64)}`,
  },
];

describe('derToJose / joseToDer on constructed signatures', () => {
  it.each(TABLE)('$name', ({ size, r, s, der }) => {
    const raw = hex(r + s);
    const encoded = hex(der);
    expect(toHex(derToJose(encoded, size))).toBe(toHex(raw));
    expect(toHex(joseToDer(raw))).toBe(toHex(encoded));
    expect(toHex(joseToDer(derToJose(encoded, size)))).toBe(toHex(encoded));
  });

  it('defaults to 32-byte halves (ES256)', () => {
    const row = TABLE[1];
    if (!row) throw new Error('table row missing');
    expect(derToJose(hex(row.der))).toHaveLength(64);
  });

  it('parseEcdsaSignature returns r and s without sign bytes', () => {
    const { r, s } = parseEcdsaSignature(hex(`3026 0220 0080${rep('11', 30)} 0202 00ff`));
    expect(toHex(r)).toBe(`80${rep('11', 30)}`);
    expect(toHex(s)).toBe('ff');
  });
});

describe('malformed input', () => {
  const r32 = run(0x01, 32);
  const intR = `0220${r32}`;
  const cases: [string, string, RegExp][] = [
    ['empty input', '', /ends where a tag was expected/],
    ['a SET instead of a SEQUENCE', `3144 ${intR} ${intR}`, /tag is 0x31, expected 0x30/],
    ['trailing bytes', `3044 ${intR} ${intR} 00`, /trailing bytes/],
    ['one INTEGER only', `3022 ${intR}`, /has 1 elements, expected 2/],
    ['three INTEGERs', `3066 ${intR} ${intR} ${intR}`, /has 3 elements, expected 2/],
    ['a negative INTEGER', `3025 0201 80 ${intR}`, /INTEGER is negative/],
    ['a non-minimal INTEGER', `3026 0202 0001 ${intR}`, /not minimally encoded/],
    ['an empty INTEGER', `3024 0200 ${intR}`, /INTEGER is empty/],
    ['an OCTET STRING element', `3044 0420${r32} ${intR}`, /expected INTEGER/],
    ['a length past the end', `3045 ${intR} ${intR}`, /runs past the end/],
    ['an indefinite length', `3080 ${intR} ${intR} 0000`, /indefinite/],
    ['a non-minimal length', `308144 ${intR} ${intR}`, /not minimally encoded/],
    ['r = 0', `3025 020100 ${intR}`, /r = 0/],
    ['s = 0', `3025 ${intR} 020100`, /s = 0/],
    ['r longer than 32 bytes', `3045 0221 01${r32} ${intR}`, /r is longer than 32 bytes/],
  ];

  it.each(cases)('derToJose rejects %s', (_name, der, message) => {
    expect(() => derToJose(hex(der))).toThrow(message);
  });

  it('error messages do not echo the signature bytes', () => {
    for (const [, der] of cases) {
      let message = '';
      try {
        derToJose(hex(der));
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^ECDSA signature /);
      expect(message).not.toMatch(/[0-9a-f]{8}/i);
    }
  });

  it('rejects a non-positive size', () => {
    expect(() => derToJose(hex(`3044 ${intR} ${intR}`), 0)).toThrow(/size must be positive/);
  });

  it.each([
    ['empty', '', /odd or zero length 0/],
    ['odd length', rep('01', 63), /odd or zero length 63/],
    ['r = 0', rep('00', 32) + r32, /r = 0/],
    ['s = 0', r32 + rep('00', 32), /s = 0/],
  ])('joseToDer rejects %s', (_name, raw, message) => {
    expect(() => joseToDer(hex(raw))).toThrow(message);
  });
});

describe('real signatures from node:crypto', () => {
  const message = Buffer.from('regtoken ecdsa conversion test');

  it.each([
    ['P-256', 32],
    ['P-384', 48],
    ['P-521', 66],
  ] as const)(
    '%s: DER -> JOSE verifies as ieee-p1363, JOSE -> DER verifies as DER',
    (curve, size) => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 20; i++) {
        const der = new Uint8Array(sign('sha256', message, privateKey));
        const raw = derToJose(der, size);
        expect(raw).toHaveLength(2 * size);
        expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(
          true,
        );
        // node emits minimal DER, so the round trip must be byte-exact.
        expect(toHex(joseToDer(raw))).toBe(toHex(der));

        const p1363 = new Uint8Array(
          sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
        );
        expect(verify('sha256', message, publicKey, joseToDer(p1363))).toBe(true);
      }
    },
  );

  // Real, verifiable signatures whose s is short or has its top bit set, made deterministically:
  // take one genuine signature (r, s0) by a known key d0, recover its nonce k, then pick the s we
  // want and solve s·k = z + r·d1 (mod n) for a new private key d1. (r, s) is then a valid
  // signature of the same message under d1, since r depends only on k.
  const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  const mod = (a: bigint): bigint => ((a % N) + N) % N;
  const modPow = (base: bigint, exp: bigint): bigint => {
    let result = 1n;
    let b = mod(base);
    for (let e = exp; e > 0n; e >>= 1n) {
      if (e & 1n) result = mod(result * b);
      b = mod(b * b);
    }
    return result;
  };
  const inv = (a: bigint): bigint => modPow(a, N - 2n); // N is prime
  const big = (bytes: Uint8Array): bigint => BigInt(`0x${toHex(bytes) || '0'}`);
  const bytes32 = (n: bigint): Uint8Array => hex(n.toString(16).padStart(64, '0'));

  function forge(targetS: bigint): {
    raw: Uint8Array;
    publicKey: ReturnType<typeof createPublicKey>;
  } {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const d0 = big(
      new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url')),
    );
    const raw0 = new Uint8Array(
      sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
    );
    const r = big(raw0.subarray(0, 32));
    const s0 = big(raw0.subarray(32));
    const z = big(new Uint8Array(createHash('sha256').update(message).digest()));
    const k = mod(inv(s0) * (z + r * d0));
    const d1 = mod((targetS * k - z) * inv(r));
    expect(d1).not.toBe(0n);
    // SEC1 ECPrivateKey without the optional public key; OpenSSL derives it from d.
    const sec1 = hex(`3031 020101 0420${toHex(bytes32(d1))} a00a 0608 2a8648ce3d030107`);
    const key = createPrivateKey({ key: Buffer.from(sec1), format: 'der', type: 'sec1' });
    return {
      raw: new Uint8Array([...bytes32(r), ...bytes32(targetS)]),
      publicKey: createPublicKey(key),
    };
  }

  it.each([
    ['s with two leading zero bytes', BigInt(`0x${run(0x01, 30)}`), 30],
    ['s = 1', 1n, 1],
    ['s with the high bit set', BigInt(`0x80${rep('00', 30)}01`), 33],
  ])('%s converts and verifies both ways', (_name, targetS, sIntegerLength) => {
    const { raw, publicKey } = forge(targetS);
    expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(
      true,
    );
    const der = joseToDer(raw);
    expect(verify('sha256', message, publicKey, der)).toBe(true);
    // The s INTEGER is the last TLV: its length byte proves the edge case was hit.
    expect(der[der.length - sIntegerLength - 1]).toBe(sIntegerLength);
    expect(der[der.length - sIntegerLength - 2]).toBe(0x02);
    expect(toHex(derToJose(der))).toBe(toHex(raw));
  });
});
