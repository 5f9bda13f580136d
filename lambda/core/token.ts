/**
 * Registry tokens: the claims the Distribution registry checks and their compact JWS form.
 *
 * Spec: distribution docs/spec/auth/jwt.md. Registry 2.8 requires `aud` to be a plain string and
 * checks `iss`, `aud`, `exp` and `nbf` (with 60 s leeway) and the signature; `iat` and `jti` are
 * informational but always present. The signature comes from a {@link TokenSigner}, so the same
 * code signs with a local key, a per-run ephemeral key, or AWS KMS.
 */

import type { ResourceAccess } from './grants.js';

export type TokenAlgorithm = 'ES256' | 'RS256';

/** What signs tokens during one run. `sign` returns the JOSE-form signature (raw r||s for ES256). */
export interface TokenSigner {
  readonly alg: TokenAlgorithm;
  /** Header fields that let the registry find the verification key: `kid` or an `x5c` chain. */
  readonly keyHeader: { readonly kid: string } | { readonly x5c: readonly string[] };
  /**
   * A signer that answers at once must not keep `signingInput` past the call: its bytes are
   * reused for the next token (see {@link signEncoded}). One that answers with a promise may
   * read it until the promise settles.
   */
  sign(signingInput: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * True when each signature is a request to another service (KMS direct mode): the run then
   * writes each token as soon as it is signed, instead of signing a group back to back.
   */
  readonly remote?: boolean;
}

/** The JWT claim set of a registry token, in the order regtoken writes it. */
export interface TokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string;
  readonly exp: number;
  readonly nbf: number;
  readonly iat: number;
  readonly jti: string;
  readonly access: readonly ResourceAccess[];
}

export interface ClaimsInput {
  readonly issuer: string;
  readonly service: string;
  readonly subject: string;
  /** Issue time; whole seconds are used. */
  readonly now: Date;
  readonly ttlSeconds: number;
  readonly jti: string;
  readonly access: readonly ResourceAccess[];
}

/** Builds the claim set: `nbf` = `iat` = now, `exp` = now + ttl, `aud` a plain string. */
export function buildClaims(input: ClaimsInput): TokenClaims {
  const iat = Math.floor(input.now.getTime() / 1000);
  return {
    iss: input.issuer,
    sub: input.subject,
    aud: input.service,
    exp: iat + input.ttlSeconds,
    nbf: iat,
    iat,
    jti: input.jti,
    access: input.access,
  };
}

function b64url(data: Uint8Array | string): string {
  return Buffer.from(data).toString('base64url');
}

/** What comes before an access list in the claims' JSON: `access` is their last key. */
const ACCESS_KEY = ',"access":';

/**
 * Access lists in base64url, by list. Principals named by the same grants share one list
 * (resolveAccess), and the list is most of a token's claims, so it is serialized and encoded
 * once. Base64 turns each 3 bytes into 4 characters, so the encoding of `head + list` is the
 * head's whole 3-byte groups, then the encoding of the rest: the head's last 0, 1 or 2 bytes
 * (always the end of `,"access":`) and the list. That rest is kept for each of the three
 * remainders. Lists are read-only (`readonly ResourceAccess[]`): one changed after signing
 * would keep its old encoding.
 */
const accessTails = new WeakMap<readonly ResourceAccess[], (string | undefined)[]>();

function accessTail(access: readonly ResourceAccess[], remainder: number): string {
  let tails = accessTails.get(access);
  if (tails === undefined) {
    tails = [];
    accessTails.set(access, tails);
  }
  let tail = tails[remainder];
  if (tail === undefined) {
    const carried = ACCESS_KEY.slice(ACCESS_KEY.length - remainder);
    tail = b64url(`${carried}${JSON.stringify(access)}}`);
    tails[remainder] = tail;
  }
  return tail;
}

/** A token's claims, encoded: the JWS payload (base64url of their JSON) and two of its times. */
export interface EncodedClaims {
  /** The payload, in parts to be joined. */
  readonly payload: readonly string[];
  readonly iat: number;
  readonly exp: number;
}

/** What differs between the tokens of one run. */
export type TokenSubject = Pick<ClaimsInput, 'subject' | 'ttlSeconds' | 'jti' | 'access'>;

/**
 * Encodes the claims of the tokens of one run, which share the issuer, the audience and the
 * issue time: the payload is `JSON.stringify(buildClaims(…))` in base64url, byte for byte, with
 * the shared parts of the JSON written once and each access list's encoding reused.
 */
export function claimsEncoder(
  shared: Pick<ClaimsInput, 'issuer' | 'service' | 'now'>,
): (token: TokenSubject) => EncodedClaims {
  const iat = Math.floor(shared.now.getTime() / 1000);
  const beforeSub = `{"iss":${JSON.stringify(shared.issuer)},"sub":`;
  const beforeExp = `,"aud":${JSON.stringify(shared.service)},"exp":`;
  const beforeJti = `,"nbf":${iat},"iat":${iat},"jti":`;
  return (token) => {
    const exp = iat + token.ttlSeconds;
    // The head, up to and including `,"access":`, in UTF-8 (an issuer may be any text).
    const head = Buffer.from(
      `${beforeSub}${JSON.stringify(token.subject)}${beforeExp}${JSON.stringify(exp)}${beforeJti}${JSON.stringify(token.jti)}${ACCESS_KEY}`,
    );
    const remainder = head.length % 3;
    return {
      payload: [
        head.toString('base64url', 0, head.length - remainder),
        accessTail(token.access, remainder),
      ],
      iat,
      exp,
    };
  };
}

/**
 * Every token a signer signs has the same header (and an `x5c` header is a whole certificate):
 * it is encoded once per signer, not once per token. Signers are immutable (readonly fields).
 */
const encodedHeaders = new WeakMap<TokenSigner, string>();

/**
 * Where signing inputs are written: one buffer, reused while signers answer at once (a local
 * key), so a run of thousands of tokens makes no buffer and no joined string per token. A signer
 * that answers with a promise may still read its input: that buffer is left to it, and the next
 * input gets a new one.
 */
let scratch = Buffer.allocUnsafe(8_192);

/**
 * Signs encoded claims. Returns the compact serialisation `header.claims.signature`; the
 * header is `{alg, typ: "JWT", kid | x5c}`.
 */
export async function signEncoded(claims: EncodedClaims, signer: TokenSigner): Promise<string> {
  let header = encodedHeaders.get(signer);
  if (header === undefined) {
    header = `${b64url(JSON.stringify({ alg: signer.alg, typ: 'JWT', ...signer.keyHeader }))}.`;
    encodedHeaders.set(signer, header);
  }
  let length = header.length;
  for (const part of claims.payload) length += part.length;
  if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, 2 * scratch.length));
  const input = scratch;
  // Base64url text is ASCII, for which latin1 gives the same bytes (and is the faster encoder).
  let at = input.write(header, 0, 'latin1');
  for (const part of claims.payload) at += input.write(part, at, 'latin1');
  const answer = signer.sign(input.subarray(0, length));
  if (!(answer instanceof Uint8Array)) scratch = Buffer.allocUnsafe(input.length);
  const signature = await answer;
  const sig = Buffer.isBuffer(signature)
    ? signature
    : Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
  let token = header;
  for (const part of claims.payload) token += part;
  return `${token}.${sig.toString('base64url')}`;
}

/** Encodes and signs one token's claims, in any key order: see {@link signEncoded}. */
export function signToken(claims: TokenClaims, signer: TokenSigner): Promise<string> {
  const payload = [b64url(JSON.stringify(claims))];
  return signEncoded({ payload, iat: claims.iat, exp: claims.exp }, signer);
}

/** Reads a token's claims without verifying it (for display and expiry checks only). */
export function decodeClaims(token: string): TokenClaims | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return claims !== null && typeof claims === 'object' ? (claims as TokenClaims) : undefined;
  } catch {
    return undefined;
  }
}
