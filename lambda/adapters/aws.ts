/**
 * Shared AWS plumbing: one way to build SDK clients and one way to turn SDK errors into
 * one-line messages. Endpoints, region and credentials come from the SDK's standard resolution
 * (AWS_ENDPOINT_URL, AWS_REGION, the default credential chain), so the same code runs against
 * AWS or any AWS-compatible endpoint with no special case.
 */

import { IAMClient } from '@aws-sdk/client-iam';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { S3_REQUEST_TIMEOUT_MS } from '../core/lease.js';
import { EnvError, NoCredentialsError, type RegtokenError } from '../errors.js';

/**
 * Attempts per call, including the first. Throttling and 5xx answers are retried with the
 * SDK's standard exponential backoff with jitter; AWS_MAX_ATTEMPTS overrides it.
 */
export const MAX_ATTEMPTS = 5;

/** How every client is configured: retries, and optionally a named AWS profile. */
export interface AwsClientOptions {
  /**
   * An AWS profile for credentials and region (instead of AWS_PROFILE or `default`).
   * @default the SDK's default credential chain
   */
  readonly profile?: string | undefined;
  /** See {@link S3_REQUEST_TIMEOUT_MS}; tests make it short. */
  readonly s3RequestTimeoutMs?: number;
}

/** The SDK clients regtoken uses, created on first use. */
export class AwsClients {
  #s3?: S3Client;
  #kms?: KMSClient;
  #iam?: IAMClient;
  #sts?: STSClient;
  /** See {@link S3_REQUEST_TIMEOUT_MS}; tests make it short. */
  readonly s3RequestTimeoutMs: number;
  readonly #config: { maxAttempts: number; profile?: string };

  constructor(options: AwsClientOptions = {}) {
    this.s3RequestTimeoutMs = options.s3RequestTimeoutMs ?? S3_REQUEST_TIMEOUT_MS;
    this.#config = {
      maxAttempts: MAX_ATTEMPTS,
      ...(options.profile === undefined ? {} : { profile: options.profile }),
    };
  }

  get s3(): S3Client {
    this.#s3 ??= new S3Client({
      ...this.#config,
      requestHandler: {
        connectionTimeout: Math.min(5_000, this.s3RequestTimeoutMs),
        requestTimeout: this.s3RequestTimeoutMs,
        throwOnRequestTimeout: true,
      },
    });
    return this.#s3;
  }
  get kms(): KMSClient {
    this.#kms ??= new KMSClient(this.#config);
    return this.#kms;
  }
  get iam(): IAMClient {
    this.#iam ??= new IAMClient(this.#config);
    return this.#iam;
  }
  get sts(): STSClient {
    this.#sts ??= new STSClient(this.#config);
    return this.#sts;
  }
}

interface SdkError {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The error's AWS code (`NoSuchKey`, `AccessDenied`, …) or its name. */
export function awsErrorCode(err: unknown): string {
  const e = err as SdkError;
  return e?.Code ?? e?.name ?? 'Error';
}

/** HTTP status of an SDK error, if it came from a response. */
export function awsStatus(err: unknown): number | undefined {
  return (err as SdkError)?.$metadata?.httpStatusCode;
}

/**
 * One line that says what went wrong with `what` (an s3:// URL, a key id), in words a user can
 * act on. Never includes request payloads.
 */
export function describeAwsError(err: unknown, what: string): string {
  const code = awsErrorCode(err);
  const status = awsStatus(err);
  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(String(err)))
    return `${what}: no AWS credentials found (set AWS_PROFILE, run aws sso login, or use an instance profile)`;
  if (code === 'NoSuchKey' || (code === 'NotFound' && status === 404))
    return `${what}: no such object`;
  if (code === 'NoSuchBucket') return `${what}: no such bucket`;
  if (code === 'AccessDenied' || code === 'AccessDeniedException' || status === 403)
    return `${what}: access denied`;
  if (code === 'NotFoundException') return `${what}: not found`;
  if (code === 'ExpiredToken' || code === 'ExpiredTokenException')
    return `${what}: the AWS session has expired (log in again)`;
  const message = (err as SdkError)?.message?.split('\n')[0] ?? String(err);
  return `${what}: ${code}${status ? ` (HTTP ${status})` : ''}: ${message}`;
}

/** What to do when the default credential chain finds nothing. */
export const NO_CREDENTIALS_HINT =
  'run aws sso login (or set AWS_PROFILE), export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance profile or task role provides them';

/**
 * An SDK error that is about the caller's credentials or region, as a one-line user-facing
 * error (NO_CREDENTIALS, ENV_MISSING); undefined for any other error.
 */
export function credentialsError(err: unknown): RegtokenError | undefined {
  const code = awsErrorCode(err);
  const message = ((err as SdkError)?.message ?? String(err)).split('\n')[0] ?? '';
  if (/Could not load credentials from any providers/i.test(message))
    return new NoCredentialsError(`no AWS credentials found: ${NO_CREDENTIALS_HINT}`, {
      cause: err,
    });
  if (code === 'CredentialsProviderError' || code === 'TokenProviderError')
    return new NoCredentialsError(`no usable AWS credentials: ${message}`, { cause: err });
  if (code === 'ExpiredToken' || code === 'ExpiredTokenException')
    return new NoCredentialsError(
      'the AWS session has expired: log in again (e.g. aws sso login) and retry',
      { cause: err },
    );
  if (['InvalidClientTokenId', 'InvalidAccessKeyId', 'SignatureDoesNotMatch'].includes(code))
    return new NoCredentialsError(
      `AWS rejected the credentials (${code}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`,
      { cause: err },
    );
  if (/Region is missing/i.test(message))
    return new EnvError(
      'no AWS region is set: set AWS_REGION or region in your AWS profile (any region reaches the token bucket; on EC2 the SDK asks the instance metadata)',
    );
  return undefined;
}
