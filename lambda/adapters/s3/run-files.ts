/**
 * A fanned-out run's working files in the token bucket: `state/runs/RUN/` under the store's
 * prefix (shards, the plan summary, the manifest the workflow's Map reads, the workers'
 * results). The bucket policy denies `state/` to everyone but the minters (lambda/core/policy.ts).
 */

import { DeleteObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RunFiles } from '../../core/ports.js';
import { isRunId } from '../../core/shards.js';
import { InputError, StoreError } from '../../errors.js';
import { describeAwsError } from '../aws.js';
import { joinKey, readText, type S3Location } from './shared.js';

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1_000;

/** {@link RunFiles} in an S3 bucket, under the token store's prefix. */
export class S3RunFiles implements RunFiles {
  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {}

  private key(run: string, name: string): string {
    // The run ID comes from the workflow's input: it must not reach outside its folder.
    if (!isRunId(run)) throw new InputError(`run ID "${run.slice(0, 80)}" is not a run ID`);
    return joinKey(this.at.key, `state/runs/${run}/${name}`);
  }

  locate(run: string, name: string): string {
    return `s3://${this.at.bucket}/${this.key(run, name)}`;
  }

  async write(run: string, name: string, body: unknown): Promise<string> {
    const key = this.key(run, name);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.at.bucket,
          Key: key,
          Body: JSON.stringify(body),
          ContentType: 'application/json',
        }),
      );
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate(run, name)), { cause: err });
    }
    return key;
  }

  async read(run: string, name: string): Promise<unknown> {
    let found: Awaited<ReturnType<typeof readText>>;
    try {
      found = await readText(this.s3, this.at.bucket, this.key(run, name));
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate(run, name)), { cause: err });
    }
    if (found === undefined) return undefined;
    try {
      return JSON.parse(found.text);
    } catch {
      throw new StoreError(`${this.locate(run, name)}: not JSON`);
    }
  }

  async remove(run: string, names: readonly string[]): Promise<void> {
    const keys = names.map((n) => this.key(run, n));
    for (let at = 0; at < keys.length; at += DELETE_BATCH) {
      const batch = keys.slice(at, at + DELETE_BATCH);
      let errors: { Key?: string; Code?: string }[];
      try {
        const r = await this.s3.send(
          new DeleteObjectsCommand({
            Bucket: this.at.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        errors = r.Errors ?? [];
      } catch (err) {
        throw new StoreError(describeAwsError(err, this.locate(run, '')), { cause: err });
      }
      const first = errors[0];
      if (first)
        throw new StoreError(
          `s3://${this.at.bucket}/${first.Key ?? '?'}: ${first.Code ?? 'not deleted'} (${errors.length} file(s) of the run left)`,
        );
    }
  }
}
