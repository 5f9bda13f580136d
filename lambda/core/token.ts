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
  sign(signingInput: Uint8Array): Uint8Array | Promise<Uint8Array>;
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

/**
 * Access lists as JSON, by list. Principals named by the same grants share one list
 * (resolveAccess), and the list is most of a token's claims, so it is serialized once. Lists
 * are read-only (`readonly ResourceAccess[]`): one changed after signing would keep its old JSON.
 */
const accessJson = new WeakMap<readonly ResourceAccess[], string>();

/**
 * `JSON.stringify(claims)`, byte for byte, with the access list's JSON reused. The shortcut
 * applies when `access` is the last of several keys (as {@link buildClaims} writes them);
 * anything else is serialized whole.
 */
function claimsJson(claims: TokenClaims): string {
  let last: string | undefined;
  let keys = 0;
  for (const k in claims) {
    last = k;
    keys += 1;
  }
  const { access, ...rest } = claims;
  if (last !== 'access' || keys < 2 || !Array.isArray(access)) return JSON.stringify(claims);
  const head = JSON.stringify(rest);
  if (head === '{}') return JSON.stringify(claims);
  let json = accessJson.get(access);
  if (json === undefined) {
    json = JSON.stringify(access);
    accessJson.set(access, json);
  }
  return `${head.slice(0, -1)},"access":${json}}`;
}

/**
 * Every token a signer signs has the same header (and an `x5c` header is a whole certificate):
 * it is encoded once per signer, not once per token. Signers are immutable (readonly fields).
 */
const encodedHeaders = new WeakMap<TokenSigner, string>();

/**
 * Encodes and signs a token. Returns the compact serialisation `header.claims.signature`.
 * The header is `{alg, typ: "JWT", kid | x5c}`.
 */
export async function signToken(claims: TokenClaims, signer: TokenSigner): Promise<string> {
  let header = encodedHeaders.get(signer);
  if (header === undefined) {
    header = b64url(JSON.stringify({ alg: signer.alg, typ: 'JWT', ...signer.keyHeader }));
    encodedHeaders.set(signer, header);
  }
  const signingInput = `${header}.${b64url(claimsJson(claims))}`;
  // Base64url text is ASCII, for which latin1 gives the same bytes (and is the faster encoder).
  const signature = await signer.sign(Buffer.from(signingInput, 'latin1'));
  return `${signingInput}.${b64url(signature)}`;
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
