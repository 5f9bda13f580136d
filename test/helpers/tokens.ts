import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireBinary, run } from './process.js';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32NoPad(data: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The docker/libtrust key id the registry derives from a certificate's public key (and matches
 * against the JWT header's `kid`): SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes,
 * RFC 4648 base32 without padding, split into 12 groups of 4 characters joined by ':'.
 * Written independently of the product code so tests can cross-check it.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const b32 = base32NoPad(createHash('sha256').update(der).digest().subarray(0, 30));
  return (b32.match(/.{4}/g) ?? []).join(':');
}

/** A P-256 signing key with a self-signed certificate on disk, made by {@link createSigningKey}. */
export interface TestSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM private key file. */
  keyPath: string;
  /** Self-signed X.509 certificate (PEM), usable as the registry's rootcertbundle. */
  certPath: string;
  /** {@link libtrustKeyId} of the public key. */
  kid: string;
}

/**
 * Generates an ES256 (P-256) key with node:crypto, writes it to `dir/<name>.key.pem` and makes a
 * self-signed certificate `dir/<name>.crt.pem` with the openssl CLI (`openssl req -x509 -new
 * -key KEY -subj /CN=<name> -days 1`). Throws with the install command if openssl is missing.
 */
export async function createSigningKey(dir: string, name = 'test'): Promise<TestSigningKey> {
  const openssl = await requireBinary('openssl', 'apt-get install -y openssl');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPath = path.join(dir, `${name}.key.pem`);
  const certPath = path.join(dir, `${name}.crt.pem`);
  await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const res = await run(
    openssl,
    [
      'req',
      '-x509',
      '-new',
      '-key',
      keyPath,
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      '-out',
      certPath,
    ],
    { timeoutMs: 20_000, env: { ...process.env, OPENSSL_CONF: '/dev/null' } },
  );
  if (res.code !== 0) throw new Error(`openssl req failed (${res.code}): ${res.stderr}`);
  return { privateKey, publicKey, keyPath, certPath, kid: libtrustKeyId(publicKey) };
}

/** One entry of a registry token's `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** Inputs of {@link signTestToken}; `exp`, `nbf`, `iat` are seconds since the epoch. */
export interface TestTokenClaims {
  issuer: string;
  service: string;
  subject?: string;
  access: AccessEntry[];
  /** Lifetime in seconds from now (default 300); ignored if `exp` is given. */
  ttlSeconds?: number;
  exp?: number;
  nbf?: number;
  iat?: number;
  /** `aud` as sent; default the plain string `service`. */
  audience?: string | string[];
}

/**
 * Hand-crafts a Docker registry bearer token (compact JWS) without any JWT library: header
 * `{alg:'ES256', typ:'JWT', kid}` (kid defaults to the key's libtrust id), claims iss, sub, aud,
 * exp, nbf, iat, jti and access, signed with `crypto.sign('sha256', …, {dsaEncoding:
 * 'ieee-p1363'})`. Reference implementation for tests; regtoken itself must not use it.
 */
export function signTestToken(
  privateKey: KeyObject,
  claims: TestTokenClaims,
  header: { kid?: string } = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const kid = header.kid ?? libtrustKeyId(createPublicKey(privateKey));
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const payload = {
    iss: claims.issuer,
    sub: claims.subject ?? 'test-subject',
    aud: claims.audience ?? claims.service,
    exp: claims.exp ?? now + (claims.ttlSeconds ?? 300),
    nbf: claims.nbf ?? now - 5,
    iat: claims.iat ?? now,
    jti: randomUUID(),
    access: claims.access,
  };
  const signingInput = `${b64({ alg: 'ES256', typ: 'JWT', kid })}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(signingInput), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${signingInput}.${signature.toString('base64url')}`;
}
