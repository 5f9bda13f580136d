/**
 * The grants file as an S3 object in the config bucket.
 */

import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { oversizedGrants } from '../../core/config.js';
import type { ConfigSource } from '../../core/ports.js';
import { MAX_GRANTS_BYTES } from '../../core/yaml-limits.js';
import { InputError, NotFoundError } from '../../errors.js';
import { describeAwsError } from '../aws.js';
import { readText, type S3Location, TooLargeError } from './shared.js';

/** The grants file as an S3 object; its version id (or ETag when unversioned) is recorded. */
export class S3ConfigSource implements ConfigSource {
  readonly name: string;

  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {
    this.name = `s3://${at.bucket}/${at.key}`;
  }

  async read(): Promise<{ text: string; version?: string }> {
    let got: Awaited<ReturnType<typeof readText>>;
    try {
      // An object over the size limit is refused by its length, before its body is read.
      got = await readText(this.s3, this.at.bucket, this.at.key, MAX_GRANTS_BYTES);
    } catch (err) {
      if (err instanceof TooLargeError) throw oversizedGrants(this.name, err.bytes);
      // A missing bucket or a refused read is an error; only a missing object in a bucket that
      // exists (NotFoundError) may mean that nothing is deployed yet (regtoken plan --from).
      throw new InputError(describeAwsError(err, this.name), { cause: err });
    }
    if (!got) throw new NotFoundError(`${this.name}: no such object`);
    return got.version ? { text: got.text, version: got.version } : { text: got.text };
  }

  async currentVersion(): Promise<string | undefined> {
    try {
      const r = await this.s3.send(
        new HeadObjectCommand({ Bucket: this.at.bucket, Key: this.at.key }),
      );
      return r.VersionId ?? r.ETag;
    } catch {
      return undefined;
    }
  }
}
