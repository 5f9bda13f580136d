/**
 * X.509 v3 certificates (RFC 5280) with an external signer. Docker Distribution's token auth
 * trusts keys through a root certificate bundle, and regtoken's signing key lives in AWS KMS, so
 * the TBSCertificate is built here and only it is handed to KMS `Sign`. The structures and their
 * DER come from `@peculiar/asn1-x509` (the ASN.1 modules of RFC 5280); this module chooses the
 * profile, which is fixed and small on purpose: one CN as the name, basic constraints, key usage,
 * and subject/authority key identifiers, which is what OpenSSL's and Go's verifiers need for a
 * root and a leaf. Certificates read back from a published bundle are checked with the strict
 * DER reader (der.ts): a lenient parse could accept bytes another implementation reads otherwise.
 */

import { createHash, createPublicKey, verify } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Time,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { certificateParts } from './certificate-pem.js';
import { parseDer, readChildren, readObjectIdentifier, TAG } from './der.js';
import { parseEcdsaSignature } from './ecdsa.js';

// Reading lives apart (certificate-pem.ts); it is part of this module's interface too.
export {
  certificateToPem,
  parsePemCertificates,
  spkiOfCertificate,
} from './certificate-pem.js';

/** JWS name of the issuer's signature algorithm: ECDSA P-256/SHA-256 or RSA PKCS#1 v1.5/SHA-256. */
export type SignatureAlgorithm = 'ES256' | 'RS256';

/** Everything that goes into a certificate; see each field for the constraints enforced. */
export interface CertificateSpec {
  /** Subject CN, 1–64 characters (RFC 5280 ub-common-name), encoded as UTF8String. */
  subjectCommonName: string;
  /** Issuer CN; equals `subjectCommonName` for a self-signed certificate. */
  issuerCommonName: string;
  /**
   * Unsigned big-endian serial number: non-zero, and at most 20 octets once DER-encoded (so a
   * 20-byte value must have its top bit clear, as Go's x509 also requires). A top bit that is set
   * gets a 0x00 sign byte so the serial stays positive.
   */
  serialNumber: Uint8Array;
  /** Start of validity; sub-second precision is dropped. */
  notBefore: Date;
  /** End of validity, not before `notBefore`; years from 2050 on are written as GeneralizedTime. */
  notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  subjectPublicKey: Uint8Array;
  /** DER SubjectPublicKeyInfo of the issuer (the subject's own when self-signed). */
  issuerPublicKey: Uint8Array;
  /**
   * True for a CA (basicConstraints critical CA:TRUE pathLen 0; keyUsage critical
   * keyCertSign, cRLSign, digitalSignature); false for a leaf (basicConstraints critical
   * CA:FALSE; keyUsage critical digitalSignature).
   */
  ca: boolean;
  /** Algorithm of the issuer's key, which signs the certificate. */
  signatureAlgorithm: SignatureAlgorithm;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  commonName: '2.5.4.3',
} as const;

const KEY_ALGORITHM: Record<SignatureAlgorithm, string> = {
  ES256: OID.ecPublicKey,
  RS256: OID.rsaEncryption,
};

/**
 * Builds and signs a certificate. `sign` receives the DER TBSCertificate and must return the
 * X.509 signature value for `signatureAlgorithm`: a DER ECDSA-Sig-Value for ES256, PKCS#1 v1.5
 * bytes for RS256 — exactly what `crypto.sign('sha256', tbs, key)` and AWS KMS Sign return. The
 * signature is checked against `issuerPublicKey` before the certificate is returned, so a signer
 * holding the wrong key or returning JWS-format `r || s` fails here instead of at the registry.
 * Throws an Error naming the problem for an invalid spec or signature.
 */
export async function createCertificate(
  spec: CertificateSpec,
  sign: (tbs: Uint8Array) => Uint8Array | Promise<Uint8Array>,
): Promise<Uint8Array> {
  const subjectKey = readSpki(spec.subjectPublicKey, 'subjectPublicKey');
  const issuerKey = readSpki(spec.issuerPublicKey, 'issuerPublicKey');
  const expectedKeyAlgorithm = KEY_ALGORITHM[spec.signatureAlgorithm];
  if (expectedKeyAlgorithm === undefined) {
    throw new Error('signatureAlgorithm must be ES256 or RS256');
  }
  if (issuerKey.algorithm !== expectedKeyAlgorithm) {
    throw new Error(`issuerPublicKey is not a key for ${spec.signatureAlgorithm}`);
  }
  if (Number.isNaN(spec.notBefore.getTime()) || Number.isNaN(spec.notAfter.getTime())) {
    throw new Error('notBefore and notAfter must be valid dates');
  }
  if (spec.notAfter.getTime() < spec.notBefore.getTime()) {
    throw new Error('notAfter is before notBefore');
  }

  const signatureAlgorithm = algorithmIdentifier(spec.signatureAlgorithm);
  const tbsCertificate = new TBSCertificate({
    version: Version.v3, // required for extensions
    serialNumber: serialNumber(spec.serialNumber),
    signature: signatureAlgorithm,
    issuer: name(spec.issuerCommonName, 'issuerCommonName'),
    validity: validity(spec.notBefore, spec.notAfter),
    subject: name(spec.subjectCommonName, 'subjectCommonName'),
    subjectPublicKeyInfo: AsnConvert.parse(spec.subjectPublicKey, SubjectPublicKeyInfo),
    extensions: profileExtensions(spec.ca, subjectKey.bits, issuerKey.bits),
  });
  const tbs = new Uint8Array(AsnConvert.serialize(tbsCertificate));

  const signature = await sign(tbs);
  if (!(signature instanceof Uint8Array) || signature.length === 0) {
    throw new Error('signer returned no signature');
  }
  if (spec.signatureAlgorithm === 'ES256') parseEcdsaSignature(signature);
  const issuer = createPublicKey({
    key: Buffer.from(spec.issuerPublicKey),
    format: 'der',
    type: 'spki',
  });
  if (!verify('sha256', tbs, issuer, signature)) {
    throw new Error('certificate signature does not verify with issuerPublicKey');
  }
  const certificate = new Uint8Array(
    AsnConvert.serialize(
      new Certificate({
        tbsCertificate,
        signatureAlgorithm,
        signatureValue: Uint8Array.from(signature).buffer, // a copy, whatever memory it shares
      }),
    ),
  );
  // The signature covers `tbs`: the certificate must embed exactly those bytes.
  if (!Buffer.from(certificateParts(certificate).tbs.der).equals(tbs))
    throw new Error('certificate does not embed the TBSCertificate that was signed');
  return certificate;
}

/** Key algorithm OID and the subjectPublicKey BIT STRING contents (unused-bits byte removed). */
function readSpki(der: Uint8Array, field: string): { algorithm: string; bits: Uint8Array } {
  try {
    const fields = readChildren(parseDer(der, TAG.SEQUENCE).value);
    const [algorithm, key] = fields;
    if (fields.length !== 2 || algorithm?.tag !== TAG.SEQUENCE || key?.tag !== TAG.BIT_STRING) {
      throw new Error('expected SEQUENCE { AlgorithmIdentifier, BIT STRING }');
    }
    const oid = readChildren(algorithm.value)[0];
    if (oid === undefined) throw new Error('AlgorithmIdentifier is empty');
    if (key.value[0] !== 0) throw new Error('subjectPublicKey has unused bits');
    return { algorithm: readObjectIdentifier(oid), bits: key.value.subarray(1) };
  } catch (err) {
    throw new Error(`${field} is not a DER SubjectPublicKeyInfo: ${(err as Error).message}`);
  }
}

/**
 * The extensions of regtoken's profile: for a CA, basicConstraints critical CA:TRUE pathLen 0
 * and keyUsage critical keyCertSign, cRLSign, digitalSignature; for a leaf, basicConstraints
 * critical CA:FALSE and keyUsage critical digitalSignature; both with subject and authority key
 * identifiers.
 */
function profileExtensions(
  ca: boolean,
  subjectBits: Uint8Array,
  issuerBits: Uint8Array,
): Extensions {
  return new Extensions([
    // A leaf's cA is FALSE, the DEFAULT, which DER omits: an empty SEQUENCE.
    extension(
      id_ce_basicConstraints,
      true,
      new BasicConstraints(ca ? { cA: true, pathLenConstraint: 0 } : {}),
    ),
    extension(
      id_ce_keyUsage,
      true,
      new KeyUsage(
        ca
          ? KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign
          : KeyUsageFlags.digitalSignature,
      ),
    ),
    extension(
      id_ce_subjectKeyIdentifier,
      false,
      new SubjectKeyIdentifier(keyIdentifier(subjectBits)),
    ),
    extension(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({
        keyIdentifier: new KeyIdentifier(keyIdentifier(issuerBits)),
      }),
    ),
  ]);
}

function algorithmIdentifier(alg: SignatureAlgorithm): AlgorithmIdentifier {
  // RFC 5758 §3.2: ecdsa-with-SHA256 has absent parameters; RFC 4055 keeps NULL for RSA.
  return alg === 'ES256'
    ? new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 })
    : new AlgorithmIdentifier({ algorithm: OID.sha256WithRsa, parameters: null });
}

/** The serial as a minimal, positive DER INTEGER's content octets. */
function serialNumber(value: Uint8Array): ArrayBuffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const magnitude = value.subarray(start);
  if (magnitude.every((b) => b === 0)) throw new Error('serialNumber must be positive');
  // A set top bit would read as negative: a 0x00 sign byte keeps the serial positive.
  // A copy of its own: `value` may be a Buffer, whose slice() shares (and .buffer exposes) the
  // whole memory, leading zero bytes included.
  const content =
    (magnitude[0] ?? 0) & 0x80 ? Uint8Array.of(0, ...magnitude) : Uint8Array.from(magnitude);
  // RFC 5280 §4.1.2.2 caps the encoded INTEGER's content at 20 octets.
  if (content.length > 20) {
    throw new Error('serialNumber must fit in 20 octets (a 20-byte value needs its top bit clear)');
  }
  return content.buffer;
}

function name(commonName: string, field: string): Name {
  const length = [...commonName].length;
  if (length < 1 || length > 64) throw new Error(`${field} must be 1 to 64 characters`);
  return new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: OID.commonName,
        value: new AttributeValue({ utf8String: commonName }),
      }),
    ]),
  ]);
}

function validity(notBefore: Date, notAfter: Date): Validity {
  const v = new Validity();
  v.notBefore = x509Time(notBefore);
  v.notAfter = x509Time(notAfter);
  return v;
}

/**
 * RFC 5280 §4.1.2.5: UTCTime for the years 1950 through 2049, GeneralizedTime otherwise; whole
 * seconds only.
 */
function x509Time(date: Date): Time {
  const seconds = new Date(Math.floor(date.getTime() / 1000) * 1000);
  const year = seconds.getUTCFullYear();
  return new Time(year >= 1950 && year <= 2049 ? { utcTime: seconds } : { generalTime: seconds });
}

function extension(oid: string, critical: boolean, value: object): Extension {
  // critical DEFAULT FALSE: DER omits it rather than encoding FALSE (the library does so).
  return new Extension({
    extnID: oid,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
function keyIdentifier(publicKeyBits: Uint8Array): ArrayBuffer {
  return new Uint8Array(createHash('sha1').update(publicKeyBits).digest()).buffer;
}
