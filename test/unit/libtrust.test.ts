import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { libtrustKeyId } from '../../lambda/core/libtrust.js';

// Published vectors: the public fixtures and expected key IDs of the libtrust-py test suite
// (github.com/realityone/libtrust-py, tests/test_ec_key.py and tests/test_rsa_key.py, fixtures
// tests/fixtures/ec-public.pem and public.pem), a port of docker/libtrust whose keyIDFromCryptoKey
// hashes x509.MarshalPKIXPublicKey the same way. Only public keys are used here.
const EC_VECTOR = {
  jwk: {
    kty: 'EC',
    crv: 'P-256',
    x: '4pBqYlc5IU5pJh5AOvijtEccStyJu0dSAiz4OlDGGFk',
    y: 'OT70pUofsKlHEsqdWUUj-ZF-z5bqH-9oOTJ4mqBayyo',
  },
  spkiBase64:
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4pBqYlc5IU5pJh5AOvijtEccStyJ' +
    'u0dSAiz4OlDGGFk5PvSlSh+wqUcSyp1ZRSP5kX7Pluof72g5MniaoFrLKg==',
  kid: 'UEV2:PPF2:4DMU:WZYF:WOWU:677P:B7XU:SGFA:BMUG:NCTC:R7CL:XFKZ',
};

const RSA_VECTOR = {
  jwk: {
    kty: 'RSA',
    e: 'AQAB',
    n:
      'wq1mCmgn460MC6MnCqranQNTgmKuKPl7bNH7Qc6hBDGHlnIjU6q_h2KXF37TC5Y9tsKvQ4b8jd0Sf0dXFHml8qunSvNn' +
      'qsSvoD8tSPUKqXS6jrlbGSQXhya7BL1RPGccD5K1xrV73QlI6uFPd3APRQYij5EOB8IOWEQujJk_8Mjc0EC9zvk5TUJb' +
      '59hkOUPZ3CkvSBNLNS8wpQI98FRnIzHjuaNicqve8054oxmDKifHWy0nnF135cXW8zkH3Zto1q89zD2g-zcVxLcRP84U' +
      'he0nSQyg7vEYl4Wl74Eo6_89qL2yE0mEiQN245ACA5B8WFV_t3j_OD3ydOCaAOg28vQtzcZ1gh2Ev4RxeR7bKq58g-R0' +
      '-MMwl7nnW29mbCkcgdVVR4YPmglP7Vb6w7_NbqFhnxx4E3A05AeevHdMdYCrtgQwogvIhdOHLcVQxJgwy1d2Lg_mv9ro' +
      'vhCJ7d3XaNEYym6CplCHPMtfnU1LCVkA6b44pFaOVjsAQ8FviFtGXQAToRtwoszSarzslHKYdPoSGFOsgNJgW67iViOY' +
      'qGPD97rgJA0VPm0POMNHGw_R6o-08KhDF_OI1EDckmjXhUggY_WCqWDxD77Ezd_wr9Zlbv_uSIEL9ifvBLq06lLcXMLr' +
      'QbJrwMbDrngMZMAcUkTzThmtxNs4uwu45R-zfKc',
  },
  kid: 'IIYO:OWAZ:MBMG:2SIK:IK2I:OP5Z:H6QR:KN6Y:QUGO:BUWN:TYW3:JXVW',
};

const spkiOfJwk = (jwk: Record<string, string>): Uint8Array =>
  new Uint8Array(
    createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }),
  );

const FORMAT = /^[A-Z2-7]{4}(:[A-Z2-7]{4}){11}$/;

describe('libtrustKeyId', () => {
  it('matches the published P-256 vector', () => {
    const spki = spkiOfJwk(EC_VECTOR.jwk);
    // The JWK and the fixture PEM describe the same key: the hash input is the DER SPKI.
    expect(Buffer.from(spki).toString('base64')).toBe(EC_VECTOR.spkiBase64);
    expect(libtrustKeyId(spki)).toBe(EC_VECTOR.kid);
  });

  it('matches the published RSA-4096 vector', () => {
    expect(libtrustKeyId(spkiOfJwk(RSA_VECTOR.jwk))).toBe(RSA_VECTOR.kid);
  });

  it.each([
    ['P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['RSA-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ])('formats a %s key ID as 12 groups of 4 base32 characters', (_name, generate) => {
    const spki = new Uint8Array(generate().publicKey.export({ type: 'spki', format: 'der' }));
    const kid = libtrustKeyId(spki);
    expect(kid).toMatch(FORMAT);
    expect(kid).toHaveLength(59);
    expect(libtrustKeyId(spki)).toBe(kid);
  });

  it('rejects input that is not a DER SubjectPublicKeyInfo', () => {
    const spki = spkiOfJwk(EC_VECTOR.jwk);
    const pem = new TextEncoder().encode(`-----BEGIN PUBLIC KEY-----\n${EC_VECTOR.spkiBase64}\n`);
    expect(() => libtrustKeyId(pem)).toThrow(/not a DER SubjectPublicKeyInfo/);
    expect(() => libtrustKeyId(spki.subarray(26))).toThrow(/not a DER SubjectPublicKeyInfo/);
    expect(() => libtrustKeyId(new Uint8Array([...spki, 0]))).toThrow(/trailing bytes/);
    expect(() => libtrustKeyId(new Uint8Array())).toThrow(/not a DER SubjectPublicKeyInfo/);
  });
});
