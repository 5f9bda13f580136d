/**
 * The run lock's timing, judged by one clock: AWS's. A lease is the lock object's
 * `Last-Modified` plus its length, and whether it has run out is read from the `Date` of an S3
 * answer, never by comparing two machines' clocks (a run whose clock is ahead would take over a
 * live lease). The holder, which cannot ask S3 the time before every write, counts on its own
 * monotonic clock from the moment it *sent* the write that took the lock, which is never later
 * than that write's `Last-Modified`: so its count always ends first.
 *
 * Fencing (docs/aws.md, "Overlapping runs"): the holder starts no write once fewer than
 * `marginMs` remain of its lease, and `marginMs` exceeds the longest a request may take, so
 * every write it makes has landed before the lease ends. A run that finds a lease run out
 * waits out the same margin before taking over, for writes that S3 received late.
 */

import { LeaseExpiredError } from '../errors.js';
import type { ReleaseNote, RunLease } from './ports.js';

/** The lock object as read, with S3's time of the read. */
export interface LockState {
  /** `Last-Modified` of the lock object (ms since the epoch, S3's clock). */
  readonly lastModified: number;
  /** `Date` of the answer that read it (ms since the epoch, S3's clock). */
  readonly serverNow: number;
  /** The lease length the holder took. */
  readonly leaseMs: number;
  /** True when the holder gave it back. */
  readonly released: boolean;
}

/** What a run may do about a lock it read. */
export type LockDecision =
  | { readonly kind: 'free' }
  /** Another run's lease is live (until `until`, S3's clock): step aside. */
  | { readonly kind: 'held'; readonly until: number }
  /** The lease ran out less than the margin ago: wait `ms`, then read it again. */
  | { readonly kind: 'wait'; readonly ms: number };

/** Decides, by S3's clock alone, whether a lock may be taken. */
export function judgeLock(state: LockState, marginMs: number): LockDecision {
  if (state.released) return { kind: 'free' };
  const until = state.lastModified + state.leaseMs;
  if (state.serverNow < until) return { kind: 'held', until };
  const freeAt = until + marginMs;
  if (state.serverNow < freeAt) return { kind: 'wait', ms: freeAt - state.serverNow };
  return { kind: 'free' };
}

/**
 * The longest one S3 request attempt may take, connecting included, before the SDK abandons it
 * (and retries). A lease keeps twice this free of writes, so it must be bounded: the SDK's
 * default is no limit.
 */
export const S3_REQUEST_TIMEOUT_MS = 30_000;

/** The margin a lease keeps free of writes: twice the longest a request attempt may take. */
export function leaseMarginMs(requestTimeoutMs: number): number {
  return 2 * requestTimeoutMs;
}

/** Milliseconds of a monotonic clock (performance.now() in production). */
export type Monotonic = () => number;

/**
 * A lease this run holds. {@link check} before every write attempt; {@link now} gives AWS's
 * time for everything the run stamps (token `iat`/`nbf`, certificate validity), so a wrong
 * local clock cannot mint tokens that are not yet valid.
 */
export class Lease implements RunLease {
  readonly #deadline: number;
  readonly #serverAt: number;
  readonly #receivedAt: number;
  #ended = false;

  constructor(
    private readonly options: {
      /** Monotonic time when the write that took the lock was sent. */
      readonly sentAt: number;
      /** Monotonic time when S3 answered it. */
      readonly receivedAt: number;
      /** S3's `Date` of that answer (ms since the epoch). */
      readonly serverAt: number;
      readonly leaseMs: number;
      readonly marginMs: number;
      /** Where the lock is, for messages. */
      readonly where: string;
      readonly monotonic: Monotonic;
      /** Taken from this process's own release, untouched since ({@link RunLease.sinceOwnRelease}). */
      readonly sinceOwnRelease?: boolean;
      /** What the run that gave the lock back left with it ({@link RunLease.note}). */
      readonly note?: ReleaseNote;
    },
  ) {
    this.#deadline = options.sentAt + options.leaseMs - options.marginMs;
    this.#serverAt = options.serverAt;
    this.#receivedAt = options.receivedAt;
  }

  get sinceOwnRelease(): boolean {
    return this.options.sinceOwnRelease === true;
  }

  get note(): ReleaseNote | undefined {
    return this.options.sinceOwnRelease ? this.options.note : undefined;
  }

  /** AWS's time now, estimated from the answer that granted the lease. */
  now(): Date {
    return new Date(this.#serverAt + (this.options.monotonic() - this.#receivedAt));
  }

  /** Milliseconds left in which a write may still start (negative once past). */
  remainingMs(): number {
    return this.#deadline - this.options.monotonic();
  }

  /**
   * AWS's time (ms since the epoch) from which no write may start: what another process of the
   * same run (a fanned-out run's worker) counts to on its own clock. Never later than the
   * holder's own deadline, since {@link now} is estimated from an answer that came after the
   * lock was written.
   */
  writesEndAt(): number {
    return this.now().getTime() + this.remainingMs();
  }

  /** Throws {@link LeaseExpiredError} when a write started now could outlive the lease. */
  check(): void {
    if (this.#ended)
      throw new LeaseExpiredError(
        `${this.options.where}: the run lock was released; no more writes`,
      );
    if (this.remainingMs() <= 0)
      throw new LeaseExpiredError(
        `${this.options.where}: this run's lease is ending (a lease of ${Math.round(this.options.leaseMs / 1000)} s keeps its last ${Math.round(this.options.marginMs / 1000)} s free of writes); another run may take over, so this one stops writing`,
      );
  }

  /** Ends the lease (the lock is being released): every later {@link check} fails. */
  end(): void {
    this.#ended = true;
  }
}

/**
 * Where the writes of a run look for its lease. The token store checks it before every write
 * attempt (retries included); with no lease armed, a store that has a fence refuses to write.
 */
export class LeaseFence {
  #lease: Lease | undefined;

  arm(lease: Lease): void {
    this.#lease = lease;
  }

  disarm(): void {
    this.#lease?.end();
    this.#lease = undefined;
  }

  /** Throws {@link LeaseExpiredError} unless a write may start now. */
  check(): void {
    if (!this.#lease) throw new LeaseExpiredError('no run lock is held; the run may not write');
    this.#lease.check();
  }
}
