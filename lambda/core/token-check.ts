/**
 * Checks a token document a client fetched before it is used: is it a token document, is it the
 * caller's, is it for the registry the caller expects, and is it valid now — by this machine's
 * clock and, when known, by AWS's clock (the `Date` of the S3 answer), so a wrong local clock is
 * told apart from a token the minter failed to refresh.
 *
 * The registry checks `exp` and `nbf` with 60 s of leeway (docs/tokens.md); a token that is
 * not valid yet by more than that is refused by the registry too. Nothing here verifies the
 * signature: only the registry can, and the document came from the caller's own S3 object.
 */

import { ClockSkewError, InputError, TokenExpiredError, UnknownRegistryError } from '../errors.js';
import type { ResourceAccess } from './grants.js';
import type { Caller } from './identity.js';
import type { TokenDocument } from './ports.js';
import { parsePrincipal } from './principal.js';
import { quote } from './text.js';
import { decodeClaims, type TokenClaims } from './token.js';

/** Leeway the registry allows on `exp` and `nbf` (distribution 2.8: 60 s). */
export const REGISTRY_LEEWAY_SECONDS = 60;

/** A token document that passed {@link parseTokenDocument}. */
export interface OwnToken {
  readonly document: TokenDocument;
  readonly claims: Pick<TokenClaims, 'exp'> & Partial<Pick<TokenClaims, 'nbf' | 'iat' | 'sub'>>;
}

/** HOST[:PORT], as the grants schema allows for `registry.host`. */
const REGISTRY_HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/;

const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * Parses the JSON of a token document and checks it belongs to `caller`. `where` names it in
 * messages (an s3:// URL). Throws InputError when it is not a token document or is someone else's.
 */
export function parseTokenDocument(text: string, where: string, caller: Caller): OwnToken {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new InputError(`${where}: not a token document (not JSON)`);
  }
  const d = doc as Partial<Record<keyof TokenDocument, unknown>>;
  if (
    doc === null ||
    typeof doc !== 'object' ||
    !isString(d.principal) ||
    !isString(d.registry) ||
    !isString(d.token) ||
    !Array.isArray(d.access)
  )
    throw new InputError(
      `${where}: not a token document (expected principal, registry, token, access)`,
    );
  if (!REGISTRY_HOST_RE.test(d.registry))
    throw new InputError(`${where}: ${quote(d.registry)} is not a registry host`);
  const claims = decodeClaims(d.token);
  if (!claims || typeof claims.exp !== 'number')
    throw new InputError(`${where}: the token in it is not a registry token (no "exp" claim)`);
  const owner = parsePrincipal(d.principal);
  if (
    !owner.ok ||
    owner.value.account !== caller.account ||
    owner.value.type !== caller.type ||
    owner.value.name !== caller.name
  )
    throw new InputError(
      `${where} holds the token of ${d.principal}, not of ${caller.arn}; tell the registry administrators`,
    );
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return {
    document: doc as TokenDocument,
    claims: {
      exp: claims.exp,
      ...(num(claims.nbf) === undefined ? {} : { nbf: claims.nbf }),
      ...(num(claims.iat) === undefined ? {} : { iat: claims.iat }),
      ...(isString(claims.sub) ? { sub: claims.sub } : {}),
    },
  };
}

/** A host as Docker keys it: no scheme, no trailing slash or path, lower case. */
export function normaliseRegistryHost(host: string): string {
  return host
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

/**
 * Checks that the token is for `expected` (when the caller named a registry). `source` says
 * where the expectation came from (`--registry`, `REGTOKEN_REGISTRY`, a config file).
 */
export function checkRegistry(
  token: OwnToken,
  expected: { value: string; source: string } | undefined,
  where: string,
): void {
  if (!expected) return;
  const actual = token.document.registry;
  if (normaliseRegistryHost(expected.value) !== normaliseRegistryHost(actual))
    throw new UnknownRegistryError(
      `your token at ${where} is for registry ${actual}, not ${expected.value} (${expected.source}): use --registry ${actual}, or ask for a grant on ${expected.value}`,
    );
}

/** Time on the two clocks: this machine's, and AWS's when an answer carried a `Date`. */
export interface Clocks {
  readonly local: Date;
  readonly aws?: Date | undefined;
}

/** The outcome of {@link checkTimes} for a usable token. */
export interface TokenTimes {
  readonly expiresAt: Date;
  /** Seconds left, by AWS's clock when known (else this machine's). */
  readonly remainingSeconds: number;
  /** This machine's clock minus AWS's, in seconds (positive: ahead); undefined when unknown. */
  readonly skewSeconds: number | undefined;
}

const SYNC = 'set the clock right (timedatectl set-ntp true, or chronyd) and retry';

/**
 * Checks that the token is valid now. Throws ClockSkewError when this machine's clock is the
 * reason it looks expired or not yet valid, TokenExpiredError when it is expired by AWS's clock
 * too (or AWS's clock is unknown).
 */
export function checkTimes(token: OwnToken, clocks: Clocks, where: string): TokenTimes {
  const local = Math.floor(clocks.local.getTime() / 1000);
  const aws = clocks.aws ? Math.floor(clocks.aws.getTime() / 1000) : undefined;
  const skew = aws === undefined ? undefined : local - aws;
  const { exp } = token.claims;
  const validFrom = token.claims.nbf ?? token.claims.iat;
  const expiresAt = new Date(exp * 1000);
  const skewText = (s: number) => `${humanDuration(Math.abs(s))} ${s > 0 ? 'ahead of' : 'behind'}`;

  if (validFrom !== undefined && validFrom > local + REGISTRY_LEEWAY_SECONDS) {
    const early = validFrom - local;
    throw new ClockSkewError(
      skew !== undefined && skew < -REGISTRY_LEEWAY_SECONDS
        ? `this machine's clock is ${skewText(skew)} AWS: the token at ${where} is valid from ${utc(validFrom)}, ${humanDuration(early)} from now by this clock (the registry allows ${REGISTRY_LEEWAY_SECONDS} s); ${SYNC}`
        : `the token at ${where} is valid only from ${utc(validFrom)}, ${humanDuration(early)} from now by this machine's clock (the registry allows ${REGISTRY_LEEWAY_SECONDS} s): this clock or the minter's is wrong; ${SYNC}`,
    );
  }
  if (exp <= local) {
    // Only a clock more than the leeway ahead is blamed; at the boundary the token is just over.
    if (aws !== undefined && skew !== undefined && skew > REGISTRY_LEEWAY_SECONDS && exp > aws)
      throw new ClockSkewError(
        `this machine's clock is ${skewText(skew)} AWS: the token at ${where} looks expired here but is valid until ${utc(exp)}; ${SYNC}`,
      );
    throw new TokenExpiredError(
      `the token at ${where} expired at ${utc(exp)} (${humanDuration((aws ?? local) - exp)} ago): the minter has not replaced it; tell the registry administrators (its RunsFailed alarm)`,
    );
  }
  return { expiresAt, remainingSeconds: exp - (aws ?? local), skewSeconds: skew };
}

/** `2026-11-26 06:00 UTC` from epoch seconds. */
export function utc(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A duration for people: the largest unit and the next one when not zero (`11h 59m`, `2m`, `45s`). */
export function humanDuration(seconds: number): string {
  const units = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const;
  const total = Math.max(0, Math.round(seconds));
  const first = units.findIndex(([, size]) => total >= size);
  if (first < 0) return '0s';
  const [unit, size] = units[first] as (typeof units)[number];
  const n = Math.floor(total / size);
  const next = units[first + 1];
  const m = next ? Math.floor((total - n * size) / next[1]) : 0;
  return next && m > 0 ? `${n}${unit} ${m}${next[0]}` : `${n}${unit}`;
}

/** Access entries as rows for people: `team-a/app  pull, push`; the catalog as `(catalog)  *`. */
export function accessRows(access: readonly ResourceAccess[]): string[][] {
  return access.map((a) => [a.type === 'registry' ? `(${a.name})` : a.name, a.actions.join(', ')]);
}
