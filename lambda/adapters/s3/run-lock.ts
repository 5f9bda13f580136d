/**
 * The run lock: a lease on one object of the token bucket (`state/lock.json`).
 */

import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RunLock } from '../../core/ports.js';
import { StoreError } from '../../errors.js';
import { awsStatus, describeAwsError } from '../aws.js';
import { readText } from './shared.js';

interface LockBody {
  readonly owner: string;
  readonly expiresAt: string;
  readonly released?: boolean;
}

/**
 * A lease lock on one S3 object, taken with conditional writes (`If-None-Match: *` when absent,
 * `If-Match: <etag>` to take over a free or expired lock). The lease must outlast a run
 * (the Lambda timeout), so a crashed run's lock frees itself.
 */
export class S3RunLock implements RunLock {
  #etag: string | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly owner: string,
    private readonly leaseMs: number,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async acquire(): Promise<boolean> {
    const current = await readText(this.s3, this.bucket, this.key);
    const body: LockBody = {
      owner: this.owner,
      expiresAt: new Date(this.clock().getTime() + this.leaseMs).toISOString(),
    };
    if (current) {
      let held: LockBody | undefined;
      try {
        held = JSON.parse(current.text) as LockBody;
      } catch {
        held = undefined; // unreadable lock: treat as free
      }
      if (held && !held.released && Date.parse(held.expiresAt) > this.clock().getTime())
        return false;
    }
    try {
      const r = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          ...(current?.etag ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
        }),
      );
      this.#etag = r.ETag;
      return true;
    } catch (err) {
      if (awsStatus(err) === 412 || awsStatus(err) === 409) return false; // another run won the race
      throw new StoreError(describeAwsError(err, `s3://${this.bucket}/${this.key}`), {
        cause: err,
      });
    }
  }

  async release(): Promise<void> {
    if (!this.#etag) return;
    const body: LockBody = {
      owner: this.owner,
      expiresAt: this.clock().toISOString(),
      released: true,
    };
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          IfMatch: this.#etag,
        }),
      );
    } catch (err) {
      // 412: our lease ran out and another run took over; its lock is not ours to free.
      if (awsStatus(err) !== 412) throw err;
    } finally {
      this.#etag = undefined;
    }
  }
}
