/**
 * The local signer: a PEM private key on disk (P-256 → ES256, RSA ≥ 2048 bits → RS256), created
 * on first use when allowed. Tokens carry the registry 2.8 `kid` (the libtrust key ID); the
 * trust bundle is a long-lived self-signed certificate for the key, which is all the registry
 * needs to find it. The certificate is reused while it matches the key, so the bundle changes
 * only when the key does.
 */

import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { certificateToPem } from '../core/certificate-pem.js';
import { libtrustKeyId } from '../core/libtrust.js';
import type { PublishedBundle, Signer, SigningKey } from '../core/ports.js';
import { rootCertificates } from '../core/root-certificate.js';
import type { TokenAlgorithm } from '../core/token.js';
import { SigningKeyError } from '../errors.js';

/** Algorithm for a private key, or a message saying why the key cannot sign registry tokens. */
export function algorithmFor(key: KeyObject): TokenAlgorithm | string {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return 'RS256';
  return `unsupported key type ${key.asymmetricKeyType}${details?.namedCurve ? ` (${details.namedCurve})` : ''}${details?.modulusLength ? ` (${details.modulusLength} bits)` : ''}: use a P-256 EC key (ES256) or an RSA key of 2048 bits or more (RS256)`;
}

/** Signs `input` the JOSE way: raw r||s for ES256, PKCS#1 v1.5 for RS256. */
export function joseSign(alg: TokenAlgorithm, key: KeyObject, input: Uint8Array): Uint8Array {
  return alg === 'ES256'
    ? sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', input, key);
}

/** Builds a signing key for a local private key, reusing a matching certificate from `bundle`. */
export async function localSigningKey(
  privateKey: KeyObject,
  now: Date,
  publishedBundle: PublishedBundle,
  description: string,
): Promise<SigningKey> {
  const alg = algorithmFor(privateKey);
  if (alg !== 'ES256' && alg !== 'RS256') throw new SigningKeyError(`${description}: ${alg}`);
  const publicKey = createPublicKey(privateKey);
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const kid = libtrustKeyId(spki);

  // The self-signed certificate is reused from the bundle while it is fit, and re-issued
  // under the same key near its end (lambda/core/root-certificate.ts).
  const root = await rootCertificates({
    bundle: await publishedBundle,
    spki,
    now,
    name: description,
    // The ASN.1 libraries are loaded only to make a certificate: most runs reuse theirs.
    issue: async (notAfter) =>
      (await import('../core/x509.js')).createCertificate(
        {
          subjectCommonName: 'regtoken token signer',
          issuerCommonName: 'regtoken token signer',
          serialNumber: randomBytes(16),
          notBefore: new Date(now.getTime() - 3_600_000),
          notAfter,
          subjectPublicKey: spki,
          issuerPublicKey: spki,
          ca: true,
          signatureAlgorithm: alg,
        },
        (tbs) => sign('sha256', tbs, privateKey),
      ),
  });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return {
    alg,
    keyHeader: { kid },
    sign: (input) => joseSign(alg, privateKey, input),
    trust: { bundlePem: root.certs.map(certificateToPem).join(''), jwks: { keys: [jwk] } },
    description: `${description} (${alg}, kid ${kid})`,
    root: { daysLeft: root.daysLeft, notes: root.notes },
  };
}

/**
 * Why a key file with this owner and mode must not be trusted, or undefined when it may be. As
 * ssh judges key files: a file that group or others can write, or that belongs to anyone but
 * the user (or root), could have been planted, and its key would sign tokens the registry
 * trusts once its certificate is published.
 */
export function keyFileProblem(
  path: string,
  file: { readonly uid: number; readonly mode: number },
  uid: number,
): string | undefined {
  if (file.uid !== uid && file.uid !== 0)
    return `it belongs to user ${file.uid}, not to you (user ${uid}) or root, so someone else could have planted it; if it is yours, run: chown ${uid} ${path}`;
  const writers = [file.mode & 0o020 ? 'group' : '', file.mode & 0o002 ? 'others' : '']
    .filter(Boolean)
    .join(' and ');
  if (writers)
    return `${writers} can write it (mode ${(file.mode & 0o7777).toString(8).padStart(4, '0')}), so anyone could have replaced it; if it is yours, run: chmod go-w ${path}`;
  return undefined;
}

/** Options of {@link PemSigner}. */
export interface PemSignerOptions {
  /** Create a new P-256 key (mode 0600) when the file does not exist. */
  readonly create: boolean;
  readonly onCreate?: (path: string) => void;
  /** The user the key file must belong to (default: this process's); injected by tests. */
  readonly uid?: number;
}

/**
 * A signer backed by a PEM file; with `create`, a missing file gets a new P-256 key (mode 0600).
 * A key file that someone else could have written is refused ({@link keyFileProblem}).
 */
export class PemSigner implements Signer {
  constructor(
    readonly path: string,
    private readonly options: PemSignerOptions,
  ) {}

  async prepare(window: { now: Date; publishedBundle: PublishedBundle }): Promise<SigningKey> {
    const key = await this.load();
    return localSigningKey(key, window.now, window.publishedBundle, `signing key ${this.path}`);
  }

  private async load(): Promise<KeyObject> {
    let pem: string;
    try {
      pem = await this.readChecked();
    } catch (err) {
      if (err instanceof SigningKeyError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !this.options.create)
        throw new SigningKeyError(
          `signing key ${this.path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
          { cause: err },
        );
      return this.create();
    }
    try {
      return createPrivateKey(pem);
    } catch (err) {
      // The parser's message never includes key material, but ours is clearer still.
      throw new SigningKeyError(`signing key ${this.path}: not a PEM private key`, { cause: err });
    }
  }

  /**
   * Reads the key file after checking, on the opened file itself, who could have written it
   * (a check by path could be raced by a rename).
   */
  private async readChecked(): Promise<string> {
    const handle = await open(this.path, 'r');
    try {
      const uid = this.options.uid ?? process.getuid?.();
      if (uid !== undefined) {
        const problem = keyFileProblem(this.path, await handle.stat(), uid);
        if (problem) throw new SigningKeyError(`signing key ${this.path}: ${problem}`);
      }
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  }

  private async create(): Promise<KeyObject> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    try {
      await writeFile(this.path, pem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another run created it first: use theirs, so both sign with the same key.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return this.load();
      throw new SigningKeyError(`signing key ${this.path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.options.onCreate?.(this.path);
    return privateKey;
  }
}
