/**
 * The run lock: a lease on one object of the token bucket (`state/lock.json`), taken with
 * conditional writes and judged by S3's clock (lambda/core/lease.ts).
 */

import {
  GetObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  judgeLock,
  Lease,
  type LeaseFence,
  type LockState,
  type Monotonic,
} from '../../core/lease.js';
import type { ReleaseNote, TransferableLock } from '../../core/ports.js';
import { LeaseExpiredError, StoreError } from '../../errors.js';
import { awsErrorCode, awsStatus, describeAwsError } from '../aws.js';
import { perClient } from '../per-client.js';

/**
 * What the lock object holds: the holder's lease and the margin it keeps free of writes (a
 * takeover waits out the holder's margin, which follows from the holder's request timeout).
 * Older runs wrote `expiresAt` instead.
 */
interface LockBody {
  readonly owner: string;
  readonly leaseMs?: number;
  readonly marginMs?: number;
  readonly released?: boolean;
}

/** The longest lease or margin read from a lock object that is believed (a day): a bad value cannot block forever. */
const MAX_LEASE_MS = 24 * 3_600_000;

/**
 * The lock object as this process last gave it back, per S3 client and object: the ETag of the
 * release it wrote, and the note the run left with it. The released body names its holder (a
 * new owner every run), so only that write has that ETag, and a conditional write `If-Match` it
 * succeeds only while the object is still exactly that free lock. A warm container takes the
 * lock with that one write instead of reading it first, and only then gets the note; any other
 * answer sends it down the ordinary path (read, judge, take).
 */
const releasedHere = perClient<S3Client, { etag: string; note: ReleaseNote | undefined }>();

/** Options of {@link S3RunLock}. */
export interface S3RunLockOptions {
  readonly leaseMs: number;
  /** Time kept free of writes at the end of a lease, and waited out before a takeover. */
  readonly marginMs: number;
  /** Armed with the lease while it is held: the token store's writes check it. */
  readonly fence: LeaseFence;
  /** Injected by tests; defaults to performance.now(). */
  readonly monotonic?: Monotonic;
  /** Injected by tests; defaults to setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Sends `command` and returns its output with the answer's `Date` header (S3's clock). */
async function sendWithDate<T extends object>(
  s3: S3Client,
  command: GetObjectCommand | PutObjectCommand,
): Promise<{ output: T; date: number | undefined }> {
  let date: number | undefined;
  type Next = (args: unknown) => Promise<{ response: unknown }>;
  // The Date header is not part of the SDK's output; read it from the raw answer. (The two
  // commands' middleware stacks have the same shape; TypeScript cannot unify their overloads.)
  const stack = command.middlewareStack as unknown as {
    add(middleware: (next: Next) => Next, options: { step: 'deserialize'; name: string }): void;
  };
  stack.add(
    (next) => async (args) => {
      const result = await next(args);
      const header = (result.response as { headers?: Record<string, string> })?.headers?.date;
      const parsed = header ? Date.parse(header) : Number.NaN;
      date = Number.isNaN(parsed) ? undefined : parsed;
      return result;
    },
    { step: 'deserialize', name: 'regtokenServerDate' },
  );
  const output = (await s3.send(command as never)) as T;
  return { output, date };
}

/**
 * A lease lock on one S3 object. It is taken with a conditional write (`If-None-Match: *` when
 * absent, `If-Match: <etag>` to take over a free or run-out lock), so of several runs racing
 * for it exactly one wins. Whether a lease has run out is judged by S3's clock: the object's
 * `Last-Modified` plus the lease, against the `Date` of the answer that read it.
 */
export class S3RunLock implements TransferableLock {
  #etag: string | undefined;
  readonly #monotonic: Monotonic;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly owner: string,
    private readonly options: S3RunLockOptions,
  ) {
    this.#monotonic = options.monotonic ?? (() => performance.now());
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private get where(): string {
    return `s3://${this.bucket}/${this.key}`;
  }

  /** The lock object and S3's time, or undefined when there is none. */
  private async read(): Promise<
    { state: LockState; etag: string | undefined; marginMs: number; owner: unknown } | undefined
  > {
    try {
      const { output, date } = await sendWithDate<{
        Body?: { transformToString(e: string): Promise<string> };
        ETag?: string;
        LastModified?: Date;
      }>(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: this.key }));
      const text = (await output.Body?.transformToString('utf8')) ?? '';
      let body: LockBody | undefined;
      try {
        body = JSON.parse(text) as LockBody;
      } catch {
        body = undefined; // unreadable: only minters write here, so treat it as given back
      }
      const lastModified = output.LastModified?.getTime() ?? 0;
      const bounded = (v: unknown, otherwise: number) =>
        typeof v === 'number' && v > 0 ? Math.min(v, MAX_LEASE_MS) : otherwise;
      return {
        etag: output.ETag,
        owner: body?.owner,
        marginMs: bounded(body?.marginMs, this.options.marginMs),
        state: {
          lastModified,
          // S3 always sends Date; without it the local clock is the only estimate left.
          serverNow: date ?? Date.now(),
          leaseMs: bounded(body?.leaseMs, this.options.leaseMs),
          released: !body || body.released === true,
        },
      };
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchKey') return undefined;
      throw new StoreError(describeAwsError(err, this.where), { cause: err });
    }
  }

  async acquire(): Promise<Lease | undefined> {
    // Given back by this process, and untouched since: free, so no read is needed to judge it.
    const released = releasedHere(this.s3);
    const mine = released.get(this.where);
    if (mine) {
      released.delete(this.where);
      const lease = await this.take(mine.etag, mine);
      if (lease) return lease;
    }
    for (let waited = false; ; waited = true) {
      const current = await this.read();
      if (current) {
        const decision = judgeLock(current.state, current.marginMs);
        // A lease held by this owner is this run's own: a fanned-out run's plan step that
        // Step Functions invokes again after a lost answer takes it again.
        if (decision.kind === 'held' && current.owner !== this.owner) return undefined;
        if (decision.kind === 'wait' && current.owner !== this.owner) {
          // A takeover waits out the margin, for writes of the last holder that S3 got late;
          // then it reads the lock again (the holder may have come back and released it).
          if (waited) return undefined;
          await this.#sleep(decision.ms);
          continue;
        }
      }
      return this.take(current?.etag);
    }
  }

  /** Takes the lock at `etag`; `released` when that is this process's own release. */
  private async take(
    etag: string | undefined,
    released?: { note: ReleaseNote | undefined },
  ): Promise<Lease | undefined> {
    const body: LockBody = {
      owner: this.owner,
      leaseMs: this.options.leaseMs,
      marginMs: this.options.marginMs,
    };
    const sentAt = this.#monotonic();
    try {
      const { output, date } = await sendWithDate<{ ETag?: string }>(
        this.s3,
        new PutObjectCommand(this.put(body, etag ? { IfMatch: etag } : { IfNoneMatch: '*' })),
      );
      const receivedAt = this.#monotonic();
      this.#etag = output.ETag;
      const lease = new Lease({
        sentAt,
        receivedAt,
        // Without a Date header, the local clock is the only estimate left.
        serverAt: date ?? Date.now(),
        leaseMs: this.options.leaseMs,
        marginMs: this.options.marginMs,
        where: this.where,
        monotonic: this.#monotonic,
        sinceOwnRelease: released !== undefined,
        note: released?.note,
      });
      this.options.fence.arm(lease);
      return lease;
    } catch (err) {
      if (awsStatus(err) === 412 || awsStatus(err) === 409) return undefined; // another run won the race
      throw new StoreError(describeAwsError(err, this.where), { cause: err });
    }
  }

  private put(body: LockBody, condition: Partial<PutObjectCommandInput>): PutObjectCommandInput {
    return {
      Bucket: this.bucket,
      Key: this.key,
      Body: JSON.stringify(body),
      ContentType: 'application/json',
      ...condition,
    };
  }

  /**
   * What identifies this run's holding while it holds the lock (the lock object's ETag): what
   * another process of the same run needs to {@link join} or {@link adopt} it.
   */
  get heldTag(): string | undefined {
    return this.#etag;
  }

  /** Holds the lock another process of this run took (see {@link heldTag}), to release it. */
  adopt(tag: string): void {
    this.#etag = tag;
  }

  /**
   * Joins the lease another process of this run holds (a fanned-out run's worker or finish
   * step): reads the lock object, refuses with LeaseExpiredError unless it is still the holding
   * `tag`, and arms the fence until `writesEndAt` (S3's time, from {@link HandedLease}), counted
   * on this process's monotonic clock from the read, by S3's `Date` of its answer
   * (lambda/core/lease.ts, {@link Lease.writesEndAt}).
   */
  async join(tag: string, writesEndAt: number): Promise<Lease> {
    const sentAt = this.#monotonic();
    let answer: { output: { ETag?: string }; date: number | undefined };
    try {
      answer = await sendWithDate<{ ETag?: string }>(
        this.s3,
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key }),
      );
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchKey')
        throw new LeaseExpiredError(`${this.where}: the run lock is gone; this run may not write`);
      throw new StoreError(describeAwsError(err, this.where), { cause: err });
    }
    if (answer.output.ETag !== tag)
      throw new LeaseExpiredError(
        `${this.where}: the run lock is no longer this run's (released or taken over); this run may not write`,
      );
    const receivedAt = this.#monotonic();
    const serverAt = answer.date ?? Date.now();
    const lease = new Lease({
      sentAt,
      receivedAt,
      serverAt,
      // Writes may start until writesEndAt: the lease as counted from this read.
      leaseMs: writesEndAt - serverAt + this.options.marginMs,
      marginMs: this.options.marginMs,
      where: this.where,
      monotonic: this.#monotonic,
    });
    this.options.fence.arm(lease);
    return lease;
  }

  async release(note?: ReleaseNote): Promise<void> {
    // No write of this run may start from here on, whatever the release's outcome.
    this.options.fence.disarm();
    if (!this.#etag) return;
    try {
      const given = await this.s3.send(
        new PutObjectCommand(
          this.put({ owner: this.owner, released: true }, { IfMatch: this.#etag }),
        ),
      );
      if (given.ETag) releasedHere(this.s3).set(this.where, { etag: given.ETag, note });
    } catch (err) {
      // 412: our lease ran out and another run took over; its lock is not ours to free.
      if (awsStatus(err) !== 412) throw err;
    } finally {
      this.#etag = undefined;
    }
  }
}
