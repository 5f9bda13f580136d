/**
 * Signing rooted in AWS KMS: the private key never leaves KMS (docs/aws.md, "Signing").
 *
 * The KMS key (ECC_NIST_P256, SIGN_VERIFY) is a certificate authority. Its self-signed
 * certificate is the registry's `rootcertbundle`; it is made once and then reused from the
 * published bundle. Each run (certificate mode, the default):
 *   1. creates an ephemeral P-256 key in memory,
 *   2. has KMS sign one certificate for it, valid just past the run's longest token,
 *   3. signs every token locally with `x5c` = [that certificate].
 * That is two KMS calls on a container's first run (GetPublicKey, Sign) and one (Sign) on each
 * later run, whatever the number of tokens; the signing key changes every run, and the registry
 * needs no restart for it.
 *
 * Direct mode signs each token with KMS and uses the libtrust `kid` of the KMS key: one KMS
 * call per token (KMS answers in DER; {@link derToJose} converts). It exists for registries or
 * verifiers that cannot follow an `x5c` chain; the benchmark compares the two.
 *
 * Keys listed as additionally trusted stay in the bundle, so the root can be rotated without a
 * gap: see docs/aws.md, "Rotating the root".
 */

import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { certificateToPem } from '../core/certificate-pem.js';
import { derToJose } from '../core/ecdsa.js';
import { libtrustKeyId } from '../core/libtrust.js';
import type {
  PublishedBundle,
  RootedSigner,
  SignerRoot,
  SigningKey,
  TrustMaterial,
} from '../core/ports.js';
import { rootCertificates } from '../core/root-certificate.js';
import { createCertificate } from '../core/x509.js';
import { SigningKeyError } from '../errors.js';
import { describeAwsError } from './aws.js';
import { joseSign } from './pem-signer.js';
import { perClient } from './per-client.js';

/** KMS signs a message itself (MessageType RAW) up to this size; longer ones are sent as digest. */
const KMS_RAW_LIMIT = 4096;
/** Slack on the per-run certificate's validity for clock skew between KMS, us and the registry. */
const SKEW_MS = 5 * 60_000;

export type KmsSigningMode = 'certificate' | 'direct';

interface Root {
  readonly keyId: string;
  readonly spki: Uint8Array;
  /** The key's root certificates to publish, newest first (see root-certificate.ts). */
  readonly certs: readonly Uint8Array[];
  readonly daysLeft: number;
  readonly notes: readonly string[];
  readonly commonName: string;
  readonly kid: string;
}

/**
 * Signing keys' public keys already fetched, per KMS client and key. A KMS key's public key,
 * spec and usage never change, so a warm Lambda container (whose client lives across
 * invocations) asks once. Only the signing key is kept, and only by key ID or key ARN, never by
 * alias (an alias can be pointed at another key): its state is still checked every run, since
 * certificate mode has KMS sign the run's certificate and direct mode every token, so a disabled
 * or deleted key, or a lost permission, fails the run as before. Trusted keys sign nothing on a
 * run that finds their root certificate in the bundle, so their public key is fetched every run:
 * a trusted key that is disabled or gone still fails the run.
 */
const publicKeys = perClient<KMSClient, Uint8Array>();

/** The subject (and issuer) name of the root certificate of the key with libtrust ID `kid`. */
function rootName(kid: string): string {
  return `regtoken root ${kid.slice(0, 14)}`;
}

/** A {@link RootedSigner} whose root of trust is an asymmetric KMS key. */
export class KmsSigner implements RootedSigner {
  constructor(
    private readonly kms: KMSClient,
    private readonly keyId: string,
    private readonly options: {
      readonly mode?: KmsSigningMode;
      /** Keys whose root certificates stay in the bundle during a rotation. */
      readonly trustedKeyIds?: readonly string[];
    } = {},
  ) {}

  async prepare(window: {
    now: Date;
    notAfter: Date;
    publishedBundle: PublishedBundle;
  }): Promise<SigningKey> {
    const spki = this.publicKey(this.keyId, true);
    spki.catch(() => undefined); // reported below, after the bundle's read
    // The run's certificate needs the root's public key only: KMS signs it while the published
    // bundle (for the root certificates) is still being read. A failure of that read, or of
    // the root certificates, is reported first, as when the certificate came after them.
    const leaf =
      this.options.mode === 'direct'
        ? undefined
        : spki.then((key) => this.leafKey({ keyId: this.keyId, spki: key }, window));
    leaf?.catch(() => undefined);
    const { root, trust, status } = await this.roots(
      window.now,
      await window.publishedBundle,
      spki,
    );
    if (!leaf) {
      return {
        alg: 'ES256',
        keyHeader: { kid: root.kid },
        sign: async (input) => derToJose(await this.sign(this.keyId, input)),
        remote: true,
        trust,
        description: `KMS key ${this.keyId} (ES256, signed by KMS per token, kid ${root.kid})`,
        root: status,
      };
    }
    return { ...(await leaf), trust, root: status };
  }

  /**
   * The plan step of a fanned-out run: the trust material and the signing root as plain data,
   * with no per-run key (so no Sign, except the once-only root certificate). Certificate mode
   * only: in direct mode every worker would need the root's `kid` and KMS for every token.
   */
  async prepareRoot(window: { now: Date; publishedBundle: PublishedBundle }): Promise<{
    trust: TrustMaterial;
    root: SignerRoot;
    rootStatus: SigningKey['root'];
    description: string;
  }> {
    if (this.options.mode === 'direct')
      throw new SigningKeyError(
        'a fanned-out run certifies one key per shard: REGTOKEN_SIGNING_MODE=direct is not supported there',
      );
    const { root, trust, status } = await this.roots(window.now, await window.publishedBundle);
    return {
      trust,
      root: { keyId: root.keyId, publicKey: Buffer.from(root.spki).toString('base64') },
      rootStatus: status,
      description: `KMS key ${this.keyId} (ES256, per-shard certificates)`,
    };
  }

  /**
   * A worker's key in a fanned-out run: an ephemeral key certified under `root` with one KMS
   * Sign (no GetPublicKey: the plan step passed the root's public key along).
   */
  async certify(root: SignerRoot, window: { now: Date; notAfter: Date }): Promise<SigningKey> {
    if (root.keyId !== this.keyId)
      throw new SigningKeyError(
        `the run was planned with KMS key ${root.keyId}, this worker signs with ${this.keyId}`,
      );
    const spki = new Uint8Array(Buffer.from(root.publicKey, 'base64'));
    // The trust material was published by the plan step; a worker's key carries none.
    const key = await this.leafKey({ keyId: root.keyId, spki }, window);
    return {
      ...key,
      trust: { bundlePem: '', jwks: { keys: [] } },
      description: `KMS key ${root.keyId} (ES256, per-shard certificate)`,
    };
  }

  /**
   * The roots of the signing key and the trusted keys, the trust material they make, and the
   * signing root's status (days left, warnings about every root certificate).
   */
  private async roots(
    now: Date,
    publishedBundle: string | undefined,
    spki: Promise<Uint8Array> = this.publicKey(this.keyId, true),
  ): Promise<{ root: Root; trust: TrustMaterial; status: NonNullable<SigningKey['root']> }> {
    const root = await this.root(this.keyId, now, publishedBundle, await spki);
    const others = [];
    for (const id of this.options.trustedKeyIds ?? [])
      if (id !== this.keyId)
        others.push(await this.root(id, now, publishedBundle, await this.publicKey(id, false)));
    const roots = [root, ...others];
    const trust = {
      bundlePem: roots.flatMap((r) => r.certs.map(certificateToPem)).join(''),
      jwks: {
        keys: roots.map((r) => ({
          ...createPublicKey({ key: Buffer.from(r.spki), format: 'der', type: 'spki' }).export({
            format: 'jwk',
          }),
          kid: r.kid,
          alg: 'ES256',
          use: 'sig',
        })),
      },
    };
    const status = { daysLeft: root.daysLeft, notes: roots.flatMap((r) => r.notes) };
    return { root, trust, status };
  }

  /**
   * An ephemeral P-256 key and its certificate under `root`, signed by KMS. The issuer is the
   * root certificate's name, which follows from the root's public key alone.
   */
  private async leafKey(
    root: Pick<Root, 'keyId' | 'spki'>,
    { now, notAfter }: { now: Date; notAfter: Date },
  ): Promise<Omit<SigningKey, 'trust'>> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leafSpki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
    const leaf = await createCertificate(
      {
        subjectCommonName: 'regtoken token signer',
        issuerCommonName: rootName(libtrustKeyId(root.spki)),
        serialNumber: randomBytes(16),
        notBefore: new Date(now.getTime() - SKEW_MS),
        notAfter: new Date(notAfter.getTime() + SKEW_MS),
        subjectPublicKey: leafSpki,
        issuerPublicKey: root.spki,
        ca: false,
        signatureAlgorithm: 'ES256',
      },
      (tbs) => this.sign(root.keyId, tbs),
    );
    return {
      alg: 'ES256',
      keyHeader: { x5c: [Buffer.from(leaf).toString('base64')] },
      sign: (input) => joseSign('ES256', privateKey, input),
      description: `KMS key ${root.keyId} (ES256, per-run certificate)`,
    };
  }

  /**
   * The root certificates of a KMS key: reused from the bundle while fit, and (re-)issued and
   * signed by KMS when there is none or the newest nears its end (root-certificate.ts).
   */
  private async root(
    keyId: string,
    now: Date,
    bundle: string | undefined,
    spki: Uint8Array,
  ): Promise<Root> {
    const kid = libtrustKeyId(spki);
    const commonName = rootName(kid);
    const { certs, daysLeft, notes } = await rootCertificates({
      bundle,
      spki,
      now,
      name: `KMS key ${keyId}`,
      issue: (notAfter) =>
        createCertificate(
          {
            subjectCommonName: commonName,
            issuerCommonName: commonName,
            serialNumber: randomBytes(16),
            notBefore: new Date(now.getTime() - SKEW_MS),
            notAfter,
            subjectPublicKey: spki,
            issuerPublicKey: spki,
            ca: true,
            signatureAlgorithm: 'ES256',
          },
          (tbs) => this.sign(keyId, tbs),
        ),
    });
    return { keyId, spki, certs, daysLeft, notes, commonName, kid };
  }

  /** The key's DER SubjectPublicKeyInfo, checked to be a P-256 signing key; kept if `keep`. */
  private async publicKey(keyId: string, keep: boolean): Promise<Uint8Array> {
    const cached = keep ? publicKeys(this.kms).get(keyId) : undefined;
    if (cached) return cached;
    let spki: Uint8Array;
    try {
      const r = await this.kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      const spec = r.KeySpec ?? r.CustomerMasterKeySpec;
      if (spec !== 'ECC_NIST_P256' || r.KeyUsage !== 'SIGN_VERIFY')
        throw new SigningKeyError(
          `KMS key ${keyId} is ${spec ?? 'of unknown type'} for ${r.KeyUsage ?? 'unknown use'}: regtoken needs an ECC_NIST_P256 key for SIGN_VERIFY`,
        );
      if (!r.PublicKey) throw new SigningKeyError(`KMS key ${keyId}: no public key returned`);
      spki = new Uint8Array(r.PublicKey);
    } catch (err) {
      if (err instanceof SigningKeyError) throw err;
      throw new SigningKeyError(describeAwsError(err, `KMS key ${keyId}`), { cause: err });
    }
    if (keep && !keyId.startsWith('alias/') && !keyId.includes(':alias/'))
      publicKeys(this.kms).set(keyId, spki);
    return spki;
  }

  /** KMS ECDSA_SHA_256 signature (DER) over `message`. */
  private async sign(keyId: string, message: Uint8Array): Promise<Uint8Array> {
    const raw = message.length <= KMS_RAW_LIMIT;
    try {
      const r = await this.kms.send(
        new SignCommand({
          KeyId: keyId,
          SigningAlgorithm: 'ECDSA_SHA_256',
          MessageType: raw ? 'RAW' : 'DIGEST',
          Message: raw ? message : createHash('sha256').update(message).digest(),
        }),
      );
      if (!r.Signature) throw new Error('no signature returned');
      return new Uint8Array(r.Signature);
    } catch (err) {
      throw new SigningKeyError(describeAwsError(err, `KMS key ${keyId} (Sign)`), { cause: err });
    }
  }
}
