/**
 * Reading certificates: PEM bundles to DER and the public key inside a certificate, with the
 * strict DER reader (der.ts), and DER back to PEM. Apart from x509.ts, which builds certificates
 * with the ASN.1 libraries, so that a run which reuses its published root certificate, and every
 * command that makes none, does not load them.
 */

import { parseDer, readChildren, TAG, type Tlv } from './der.js';

/** Encodes a DER certificate as PEM: BEGIN/END CERTIFICATE, 64-column base64, final newline. */
export function certificateToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * Decodes every CERTIFICATE block of a PEM text, in order (an empty array when there is none).
 * Text outside the blocks and blocks of other types are skipped, as OpenSSL does for bundles.
 * Throws an Error naming the block for a BEGIN without END (or the reverse), invalid base64, or
 * content that is not a DER certificate.
 */
export function parsePemCertificates(pem: string): Uint8Array[] {
  const BEGIN = '-----BEGIN CERTIFICATE-----';
  const END = '-----END CERTIFICATE-----';
  const out: Uint8Array[] = [];
  let body: string[] | undefined;
  let index = 0;
  for (const raw of pem.split(/\r?\n/)) {
    const line = raw.trim();
    if (body === undefined) {
      if (line === BEGIN) {
        body = [];
        index++;
      } else if (line === END) {
        throw new Error(`PEM has an END CERTIFICATE line after block ${index} without a BEGIN`);
      }
    } else if (line === END) {
      out.push(decodeCertificateBlock(body.join(''), index));
      body = undefined;
    } else if (line.startsWith('-----')) {
      throw new Error(`PEM certificate block ${index} has no END line`);
    } else {
      body.push(line);
    }
  }
  if (body !== undefined) throw new Error(`PEM certificate block ${index} has no END line`);
  return out;
}

function decodeCertificateBlock(b64: string, index: number): Uint8Array {
  if (b64 === '' || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new Error(`PEM certificate block ${index} is not valid base64`);
  }
  const der = new Uint8Array(Buffer.from(b64, 'base64'));
  try {
    certificateParts(der);
  } catch (err) {
    throw new Error(
      `PEM certificate block ${index} is not a certificate: ${(err as Error).message}`,
    );
  }
  return der;
}

/**
 * Returns a copy of the DER SubjectPublicKeyInfo inside a DER certificate (to compute the libtrust
 * key ID of a certificate's key). Throws when the input is not a certificate.
 */
export function spkiOfCertificate(der: Uint8Array): Uint8Array {
  const tbsFields = readChildren(certificateParts(der).tbs.value);
  // TBSCertificate: [0] version (absent in v1), serialNumber, signature, issuer, validity,
  // subject, subjectPublicKeyInfo, ...
  const start = tbsFields[0]?.tag === 0xa0 ? 1 : 0;
  const spki = tbsFields[start + 5];
  if (spki?.tag !== TAG.SEQUENCE) throw new Error('certificate has no SubjectPublicKeyInfo');
  return spki.der.slice();
}

export function certificateParts(der: Uint8Array): { tbs: Tlv } {
  const fields = readChildren(parseDer(der, TAG.SEQUENCE).value);
  const [tbs, algorithm, signature] = fields;
  if (
    fields.length !== 3 ||
    tbs?.tag !== TAG.SEQUENCE ||
    algorithm?.tag !== TAG.SEQUENCE ||
    signature?.tag !== TAG.BIT_STRING
  ) {
    throw new Error('expected SEQUENCE { TBSCertificate, AlgorithmIdentifier, BIT STRING }');
  }
  return { tbs };
}
