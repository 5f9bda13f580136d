/**
 * What the S3 adapters share: `s3://` locations (url.ts) and reading an object as text.
 */

import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorCode } from '../aws.js';

export { isS3Url, joinKey, parseS3Url, type S3Location } from './url.js';

/** An object longer than a reader accepts; its body was not read. */
export class TooLargeError extends Error {
  constructor(readonly bytes: number) {
    super(`the object is ${bytes} bytes`);
  }
}

/**
 * Reads an object as text, with its version (version id, else ETag) and ETag; undefined when
 * there is no such key. With `maxBytes`, an object whose length exceeds it is not read: its
 * body is discarded and {@link TooLargeError} thrown. Other errors are the caller's to describe.
 */
export async function readText(
  s3: S3Client,
  bucket: string,
  key: string,
  maxBytes?: number,
): Promise<{ text: string; version: string | undefined; etag: string | undefined } | undefined> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (maxBytes !== undefined && (r.ContentLength ?? 0) > maxBytes) {
      (r.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw new TooLargeError(r.ContentLength ?? 0);
    }
    return {
      text: (await r.Body?.transformToString('utf8')) ?? '',
      version: r.VersionId ?? r.ETag,
      etag: r.ETag,
    };
  } catch (err) {
    if (awsErrorCode(err) === 'NoSuchKey') return undefined;
    throw err;
  }
}
