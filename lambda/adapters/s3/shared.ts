/**
 * What the S3 adapters share: `s3://` locations and reading an object as text.
 */

import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { InputError } from '../../errors.js';
import { awsErrorCode } from '../aws.js';

/** A parsed `s3://BUCKET/KEY` location. */
export interface S3Location {
  readonly bucket: string;
  /** Object key, or a prefix without leading or trailing slash ('' for the bucket root). */
  readonly key: string;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** True when `location` is an S3 URL. */
export function isS3Url(location: string): boolean {
  return location.startsWith('s3://');
}

/**
 * Parses `s3://BUCKET/KEY` (an object) or `s3://BUCKET[/PREFIX]` (a prefix). Throws
 * InputError naming the URL when it is not one.
 */
export function parseS3Url(url: string, kind: 'object' | 'prefix'): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  const bucket = m?.[1] ?? '';
  const key = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (!m || !BUCKET_RE.test(bucket))
    throw new InputError(
      `${url}: not an S3 location (expected s3://BUCKET/${kind === 'object' ? 'KEY' : '[PREFIX]'})`,
    );
  if (kind === 'object' && key === '')
    throw new InputError(`${url}: names a bucket, not an object (expected s3://BUCKET/KEY)`);
  return { bucket, key };
}

/** `prefix/key`, or `key` at the bucket root. */
export function joinKey(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key;
}

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
