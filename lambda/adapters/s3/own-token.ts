/**
 * Client side: reads the caller's own token document from the token bucket
 * (`s3://TOKEN_BUCKET[/PREFIX]/tokens/ACCOUNT/role|user/NAME.json`) with the caller's
 * credentials, and notes AWS's clock (the answer's `Date` header) so a wrong local clock can be
 * told apart from an expired token.
 *
 * It reports "missing" and "denied" as results, not errors: the client composes the message,
 * which depends on who asked. On real S3 a caller without `s3:ListBucket` (every reader of the
 * token bucket) gets 403, not 404, for a key that does not exist, so "denied" covers "no token
 * yet" there too (docs/client.md).
 */

import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { InputError, StoreError } from '../../errors.js';
import { awsErrorCode, awsStatus, credentialsError, describeAwsError } from '../aws.js';
import type { S3Location } from './shared.js';

/** What reading one's token found. */
export type OwnTokenRead =
  | { readonly kind: 'found'; readonly text: string; readonly awsDate: Date | undefined }
  | { readonly kind: 'missing' }
  | { readonly kind: 'denied'; readonly code: string };

/** The token bucket (and prefix), read with the caller's own credentials. */
export class S3OwnTokenSource {
  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {}

  /** `s3://BUCKET/PREFIX/KEY` for a key relative to the token location. */
  locate(key: string): string {
    return `s3://${this.at.bucket}/${this.objectKey(key)}`;
  }

  private objectKey(key: string): string {
    return this.at.key ? `${this.at.key}/${key}` : key;
  }

  async read(key: string): Promise<OwnTokenRead> {
    const command = new GetObjectCommand({ Bucket: this.at.bucket, Key: this.objectKey(key) });
    let awsDate: Date | undefined;
    // The Date header is not part of GetObject's output; read it from the raw answer.
    command.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const date = (result.response as { headers?: Record<string, string> })?.headers?.date;
        const parsed = date ? new Date(date) : undefined;
        awsDate = parsed && !Number.isNaN(parsed.getTime()) ? parsed : undefined;
        return result;
      },
      { step: 'deserialize', name: 'regtokenAwsDate' },
    );
    try {
      const r = await this.s3.send(command);
      const text = (await r.Body?.transformToString('utf8')) ?? '';
      return { kind: 'found', text, awsDate };
    } catch (err) {
      const code = awsErrorCode(err);
      if (code === 'NoSuchKey') return { kind: 'missing' };
      const known = credentialsError(err);
      if (known) throw known;
      if (code === 'NoSuchBucket')
        throw new InputError(
          `s3://${this.at.bucket}: no such bucket (check --from, REGTOKEN_FROM or your config file)`,
          { cause: err },
        );
      if (code === 'AccessDenied' || awsStatus(err) === 403) return { kind: 'denied', code };
      throw new StoreError(describeAwsError(err, this.locate(key)), { cause: err });
    }
  }
}
