/**
 * Verifies a registry token the way Distribution 2.8 does (registry/auth/token/token.go), so
 * that a token the token endpoint accepts is one the registry accepts:
 *
 * - compact JWS with three base64url parts, a JSON header and a JSON claim set whose fields have
 *   the registry's types (`aud` a plain string, times integers);
 * - `alg` ES256 or RS256 only (never `none` or HMAC), matching the key's type;
 * - the key from an `x5c` chain whose leaf a bundle root signed (or that is itself a root), else
 *   from `kid`, the libtrust key ID of a bundle certificate; a `jwk` header alone is refused;
 * - `iss` and `aud` equal to the configured issuer and service;
 * - `exp` and `nbf` with the registry's 60 s leeway — and, stricter than the registry, a token
 *   with less than `minRemainingSeconds` left is refused, so clients fetch a fresh one instead of
 *   failing in the middle of a pull.
 *
 * Where this differs from the registry it is only stricter (no intermediates in `x5c`, no `jwk`
 * keys): never is a token accepted here that the registry would refuse.
 *
 * Chain verification is the expensive part and every token of one run carries the same chain,
 * so a verified chain is cached per {@link TokenVerifier} (one per trust bundle version): a
 * request then costs one signature verification.
 */

import { createHash, verify as cryptoVerify, type KeyObject, X509Certificate } from 'node:crypto';
import { excerpt } from './text.js';
import type { TrustAnchors, TrustRoot } from './trust.js';

/** The registry's leeway on `exp` and `nbf` (distribution 2.8: 60 s). */
export const LEEWAY_SECONDS = 60;

/** The claims of a verified registry token, with the types the registry requires. */
export interface VerifiedClaims {
  readonly iss: string;
  readonly aud: string;
  readonly exp: number;
  readonly nbf?: number | undefined;
  readonly iat?: number | undefined;
  readonly sub?: string | undefined;
  readonly jti?: string | undefined;
  readonly access: readonly {
    readonly type: string;
    readonly name: string;
    readonly actions: readonly string[];
  }[];
}

/** Why a token was refused; stable words for logs, metrics and tests. */
export type RefusalReason =
  | 'malformed'
  | 'algorithm'
  | 'untrusted-key'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'expiring'
  | 'not-yet-valid';

export type Verification =
  | { readonly ok: true; readonly claims: VerifiedClaims }
  | {
      readonly ok: false;
      readonly reason: RefusalReason;
      /** One sentence for the client; never quotes the token. */
      readonly message: string;
      /** The claims, when the signature verified (for the audit log); else undefined. */
      readonly claims?: VerifiedClaims | undefined;
    };

export interface VerifyOptions {
  readonly issuer: string;
  readonly service: string;
  readonly now: Date;
  /** Refuse tokens with less than this many seconds left (default 60). */
  readonly minRemainingSeconds?: number;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
/** Limits that keep a hostile header cheap to refuse. */
const MAX_CHAIN = 4;
const CHAIN_CACHE_SIZE = 256;

interface Header {
  readonly alg?: unknown;
  readonly kid?: unknown;
  readonly x5c?: unknown;
  readonly jwk?: unknown;
}

interface CachedChain {
  readonly key: KeyObject;
  /** Epoch ms between which every certificate of the chain is valid. */
  readonly from: number;
  readonly until: number;
}

const refuse = (reason: RefusalReason, message: string, claims?: VerifiedClaims): Verification => ({
  ok: false,
  reason,
  message,
  claims,
});

function decodeJson(part: string): unknown {
  if (!B64URL.test(part)) return undefined;
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const optional = <T>(v: unknown, check: (x: unknown) => x is T): boolean =>
  v === undefined || check(v);
const isString = (v: unknown): v is string => typeof v === 'string';

function isAccess(v: unknown): v is VerifiedClaims['access'] {
  return (
    Array.isArray(v) &&
    v.every(
      (a) =>
        isObject(a) &&
        isString(a.type) &&
        isString(a.name) &&
        Array.isArray(a.actions) &&
        a.actions.every(isString),
    )
  );
}

/** The claim set with the registry's field types, or undefined (the registry: "malformed"). */
function readClaims(v: unknown): VerifiedClaims | undefined {
  if (!isObject(v)) return undefined;
  const { iss, aud, exp, nbf, iat, sub, jti, access } = v;
  if (!isString(iss) || !isString(aud) || !isInt(exp)) return undefined;
  if (!optional(nbf, isInt) || !optional(iat, isInt)) return undefined;
  if (!optional(sub, isString) || !optional(jti, isString)) return undefined;
  if (access !== undefined && access !== null && !isAccess(access)) return undefined;
  return {
    iss,
    aud,
    exp,
    nbf: nbf as number | undefined,
    iat: iat as number | undefined,
    sub: sub as string | undefined,
    jti: jti as string | undefined,
    access: isAccess(access) ? access : [],
  };
}

function keyFits(alg: 'ES256' | 'RS256', key: KeyObject): boolean {
  if (alg === 'RS256') return key.asymmetricKeyType === 'rsa';
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** Verifies tokens against one version of the trust bundle. */
export class TokenVerifier {
  private readonly chains = new Map<string, CachedChain>();

  constructor(readonly trust: TrustAnchors) {}

  /** Verifies `token` at `options.now`. Pure apart from the chain cache. */
  verify(token: string, options: VerifyOptions): Verification {
    const parts = token.split('.');
    if (parts.length !== 3) return refuse('malformed', 'the password is not a registry token');
    const [rawHeader = '', rawClaims = '', rawSignature = ''] = parts;
    const header = decodeJson(rawHeader);
    const claims = readClaims(decodeJson(rawClaims));
    if (!isObject(header) || !claims || !B64URL.test(rawSignature) || rawSignature === '')
      return refuse('malformed', 'the password is not a registry token');
    const alg = (header as Header).alg;
    if (alg !== 'ES256' && alg !== 'RS256')
      return refuse('algorithm', 'the token is not signed with ES256 or RS256');

    const now = options.now.getTime();
    const found = this.signingKey(header as Header, now);
    if (typeof found === 'string') return refuse('untrusted-key', found);
    if (!keyFits(alg, found)) return refuse('algorithm', `the token's key cannot sign ${alg}`);
    const signature = Buffer.from(rawSignature, 'base64url');
    const input = Buffer.from(`${rawHeader}.${rawClaims}`, 'latin1');
    let valid = false;
    try {
      valid =
        alg === 'ES256'
          ? cryptoVerify('sha256', input, { key: found, dsaEncoding: 'ieee-p1363' }, signature)
          : cryptoVerify('sha256', input, found, signature);
    } catch {
      valid = false;
    }
    if (!valid) return refuse('signature', 'the token signature does not verify');
    return checkClaims(claims, options);
  }

  /** The verification key, or why there is none. */
  private signingKey(header: Header, now: number): KeyObject | string {
    if (Array.isArray(header.x5c) && header.x5c.length > 0) return this.chainKey(header.x5c, now);
    if (header.jwk !== undefined)
      return 'the token carries its own key (jwk), which this registry does not trust';
    if (typeof header.kid === 'string' && header.kid !== '') {
      return (
        this.trust.keys.get(header.kid) ??
        'the token is signed by a key this registry does not trust'
      );
    }
    return 'the token names no signing key';
  }

  private chainKey(x5c: readonly unknown[], now: number): KeyObject | string {
    const untrusted = 'the token is signed by a certificate this registry does not trust';
    if (x5c.length > MAX_CHAIN || !x5c.every(isString)) return untrusted;
    const id = createHash('sha256').update(x5c.join('.')).digest('base64');
    let chain = this.chains.get(id);
    if (!chain) {
      const verified = verifyChain(x5c as string[], this.trust.roots);
      if (typeof verified === 'string') return verified;
      chain = verified;
      if (this.chains.size >= CHAIN_CACHE_SIZE) {
        const oldest = this.chains.keys().next().value;
        if (oldest !== undefined) this.chains.delete(oldest);
      }
      this.chains.set(id, chain);
    }
    if (now < chain.from || now > chain.until)
      return "the token's certificate is not valid now (expired or not yet valid)";
    return chain.key;
  }
}

/**
 * Verifies that the leaf of `x5c` was issued and signed by a bundle root (a CA), or is one.
 * Further entries may only repeat bundle roots: intermediates are not supported (stricter than
 * the registry, which regtoken never needs). Time validity is returned, not checked, so the
 * cached result serves every request until the certificates expire.
 */
function verifyChain(x5c: readonly string[], roots: readonly TrustRoot[]): CachedChain | string {
  const untrusted = 'the token is signed by a certificate this registry does not trust';
  const certs: X509Certificate[] = [];
  for (const entry of x5c) {
    try {
      certs.push(new X509Certificate(Buffer.from(entry, 'base64')));
    } catch {
      return 'the token carries a certificate that cannot be parsed';
    }
  }
  const [leaf, ...rest] = certs as [X509Certificate, ...X509Certificate[]];
  const rootOf = (c: X509Certificate) => roots.find((r) => r.certificate.raw.equals(c.raw));
  if (!rest.every((c) => rootOf(c) !== undefined)) return untrusted;
  const window = (cs: readonly X509Certificate[]): CachedChain => ({
    key: leaf.publicKey,
    from: Math.max(...cs.map((c) => Date.parse(c.validFrom))),
    until: Math.min(...cs.map((c) => Date.parse(c.validTo))),
  });
  if (rootOf(leaf)) return window([leaf]);
  for (const root of roots) {
    const issuer = root.certificate;
    // checkIssued: names, key identifiers and the issuer's keyCertSign usage (OpenSSL).
    if (!issuer.ca || !leaf.checkIssued(issuer)) continue;
    let signed = false;
    try {
      signed = leaf.verify(issuer.publicKey);
    } catch {
      signed = false;
    }
    if (signed) return window([leaf, issuer]);
  }
  return untrusted;
}

/** Checks issuer, audience and times of claims whose signature verified. */
export function checkClaims(claims: VerifiedClaims, options: VerifyOptions): Verification {
  if (claims.iss !== options.issuer)
    return refuse(
      'issuer',
      `the token is from issuer "${excerpt(claims.iss, 64)}", not "${options.issuer}"`,
      claims,
    );
  if (claims.aud !== options.service)
    return refuse(
      'audience',
      `the token is for service "${excerpt(claims.aud, 64)}", not "${options.service}"`,
      claims,
    );
  const now = Math.floor(options.now.getTime() / 1000);
  if (claims.nbf !== undefined && now < claims.nbf - LEEWAY_SECONDS)
    return refuse('not-yet-valid', `the token is valid only from ${iso(claims.nbf)}`, claims);
  if (now > claims.exp) return refuse('expired', `the token expired at ${iso(claims.exp)}`, claims);
  const minimum = options.minRemainingSeconds ?? LEEWAY_SECONDS;
  if (claims.exp - now < minimum)
    return refuse(
      'expiring',
      `the token expires at ${iso(claims.exp)}, in less than ${minimum} seconds`,
      claims,
    );
  return { ok: true, claims };
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000', '');
