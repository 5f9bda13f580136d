/**
 * Certificates made by the openssl CLI — independently of regtoken's own X.509 code — for
 * tests of token verification: roots (CAs), leaves issued by them, intermediates, and a
 * certificate that is not a CA. Keys are P-256 unless `rsa` is asked for.
 */

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireBinary, run } from './process.js';

/** A certificate and its private key, on disk and in memory. */
export interface TestCert {
  readonly name: string;
  readonly keyPath: string;
  readonly certPath: string;
  readonly pem: string;
  /** Base64 DER, as an `x5c` entry. */
  readonly x5c: string;
  readonly privateKey: KeyObject;
}

async function openssl(args: string[]): Promise<void> {
  const bin = await requireBinary('openssl', 'apt-get install -y openssl');
  const res = await run(bin, args, {
    timeoutMs: 20_000,
    env: { ...process.env, OPENSSL_CONF: '/dev/null' },
  });
  if (res.code !== 0) throw new Error(`openssl ${args[0]} failed (${res.code}): ${res.stderr}`);
}

async function load(dir: string, name: string): Promise<TestCert> {
  const keyPath = path.join(dir, `${name}.key.pem`);
  const certPath = path.join(dir, `${name}.crt.pem`);
  const pem = await readFile(certPath, 'utf8');
  return {
    name,
    keyPath,
    certPath,
    pem,
    x5c: new X509Certificate(pem).raw.toString('base64'),
    privateKey: createPrivateKey(await readFile(keyPath, 'utf8')),
  };
}

async function newKey(keyPath: string, rsa: boolean): Promise<void> {
  await openssl(
    rsa
      ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyPath]
      : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath],
  );
}

const CA_EXT = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
const LEAF_EXT = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'];

/** A self-signed certificate: a CA unless `ca: false`. Valid from one hour ago for `days`. */
export async function makeRoot(
  dir: string,
  name: string,
  options: { ca?: boolean; rsa?: boolean; days?: number } = {},
): Promise<TestCert> {
  const keyPath = path.join(dir, `${name}.key.pem`);
  await newKey(keyPath, options.rsa ?? false);
  const ext = options.ca === false ? LEAF_EXT : CA_EXT;
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyPath,
    '-subj',
    `/CN=${name}`,
    '-days',
    String(options.days ?? 2),
    ...ext.flatMap((e) => ['-addext', e]),
    '-out',
    path.join(dir, `${name}.crt.pem`),
  ]);
  return load(dir, name);
}

/** A certificate for a new key, issued and signed by `issuer`: a leaf unless `ca: true`. */
export async function makeIssued(
  dir: string,
  name: string,
  issuer: TestCert,
  options: { ca?: boolean; days?: number } = {},
): Promise<TestCert> {
  const keyPath = path.join(dir, `${name}.key.pem`);
  const csrPath = path.join(dir, `${name}.csr`);
  const extPath = path.join(dir, `${name}.ext`);
  await newKey(keyPath, false);
  await openssl(['req', '-new', '-key', keyPath, '-subj', `/CN=${name}`, '-out', csrPath]);
  await writeFile(extPath, `${(options.ca ? CA_EXT : LEAF_EXT).join('\n')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    csrPath,
    '-CA',
    issuer.certPath,
    '-CAkey',
    issuer.keyPath,
    '-set_serial',
    String(Math.floor(Math.random() * 1e9) + 1),
    '-days',
    String(options.days ?? 2),
    '-extfile',
    extPath,
    '-out',
    path.join(dir, `${name}.crt.pem`),
  ]);
  return load(dir, name);
}
