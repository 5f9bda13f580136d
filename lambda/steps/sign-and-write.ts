/**
 * The middle step of a mint run: signs and writes the tokens of one batch of principals, given
 * their resolved access (from the plan step) and a signer. A run of one function has one batch
 * holding every principal; a fanned-out run would give each worker a shard of the plan.
 *
 * A principal whose token cannot be made or written keeps its previous token and is reported in
 * `failed`; it does not stop the others. A signing failure stops the batch (see below).
 */

import { randomBytes } from 'node:crypto';
import type { ResourceAccess } from '../core/grants.js';
import type { Logger, TokenDocument, TokenStore } from '../core/ports.js';
import { basicHeaderBytes } from '../core/realm.js';
import { compareCodeUnits } from '../core/text.js';
import {
  claimsEncoder,
  type EncodedClaims,
  signEncoded,
  type TokenSigner,
  type TokenSubject,
} from '../core/token.js';
import { LeaseExpiredError } from '../errors.js';
import type { PrincipalProblem, PrincipalWork, TokenSettings } from './plan.js';

/**
 * Above this many bytes of `Authorization` header (the Basic form, with the token as the
 * password) a token still works but may hit proxy header limits: the run warns.
 */
export const TOKEN_WARN_BYTES = 8_192;

/** What the sign-and-write step needs besides its batch and signer. */
export interface BatchDeps {
  readonly store: TokenStore;
  readonly logger: Logger;
  /** Injected for exact tests; defaults to 128 random bits. */
  readonly newJti?: () => string;
}

/** One principals' batch: what every token shares, and the principals. */
export interface MintBatch {
  readonly settings: TokenSettings;
  readonly principals: readonly PrincipalWork[];
}

/** A token written. */
export interface MintedToken {
  readonly principal: string;
  readonly key: string;
  /** Where the token document is: a path or an `s3://` URL. */
  readonly location: string;
  readonly expiresAt: string;
  readonly bytes: number;
  readonly repositories: number;
  readonly catalog: boolean;
}

/** The outcome of one batch: plain, serialisable data. */
export interface BatchResult {
  /** In their principals' ARN order. */
  readonly tokens: readonly MintedToken[];
  /** Tokens too large (in the batch's order), then failed writes (in the order they failed). */
  readonly failed: readonly PrincipalProblem[];
  /** Warnings about single tokens, in the batch's order. */
  readonly warnings: readonly string[];
}

/**
 * 128-bit random token IDs. They are cut from one random buffer per 256 tokens: one
 * `randomBytes` call per token costs more than building the rest of the token's claims.
 */
export function randomJtis(): () => string {
  const size = 16;
  let pool = Buffer.alloc(0);
  let at = 0;
  return () => {
    if (at >= pool.length) {
      pool = randomBytes(size * 256);
      at = 0;
    }
    at += size;
    return pool.toString('base64url', at - size, at);
  };
}

/**
 * Signs and writes one batch in one pass: the principals are signed one at a time, in the
 * batch's order, in groups of {@link SIGN_GROUP} after a first group of {@link FIRST_SIGN_GROUP}
 * (one at a time for a remote signer); a group's writes start as soon as it is signed, with at
 * most `store.concurrency` writes in flight, and the next group is signed once they have all
 * started. So signing overlaps the writes and the batch never holds more than a group of
 * tokens at once (docs/performance.md). Signatures are made one at a time on purpose: in KMS
 * direct mode each is a KMS call, and the account's Sign quota is shared. If signing fails,
 * the tokens signed before are written and no further token is signed; if the run's lease ends
 * (LeaseExpiredError from a write), no further write starts. Either way the step fails with
 * that error once the writes in flight have ended (the tokens already written stay: they are
 * valid).
 */
export async function signAndWrite(
  batch: MintBatch,
  key: TokenSigner,
  deps: BatchDeps,
): Promise<BatchResult> {
  const { store, logger } = deps;
  const { settings } = batch;
  const newJti = deps.newJti ?? randomJtis();
  const encode = claimsEncoder({
    issuer: settings.issuer,
    service: settings.service,
    now: new Date(settings.issuedAt),
  });
  const warnings: string[] = [];
  const tooLarge: PrincipalProblem[] = [];
  const writeFailed: PrincipalProblem[] = [];
  const tokens: MintedToken[] = [];
  // Each written token's principal's place in ARN order, by the token's index in `tokens`.
  const ranks: number[] = [];
  // The first reason to start no further token: a signing failure or the lease's end.
  let stop: { error: unknown } | undefined;
  let leaseEnded = false;
  const isoTime = isoTimes();
  const counts = accessCounts();
  const writes = new WriteSlots(store.concurrency);
  const all = batch.principals;
  // A remote signer's signatures are round trips: nothing to keep in the caches, and each
  // write may as well start while the next token is signed.
  for (let from = 0; from < all.length && !stop; ) {
    const size = key.remote ? 1 : from === 0 ? FIRST_SIGN_GROUP : SIGN_GROUP;
    const group = all.slice(from, from + size);
    from += size;
    const signed = await signGroup(group, encode, newJti, key);
    // Tokens signed before a signing failure are still written.
    if (signed.failure) stop ??= signed.failure;
    for (let i = 0; i < signed.tokens.length; i++) {
      const access = group[i] as PrincipalWork;
      const claims = signed.claims[i] as EncodedClaims;
      const token = signed.tokens[i] as string;
      const arn = access.principal.arn;
      if (settings.inventory !== undefined)
        for (const pattern of access.unmatched)
          warnings.push(
            `${arn}: pattern "${pattern}" matches no repository in ${settings.inventory}`,
          );
      const bytes = token.length; // a compact JWS is ASCII: one byte per character
      if (bytes > settings.maxTokenBytes) {
        tooLarge.push({ principal: arn, reason: tooLargeReason(access, bytes, settings) });
        logger.error('token too large', { principal: arn, bytes, limit: settings.maxTokenBytes });
        continue;
      }
      // As a password (docker login, containerd) the token travels base64-encoded: 4/3 larger.
      const basic = basicHeaderBytes(token);
      if (basic > TOKEN_WARN_BYTES)
        warnings.push(
          `${arn}: token is ${bytes} bytes; sent as a password its Basic header is ${basic} bytes, above ${TOKEN_WARN_BYTES} (proxies such as nginx reject longer headers by default)`,
        );
      const k = access.key;
      const doc: TokenDocument = {
        principal: arn,
        registry: settings.host,
        token,
        issuedAt: isoTime(claims.iat),
        expiresAt: isoTime(claims.exp),
        access: access.access,
      };
      if (writes.full) await writes.free();
      if (leaseEnded) break;
      writes.start(
        putToken(store, k, doc, access.principal).then(
          () => {
            const { repositories, catalog } = counts(doc.access);
            tokens.push({
              principal: arn,
              key: k,
              location: store.locate(k),
              expiresAt: doc.expiresAt,
              bytes,
              repositories,
              catalog,
            });
            ranks.push(access.rank);
          },
          (err: unknown) => {
            // The run's lease is ending: no write may start any more, for any principal.
            if (err instanceof LeaseExpiredError) {
              leaseEnded = true;
              stop ??= { error: err };
              return;
            }
            const reason = `could not write ${store.locate(k)}: ${(err as Error).message}`;
            writeFailed.push({ principal: arn, reason });
            logger.error('token write failed', { principal: arn, error: (err as Error).message });
          },
        ),
      );
    }
  }
  await writes.drain();
  if (stop) throw stop.error;
  return { tokens: inArnOrder(tokens, ranks), failed: [...tooLarge, ...writeFailed], warnings };
}

/**
 * The tokens in their principals' ARN order, placed by each principal's rank from the plan
 * (writes end in any order). A rank that is no place in the batch's order (missing, taken twice,
 * or far beyond the batch's size: a batch made by hand) makes it sort them by ARN instead.
 */
function inArnOrder(tokens: readonly MintedToken[], ranks: readonly number[]): MintedToken[] {
  // A batch's ranks are places among the whole plan's principals: a shard's may exceed its size.
  const most = 4 * tokens.length + 1024;
  let last = -1;
  for (const rank of ranks) {
    if (!Number.isInteger(rank) || rank < 0 || rank >= most) return sortByArn([...tokens]);
    if (rank > last) last = rank;
  }
  const slots = new Array<MintedToken | undefined>(last + 1);
  for (let i = 0; i < tokens.length; i++) {
    const rank = ranks[i] as number;
    if (slots[rank] !== undefined) return sortByArn([...tokens]);
    slots[rank] = tokens[i];
  }
  return slots.filter((t): t is MintedToken => t !== undefined);
}

/** By the ARN's characters: the same order in every locale (an ARN is ASCII). */
export function sortByArn<T extends { readonly principal: string }>(tokens: T[]): T[] {
  return tokens.sort((a, b) => compareCodeUnits(a.principal, b.principal));
}

/**
 * How many principals are signed back to back before their writes start. Signing in a tight
 * run keeps the signature code and its tables in the processor's caches, which the work
 * around each token would otherwise evict (docs/performance.md); it also bounds the tokens
 * held at once to this many plus the writes in flight.
 */
export const SIGN_GROUP = 64;

/**
 * The first group is small: until it is signed the store has nothing to do, and a few writes in
 * flight keep it busy while the next group is signed. At 100 principals on moto the first write
 * of a steady run started about 9 ms after the plan's last read with a first group of 64, about
 * 3.5 ms with one of 8 (docs/performance.md).
 */
export const FIRST_SIGN_GROUP = 8;

/**
 * Signs a group of principals one at a time, in order. A signing failure ends the group: the
 * tokens signed before it are returned with the error, to be written like any other.
 */
async function signGroup(
  group: readonly PrincipalWork[],
  encode: (token: TokenSubject) => EncodedClaims,
  newJti: () => string,
  key: TokenSigner,
): Promise<{ claims: EncodedClaims[]; tokens: string[]; failure?: { error: unknown } }> {
  const claims = group.map((access) =>
    encode({
      subject: access.principal.arn,
      ttlSeconds: access.ttlSeconds,
      jti: newJti(),
      access: access.access,
    }),
  );
  const tokens: string[] = [];
  try {
    for (const c of claims) tokens.push(await signEncoded(c, key));
  } catch (error) {
    return { claims, tokens, failure: { error } };
  }
  return { claims, tokens };
}

/** `store.putToken`, with a store that throws instead of rejecting treated as one that rejects. */
function putToken(
  store: TokenStore,
  key: string,
  doc: TokenDocument,
  owner: PrincipalWork['principal'],
): Promise<void> {
  try {
    return store.putToken(key, doc, owner);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Writes in flight, at most `limit`. A write's outcome is handled before it is started here;
 * should that handling itself throw, {@link drain} rethrows the first such error.
 */
class WriteSlots {
  readonly #limit: number;
  #running = 0;
  #waiting: (() => void) | undefined;
  #failure: { error: unknown } | undefined;
  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }
  /** True when a write must wait for {@link free} (most do not: no need to wait then). */
  get full(): boolean {
    return this.#running >= this.#limit;
  }
  /** Resolves when a write may start. */
  async free(): Promise<void> {
    while (this.#running >= this.#limit)
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
      });
  }
  start(write: Promise<void>): void {
    this.#running += 1;
    const ended = () => {
      this.#running -= 1;
      const wake = this.#waiting;
      this.#waiting = undefined;
      wake?.();
    };
    write.then(ended, (error: unknown) => {
      this.#failure ??= { error };
      ended();
    });
  }
  /** Resolves when every write started has ended. */
  async drain(): Promise<void> {
    while (this.#running > 0)
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
      });
    if (this.#failure) throw this.#failure.error;
  }
}

/** How many repositories and whether the catalog, per access list: principals share lists. */
function accessCounts(): (access: readonly ResourceAccess[]) => {
  repositories: number;
  catalog: boolean;
} {
  const known = new Map<readonly ResourceAccess[], { repositories: number; catalog: boolean }>();
  return (access) => {
    let counts = known.get(access);
    if (counts === undefined) {
      counts = {
        repositories: access.filter((a) => a.type === 'repository').length,
        catalog: access.some((a) => a.type === 'registry'),
      };
      known.set(access, counts);
    }
    return counts;
  };
}

/** Every token of a run has the same iat and one of a few exp values: each is formatted once. */
function isoTimes(): (seconds: number) => string {
  const formatted = new Map<number, string>();
  return (seconds) => {
    let iso = formatted.get(seconds);
    if (iso === undefined) {
      iso = new Date(seconds * 1000).toISOString();
      formatted.set(seconds, iso);
    }
    return iso;
  };
}

function tooLargeReason(access: PrincipalWork, bytes: number, settings: TokenSettings): string {
  const worst = access.largestGrant;
  const cause = worst
    ? `; grant #${worst.grant} (line ${worst.line}) contributes ${worst.entries} of its ${access.access.length} access entries`
    : '';
  return `token would be ${bytes} bytes, over the limit of ${settings.maxTokenBytes} (registry.maxTokenBytes)${cause}`;
}
