/**
 * `s3://` locations. Apart from the S3 adapters, so that deciding whether a location is on S3
 * loads no AWS SDK: a run whose locations are all local never loads it (lambda/run.ts).
 */

import { InputError } from '../../errors.js';

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
