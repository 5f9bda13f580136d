/**
 * The KMS signer in a warm container (one KMS client across runs, as the Lambda function keeps
 * it): the signing key's public key is fetched once, and the key still signs (so KMS checks its
 * state and the permission) on every run; aliases and trusted keys are asked every run. Against
 * moto_server (which does not refuse a disabled key, so that failure is not shown here). A
 * root certificate in its last months is re-issued by the same KMS key.
 */

import { createPublicKey, type JsonWebKeyInput, X509Certificate } from 'node:crypto';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { KmsSigner } from '../../lambda/adapters/kms.js';
import { libtrustKeyId } from '../../lambda/core/libtrust.js';
import { ROOT_RENEW_DAYS, rootCertificateProblem } from '../../lambda/core/root-certificate.js';
import { parsePemCertificates, spkiOfCertificate } from '../../lambda/core/x509.js';
import { applyAwsTestEnv, type Moto, startMoto } from '../helpers/moto.js';

let moto: Moto;
let restoreEnv: (() => void) | undefined;

beforeAll(async () => {
  moto = await startMoto();
  restoreEnv = applyAwsTestEnv(moto.endpoint);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}, 60_000);

afterAll(async () => {
  restoreEnv?.();
  await moto?.stop();
});

beforeEach(async () => {
  await moto.reset();
});

/** A KMS client that counts its calls by command name. */
function countingClient(): { kms: KMSClient; calls: Record<string, number> } {
  const kms = new KMSClient({});
  const calls: Record<string, number> = {};
  kms.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      calls[name] = (calls[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return { kms, calls };
}

async function newKey(kms: KMSClient): Promise<string> {
  const key = await kms.send(
    new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
  );
  return key.KeyMetadata?.Arn ?? '';
}

const now = new Date();
const window = (publishedBundle: string | undefined) => ({
  now,
  notAfter: new Date(now.getTime() + 3_600_000),
  publishedBundle,
});

describe('KmsSigner across runs of one container', () => {
  it('fetches the signing key once and has KMS sign every run', async () => {
    const { kms, calls } = countingClient();
    const arn = await newKey(kms);
    delete calls.CreateKey;
    const first = await new KmsSigner(kms, arn).prepare(window(undefined));
    expect(calls).toEqual({ GetPublicKey: 1, Sign: 2 }); // root certificate + run certificate
    const second = await new KmsSigner(kms, arn).prepare(window(first.trust.bundlePem));
    expect(calls).toEqual({ GetPublicKey: 1, Sign: 3 });
    expect(second.trust.bundlePem).toBe(first.trust.bundlePem);
  });

  it('asks again for a key named by alias, and for trusted keys, on every run', async () => {
    const { kms, calls } = countingClient();
    const arn = await newKey(kms);
    const trusted = await newKey(kms);
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/regtoken', TargetKeyId: arn }));
    for (const k of Object.keys(calls)) delete calls[k];
    const signer = () => new KmsSigner(kms, 'alias/regtoken', { trustedKeyIds: [trusted] });
    const first = await signer().prepare(window(undefined));
    expect(calls.GetPublicKey).toBe(2);
    await signer().prepare(window(first.trust.bundlePem));
    expect(calls.GetPublicKey).toBe(4);
  });

  it('keeps the keys of one client apart from another client', async () => {
    const a = countingClient();
    const arn = await newKey(a.kms);
    await new KmsSigner(a.kms, arn).prepare(window(undefined));
    const b = countingClient();
    await new KmsSigner(b.kms, arn).prepare(window(undefined));
    expect(b.calls.GetPublicKey).toBe(1);
  });
});

describe("the run's certificate", () => {
  it('is signed by KMS while the published bundle is still being read, and chains to the root', async () => {
    const { kms, calls } = countingClient();
    const arn = await newKey(kms);
    const first = await new KmsSigner(kms, arn).prepare(window(undefined));
    const signs = calls.Sign ?? 0;
    let give: (bundle: string) => void = () => undefined;
    const bundle = new Promise<string>((resolve) => {
      give = resolve;
    });
    const prepared = new KmsSigner(kms, arn).prepare({
      ...window(undefined),
      publishedBundle: bundle,
    });
    for (let i = 0; i < 500 && calls.Sign === signs; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(calls.Sign).toBe(signs + 1); // asked before the bundle came
    give(first.trust.bundlePem);
    const key = await prepared;
    expect(calls.Sign).toBe(signs + 1); // the root certificate was reused from the bundle
    expect(key.trust.bundlePem).toBe(first.trust.bundlePem);
    const [root] = parsePemCertificates(key.trust.bundlePem);
    const x5c = 'x5c' in key.keyHeader ? key.keyHeader.x5c : [];
    const leaf = new X509Certificate(Buffer.from(String(x5c[0]), 'base64'));
    expect(leaf.verify(new X509Certificate(Buffer.from(root as Uint8Array)).publicKey)).toBe(true);
  });

  it('leaves a failed read of the bundle to be reported, whatever KMS answers meanwhile', async () => {
    const { kms } = countingClient();
    const missing = 'arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000';
    const failed = Promise.reject(new Error('s3://tokens/trust/bundle.pem: AccessDenied'));
    await expect(
      new KmsSigner(kms, missing).prepare({ ...window(undefined), publishedBundle: failed }),
    ).rejects.toThrow('s3://tokens/trust/bundle.pem: AccessDenied');
  });
});

describe('the JWKS of a KMS root', () => {
  it('holds the KMS key itself, the public key of its root certificate, under its kid', async () => {
    const { kms } = countingClient();
    const arn = await newKey(kms);
    const key = await new KmsSigner(kms, arn).prepare(window(undefined));
    const [root] = parsePemCertificates(key.trust.bundlePem);
    const [jwk] = key.trust.jwks.keys;
    expect(Object.keys(jwk ?? {})).toEqual(['kty', 'x', 'y', 'crv', 'kid', 'alg', 'use']);
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    const fromJwk = createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' });
    expect(fromJwk.export({ type: 'spki', format: 'der' })).toEqual(
      Buffer.from(spkiOfCertificate(root as Uint8Array)),
    );
    expect(jwk?.kid).toBe(libtrustKeyId(spkiOfCertificate(root as Uint8Array)));
  });
});

describe("a KMS root's certificate in its last months", () => {
  it('is re-issued, signed by the same KMS key, and both stay in the bundle', async () => {
    const { kms, calls } = countingClient();
    const arn = await newKey(kms);
    const first = await new KmsSigner(kms, arn).prepare(window(undefined));
    const [old] = parsePemCertificates(first.trust.bundlePem);
    const end = new X509Certificate(Buffer.from(old as Uint8Array)).validTo;
    const late = new Date(Date.parse(end) - (ROOT_RENEW_DAYS - 1) * 86_400_000);
    for (const k of Object.keys(calls)) delete calls[k];
    const renewed = await new KmsSigner(kms, arn).prepare({
      now: late,
      notAfter: new Date(late.getTime() + 3_600_000),
      publishedBundle: first.trust.bundlePem,
    });
    expect(calls).toEqual({ Sign: 2 }); // the new root certificate + the run certificate
    const certs = parsePemCertificates(renewed.trust.bundlePem);
    expect(certs).toHaveLength(2);
    expect(Buffer.from(certs[1] as Uint8Array)).toEqual(Buffer.from(old as Uint8Array));
    const spki = spkiOfCertificate(old as Uint8Array);
    for (const der of certs) expect(rootCertificateProblem(der, spki, late)).toBeUndefined();
    expect(renewed.root?.daysLeft).toBeGreaterThan(3600);
    expect(renewed.trust.jwks).toEqual(first.trust.jwks);
  });
});
