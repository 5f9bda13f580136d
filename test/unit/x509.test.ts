import { execFileSync, spawnSync } from 'node:child_process';
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  sign,
  X509Certificate,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parseDer, readChildren, TAG } from '../../lambda/core/der.js';
import { derToJose } from '../../lambda/core/ecdsa.js';
import {
  type CertificateSpec,
  certificateToPem,
  createCertificate,
  parsePemCertificates,
  spkiOfCertificate,
} from '../../lambda/core/x509.js';

const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;
const itOpenssl = HAS_OPENSSL ? it : it.skip;

const workDir = mkdtempSync(join(tmpdir(), 'regtoken-x509-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function writeTemp(name: string, content: string): string {
  const path = join(workDir, name);
  writeFileSync(path, content);
  return path;
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const spkiOf = (key: KeyObject): Uint8Array =>
  new Uint8Array(key.export({ type: 'spki', format: 'der' }));
const signerFor =
  (key: KeyObject) =>
  (tbs: Uint8Array): Uint8Array =>
    new Uint8Array(sign('sha256', tbs, key));

// Whole seconds: X.509 times have no sub-second part.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const NOT_BEFORE = new Date(NOW.getTime() - 3_600_000);
const NOT_AFTER = new Date(NOW.getTime() + 30 * 86_400_000);

const ecRoot = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecLeaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaRoot = generateKeyPairSync('rsa', { modulusLength: 2048 });

function rootSpec(overrides: Partial<CertificateSpec> = {}): CertificateSpec {
  return {
    subjectCommonName: 'regtoken test root',
    issuerCommonName: 'regtoken test root',
    serialNumber: Uint8Array.of(0x01, 0x02, 0x03),
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    subjectPublicKey: spkiOf(ecRoot.publicKey),
    issuerPublicKey: spkiOf(ecRoot.publicKey),
    ca: true,
    signatureAlgorithm: 'ES256',
    ...overrides,
  };
}

function leafSpec(overrides: Partial<CertificateSpec> = {}): CertificateSpec {
  return rootSpec({
    subjectCommonName: 'regtoken test signer',
    serialNumber: Uint8Array.of(0x42),
    subjectPublicKey: spkiOf(ecLeaf.publicKey),
    ca: false,
    ...overrides,
  });
}

/** The TBSCertificate fields of a DER certificate, read with the module's own DER reader. */
function tbsFields(der: Uint8Array) {
  const [tbs] = readChildren(parseDer(der, TAG.SEQUENCE).value);
  if (!tbs) throw new Error('no TBSCertificate');
  return readChildren(tbs.value);
}

describe('createCertificate: P-256 root and leaf', () => {
  const built = (async () => {
    const root = await createCertificate(rootSpec(), signerFor(ecRoot.privateKey));
    const leaf = await createCertificate(leafSpec(), signerFor(ecRoot.privateKey));
    return { root, leaf };
  })();

  it('parses with node:crypto with the expected names, dates and CA flags', async () => {
    const { root, leaf } = await built;
    const r = new X509Certificate(root);
    const l = new X509Certificate(leaf);
    expect(r.subject).toBe('CN=regtoken test root');
    expect(r.issuer).toBe('CN=regtoken test root');
    expect(l.subject).toBe('CN=regtoken test signer');
    expect(l.issuer).toBe('CN=regtoken test root');
    expect(new Date(r.validFrom)).toEqual(NOT_BEFORE);
    expect(new Date(r.validTo)).toEqual(NOT_AFTER);
    expect(new Date(l.validFrom)).toEqual(NOT_BEFORE);
    expect(new Date(l.validTo)).toEqual(NOT_AFTER);
    expect(r.ca).toBe(true);
    expect(l.ca).toBe(false);
    expect(r.serialNumber).toBe('010203');
    expect(l.serialNumber).toBe('42');
  });

  it('chains: the root issued itself and the leaf, and both signatures verify', async () => {
    const { root, leaf } = await built;
    const r = new X509Certificate(root);
    const l = new X509Certificate(leaf);
    expect(r.checkIssued(r)).toBe(true);
    expect(l.checkIssued(r)).toBe(true);
    expect(r.checkIssued(l)).toBe(false);
    expect(r.verify(ecRoot.publicKey)).toBe(true);
    expect(l.verify(ecRoot.publicKey)).toBe(true);
    expect(l.verify(ecLeaf.publicKey)).toBe(false);
  });

  it('carries the certified public key', async () => {
    const { root, leaf } = await built;
    const l = new X509Certificate(leaf);
    expect(toHex(spkiOf(l.publicKey))).toBe(toHex(spkiOf(ecLeaf.publicKey)));
    expect(toHex(spkiOfCertificate(leaf))).toBe(toHex(spkiOf(ecLeaf.publicKey)));
    expect(toHex(spkiOfCertificate(root))).toBe(toHex(spkiOf(ecRoot.publicKey)));
  });

  it('writes PEM exactly as OpenSSL does and reads it back', async () => {
    const { root, leaf } = await built;
    const pem = certificateToPem(root);
    expect(pem).toBe(new X509Certificate(root).toString());
    expect(pem.split('\n').every((line) => line.length <= 64)).toBe(true);
    expect(pem.endsWith('-----END CERTIFICATE-----\n')).toBe(true);
    const parsed = parsePemCertificates(pem + certificateToPem(leaf));
    expect(parsed.map(toHex)).toEqual([toHex(root), toHex(leaf)]);
  });

  itOpenssl('passes openssl verify (strict) and shows the extensions', async () => {
    const { root, leaf } = await built;
    const rootPem = writeTemp('ec-root.pem', certificateToPem(root));
    const leafPem = writeTemp('ec-leaf.pem', certificateToPem(leaf));
    expect(openssl('verify', '-x509_strict', '-CAfile', rootPem, leafPem)).toContain(': OK');
    expect(openssl('verify', '-x509_strict', '-CAfile', rootPem, rootPem)).toContain(': OK');

    const rootText = openssl('x509', '-in', rootPem, '-noout', '-text');
    const leafText = openssl('x509', '-in', leafPem, '-noout', '-text');
    expect(rootText).toContain('Version: 3 (0x2)');
    expect(rootText).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(rootText).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(rootText).toMatch(
      /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign\n/,
    );
    expect(leafText).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(leafText).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);

    // SKI = SHA-1 of the subjectPublicKey bits (the last 65 bytes of a P-256 SPKI: 04 || x || y).
    const colonHex = (bytes: Uint8Array) => toHex(bytes).toUpperCase().match(/../g)?.join(':');
    const rootSki = colonHex(
      createHash('sha1').update(spkiOf(ecRoot.publicKey).subarray(26)).digest(),
    );
    const leafSki = colonHex(
      createHash('sha1').update(spkiOf(ecLeaf.publicKey).subarray(26)).digest(),
    );
    expect(rootText).toMatch(new RegExp(`X509v3 Subject Key Identifier:\\s+${rootSki}\\n`));
    expect(rootText).toMatch(
      new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${rootSki}\\n`),
    );
    expect(leafText).toMatch(new RegExp(`X509v3 Subject Key Identifier:\\s+${leafSki}\\n`));
    expect(leafText).toMatch(
      new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${rootSki}\\n`),
    );
  });

  it('accepts an asynchronous signer', async () => {
    const der = await createCertificate(rootSpec(), async (tbs) => {
      await new Promise((resolve) => setImmediate(resolve));
      return signerFor(ecRoot.privateKey)(tbs);
    });
    expect(new X509Certificate(der).verify(ecRoot.publicKey)).toBe(true);
  });

  it('signs exactly the TBSCertificate it embeds', async () => {
    let signed: Uint8Array | undefined;
    const der = await createCertificate(rootSpec(), (tbs) => {
      signed = tbs;
      return signerFor(ecRoot.privateKey)(tbs);
    });
    const [tbs] = readChildren(parseDer(der, TAG.SEQUENCE).value);
    expect(signed && toHex(signed)).toBe(tbs && toHex(tbs.der));
  });
});

describe('createCertificate: RSA-2048 issuer', () => {
  const rsaSpec = rootSpec({
    subjectCommonName: 'regtoken rsa root',
    issuerCommonName: 'regtoken rsa root',
    subjectPublicKey: spkiOf(rsaRoot.publicKey),
    issuerPublicKey: spkiOf(rsaRoot.publicKey),
    signatureAlgorithm: 'RS256',
  });
  const built = (async () => {
    const root = await createCertificate(rsaSpec, signerFor(rsaRoot.privateKey));
    const leaf = await createCertificate(
      leafSpec({
        issuerCommonName: 'regtoken rsa root',
        issuerPublicKey: spkiOf(rsaRoot.publicKey),
        signatureAlgorithm: 'RS256',
      }),
      signerFor(rsaRoot.privateKey),
    );
    return { root, leaf };
  })();

  it('builds a self-signed RSA root and an EC leaf it issued', async () => {
    const { root, leaf } = await built;
    const r = new X509Certificate(root);
    const l = new X509Certificate(leaf);
    expect(r.ca).toBe(true);
    expect(r.checkIssued(r)).toBe(true);
    expect(r.verify(rsaRoot.publicKey)).toBe(true);
    expect(l.checkIssued(r)).toBe(true);
    expect(l.verify(rsaRoot.publicKey)).toBe(true);
    expect(toHex(spkiOf(r.publicKey))).toBe(toHex(spkiOf(rsaRoot.publicKey)));
    expect(toHex(spkiOf(l.publicKey))).toBe(toHex(spkiOf(ecLeaf.publicKey)));
  });

  itOpenssl('passes openssl verify with sha256WithRSAEncryption', async () => {
    const { root, leaf } = await built;
    const rootPem = writeTemp('rsa-root.pem', certificateToPem(root));
    const leafPem = writeTemp('rsa-leaf.pem', certificateToPem(leaf));
    expect(openssl('verify', '-x509_strict', '-CAfile', rootPem, leafPem)).toContain(': OK');
    expect(openssl('x509', '-in', leafPem, '-noout', '-text')).toContain(
      'Signature Algorithm: sha256WithRSAEncryption',
    );
  });
});

describe('serial numbers', () => {
  const serialOf = async (serial: Uint8Array) => {
    const der = await createCertificate(
      rootSpec({ serialNumber: serial }),
      signerFor(ecRoot.privateKey),
    );
    return { der, field: tbsFields(der)[1] };
  };

  it('stays positive when the first byte is >= 0x80', async () => {
    const serial = Uint8Array.of(0xff, ...new Uint8Array(15).fill(0xab));
    const { der, field } = await serialOf(serial);
    expect(field?.tag).toBe(TAG.INTEGER);
    expect(field && toHex(field.value)).toBe(`00${toHex(serial)}`);
    expect(new X509Certificate(der).serialNumber).toBe(toHex(serial).toUpperCase());
  });

  it('accepts 19 bytes with the top bit set (20 octets encoded) and 20 with it clear', async () => {
    const { field } = await serialOf(new Uint8Array(19).fill(0x80));
    expect(field?.value).toHaveLength(20);
    const { field: field20 } = await serialOf(new Uint8Array(20).fill(0x7f));
    expect(field20?.value).toHaveLength(20);
  });

  it('drops redundant leading zero bytes', async () => {
    const { field } = await serialOf(Uint8Array.of(0, 0, 0x05));
    expect(field && toHex(field.value)).toBe('05');
  });

  it('drops a leading zero byte of a Buffer too (randomBytes gives one in 256 runs)', async () => {
    // Buffer#slice shares memory: the serial was once written with its zero byte, a
    // non-minimal INTEGER that OpenSSL and Go refuse to parse, so the whole certificate failed.
    const serial = Buffer.from('0014463fa970c95368169b11f1c40b59', 'hex');
    const { der, field } = await serialOf(serial);
    expect(field && toHex(field.value)).toBe('14463fa970c95368169b11f1c40b59');
    expect(new X509Certificate(der).serialNumber).toBe('14463FA970C95368169B11F1C40B59');
  });

  it('rejects zero and anything longer than 20 encoded octets', async () => {
    const sign = signerFor(ecRoot.privateKey);
    await expect(
      createCertificate(rootSpec({ serialNumber: new Uint8Array(3) }), sign),
    ).rejects.toThrow(/serialNumber must be positive/);
    await expect(
      createCertificate(rootSpec({ serialNumber: new Uint8Array(20).fill(0x80) }), sign),
    ).rejects.toThrow(/serialNumber must fit in 20 octets/);
    await expect(
      createCertificate(rootSpec({ serialNumber: new Uint8Array(21).fill(0x01) }), sign),
    ).rejects.toThrow(/serialNumber must fit in 20 octets/);
  });
});

describe('validity times', () => {
  const timeTags = async (notBefore: Date, notAfter: Date) => {
    const der = await createCertificate(
      rootSpec({ notBefore, notAfter }),
      signerFor(ecRoot.privateKey),
    );
    const validity = tbsFields(der)[4];
    if (!validity) throw new Error('no validity');
    return { der, tags: readChildren(validity.value).map((t) => t.tag) };
  };

  it('uses UTCTime through 2049 and GeneralizedTime from 2050', async () => {
    const last = new Date('2049-12-31T23:59:59Z');
    const first = new Date('2050-01-01T00:00:00Z');
    const { der, tags } = await timeTags(last, first);
    expect(tags).toEqual([TAG.UTC_TIME, TAG.GENERALIZED_TIME]);
    const cert = new X509Certificate(der);
    expect(new Date(cert.validFrom)).toEqual(last);
    expect(new Date(cert.validTo)).toEqual(first);
  });

  it('uses GeneralizedTime before 1950 and UTCTime from 1950', async () => {
    const { tags } = await timeTags(new Date('1949-12-31T23:59:59Z'), new Date('1950-01-01Z'));
    expect(tags).toEqual([TAG.GENERALIZED_TIME, TAG.UTC_TIME]);
  });

  itOpenssl('shows GeneralizedTime to openssl for a far-future notAfter', async () => {
    const { der } = await timeTags(NOT_BEFORE, new Date('2100-06-15T12:30:45Z'));
    const path = writeTemp('far-future.pem', certificateToPem(der));
    expect(openssl('x509', '-in', path, '-noout', '-enddate')).toContain(
      'notAfter=Jun 15 12:30:45 2100 GMT',
    );
    expect(openssl('asn1parse', '-in', path)).toContain('GENERALIZEDTIME   :21000615123045Z');
  });

  it('drops milliseconds', async () => {
    const { der } = await timeTags(new Date('2030-01-02T03:04:05.999Z'), new Date('2031-01-01Z'));
    expect(new Date(new X509Certificate(der).validFrom)).toEqual(new Date('2030-01-02T03:04:05Z'));
  });
});

describe('createCertificate rejects', () => {
  const sign = signerFor(ecRoot.privateKey);

  it.each([
    [
      'notAfter before notBefore',
      { notAfter: new Date(NOT_BEFORE.getTime() - 1000) },
      /notAfter is before notBefore/,
    ],
    ['an invalid date', { notBefore: new Date(Number.NaN) }, /must be valid dates/],
    ['an empty subject CN', { subjectCommonName: '' }, /subjectCommonName must be 1 to 64/],
    [
      'a 65-character issuer CN',
      { issuerCommonName: 'x'.repeat(65) },
      /issuerCommonName must be 1 to 64/,
    ],
    [
      'an issuer key of the wrong type',
      { signatureAlgorithm: 'RS256' as const },
      /issuerPublicKey is not a key for RS256/,
    ],
    [
      'a subject key that is not an SPKI',
      { subjectPublicKey: Uint8Array.of(4, 1, 2) },
      /subjectPublicKey is not a DER SubjectPublicKeyInfo/,
    ],
  ])('%s', async (_name, overrides, message) => {
    await expect(createCertificate(rootSpec(overrides), sign)).rejects.toThrow(message);
  });

  it('a JWS-format (r || s) ECDSA signature', async () => {
    const jose = (tbs: Uint8Array) => derToJose(sign(tbs));
    await expect(createCertificate(rootSpec(), jose)).rejects.toThrow(/not a DER ECDSA-Sig-Value/);
  });

  it('a signature by a key other than issuerPublicKey', async () => {
    await expect(createCertificate(rootSpec(), signerFor(ecLeaf.privateKey))).rejects.toThrow(
      /does not verify with issuerPublicKey/,
    );
  });

  it('an empty signature', async () => {
    await expect(createCertificate(rootSpec(), () => new Uint8Array())).rejects.toThrow(
      /no signature/,
    );
  });
});

describe('parsePemCertificates', () => {
  const pemOf = async () =>
    certificateToPem(await createCertificate(rootSpec(), signerFor(ecRoot.privateKey)));

  it('returns no certificates for text without blocks', () => {
    expect(parsePemCertificates('')).toEqual([]);
    expect(parsePemCertificates('just a comment\n')).toEqual([]);
  });

  it('skips other block types and text around blocks, and accepts CRLF', async () => {
    const pem = await pemOf();
    const publicKey = ecRoot.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const bundle = `# bundle\n${publicKey}${pem}trailing text\n${pem}`.replace(/\n/g, '\r\n');
    expect(parsePemCertificates(bundle)).toHaveLength(2);
  });

  it('names the problem in malformed blocks', async () => {
    const pem = await pemOf();
    const lines = pem.trimEnd().split('\n');
    const body = lines.slice(1, -1).join('\n');
    const begin = '-----BEGIN CERTIFICATE-----';
    const end = '-----END CERTIFICATE-----';
    expect(() => parsePemCertificates(`${pem}${begin}\n${body}\n`)).toThrow(
      /block 2 has no END line/,
    );
    expect(() => parsePemCertificates(`${begin}\n${body}\n${begin}\n${body}\n${end}\n`)).toThrow(
      /block 1 has no END line/,
    );
    expect(() => parsePemCertificates(`${pem}${end}\n`)).toThrow(
      /END CERTIFICATE line after block 1 without a BEGIN/,
    );
    expect(() => parsePemCertificates(`${begin}\n${body.replace(/A/, '*')}\n${end}\n`)).toThrow(
      /block 1 is not valid base64/,
    );
    expect(() => parsePemCertificates(`${begin}\n${end}\n`)).toThrow(/block 1 is not valid base64/);
    const spkiB64 = Buffer.from(spkiOf(ecRoot.publicKey)).toString('base64');
    expect(() => parsePemCertificates(`${begin}\n${spkiB64}\n${end}\n`)).toThrow(
      /block 1 is not a certificate/,
    );
  });
});

describe('spkiOfCertificate', () => {
  itOpenssl('extracts the key of a certificate made by openssl', () => {
    const keyPath = join(workDir, 'openssl-key.pem');
    const certPath = join(workDir, 'openssl-cert.pem');
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=openssl made',
      '-days',
      '1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    );
    const [der] = parsePemCertificates(readFileSync(certPath, 'utf8'));
    if (!der) throw new Error('no certificate parsed');
    const expected = spkiOf(new X509Certificate(der).publicKey);
    expect(toHex(spkiOfCertificate(der))).toBe(toHex(expected));
  });

  it('rejects input that is not a certificate', () => {
    expect(() => spkiOfCertificate(spkiOf(ecRoot.publicKey))).toThrow(/expected SEQUENCE/);
    expect(() => spkiOfCertificate(new Uint8Array())).toThrow(/ends where a tag was expected/);
  });
});
