/**
 * What the credential helper's cache holds and when an entry may be used: the pure half of
 * the cache (lambda/adapters/token-cache.ts keeps the files).
 *
 * Two kinds of entry, so that a token is cached **per principal and host**, not per session:
 * - an *identity* entry maps a credential source (lambda/core/aws-source.ts) to the caller ARN
 *   STS confirmed for it;
 * - a *token* entry holds the principal's token for one registry host (and token location).
 * A new session of the same role (a CI job, an `aws sso login`, an instance's rotated
 * credentials) misses only the identity entry: one STS call, and the cached token is used.
 *
 * An entry is used until 5 minutes before the token expires (by AWS's clock as last seen, or
 * this machine's if that is later); an identity entry until its token entry needs refreshing,
 * so STS confirms the identity at least once per token lifetime.
 */

import { createHash } from 'node:crypto';
import { callerFromArn } from './identity.js';
import { decodeClaims } from './token.js';

/** Seconds before expiry at which a cached token is no longer used. */
export const REFRESH_BEFORE_EXPIRY_SECONDS = 300;
const VERSION = 1;

/** A token as the cache keeps it. */
export interface CachedToken {
  /** The owner: `arn:PARTITION:iam::ACCOUNT:role|user/NAME` (no path: a session does not show it). */
  readonly owner: string;
  /** The registry host asked for, and the token location it was read from. */
  readonly host: string;
  readonly from: string;
  /** The principal ARN in the token document (with its path). */
  readonly principal: string;
  readonly token: string;
  /** The token's `exp` (epoch seconds). */
  readonly expiresAt: number;
  /** This machine's clock minus AWS's when it was fetched, in seconds (0 when unknown). */
  readonly skewSeconds: number;
}

/** A caller identity as the cache keeps it. */
export interface CachedIdentity {
  /** The caller ARN STS returned. */
  readonly caller: string;
  /** Epoch seconds until which it may be used without asking STS again. */
  readonly until: number;
}

const sha256 = (text: string) =>
  createHash('sha256').update(`regtoken-cache-v${VERSION}\n${text}`).digest('hex');

/** The file name of a credential source's identity entry. */
export function identityFileName(material: string): string {
  return `${sha256(material)}.json`;
}

/** The file name of a token entry. */
export function tokenFileName(owner: string, host: string, from: string): string {
  return `${sha256(JSON.stringify([owner, host, from]))}.json`;
}

/** The owner a caller ARN maps to (see {@link CachedToken.owner}); undefined when it has none. */
export function ownerOf(callerArn: string): string | undefined {
  const c = callerFromArn(callerArn);
  return c.ok
    ? `arn:${c.value.partition}:iam::${c.value.account}:${c.value.type}/${c.value.name}`
    : undefined;
}

/** Epoch seconds from which an entry is no longer used. */
export function refreshAt(entry: CachedToken): number {
  return entry.expiresAt - REFRESH_BEFORE_EXPIRY_SECONDS;
}

/** AWS's time now as last seen: this machine's clock corrected by the skew noted at fetch. */
function awsNow(entry: CachedToken, now: number): number {
  return now - entry.skewSeconds;
}

/** True while the token may be answered from the cache. */
export function isFresh(entry: CachedToken, now: Date): boolean {
  const local = Math.floor(now.getTime() / 1000);
  return Math.max(local, awsNow(entry, local)) < refreshAt(entry);
}

/** Seconds the token has left, by AWS's clock as last seen. */
export function remainingSeconds(entry: CachedToken, now: Date): number {
  return entry.expiresAt - awsNow(entry, Math.floor(now.getTime() / 1000));
}

/** The text of a token entry. */
export function serialiseToken(entry: CachedToken): string {
  return `${JSON.stringify({ version: VERSION, ...entry })}\n`;
}

/** The text of an identity entry. */
export function serialiseIdentity(entry: CachedIdentity): string {
  return `${JSON.stringify({ version: VERSION, ...entry })}\n`;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A token entry read back, or undefined when the text is not one for exactly this owner, host
 * and location (corrupt, truncated, another version, or a token whose `exp` disagrees): such a
 * file is ignored, and replaced by the next fetch.
 */
export function parseCachedToken(
  text: string,
  want: { owner: string; host: string; from: string },
): CachedToken | undefined {
  const o = parseObject(text);
  if (!o || o.version !== VERSION) return undefined;
  const { owner, host, from, principal, token, expiresAt, skewSeconds } = o;
  if (!isString(owner) || !isString(host) || !isString(from) || !isString(principal)) return;
  if (!isString(token) || !isInt(expiresAt) || !isInt(skewSeconds)) return undefined;
  if (owner !== want.owner || host !== want.host || from !== want.from) return undefined;
  if (decodeClaims(token)?.exp !== expiresAt) return undefined;
  return { owner, host, from, principal, token, expiresAt, skewSeconds };
}

/** An identity entry read back, or undefined when the text is not one (ignored, then replaced). */
export function parseCachedIdentity(text: string): CachedIdentity | undefined {
  const o = parseObject(text);
  if (!o || o.version !== VERSION || !isString(o.caller) || !isInt(o.until)) return undefined;
  if (ownerOf(o.caller) === undefined) return undefined;
  return { caller: o.caller, until: o.until };
}

/** True while an identity entry may be used. */
export function identityIsFresh(entry: CachedIdentity, now: Date): boolean {
  return Math.floor(now.getTime() / 1000) < entry.until;
}
