/**
 * The minter's buckets: the config bucket (the grants object), the token bucket (tokens, trust
 * material, run lock) and, unless one is given, the bucket receiving both buckets' access logs.
 */

import { Duration, RemovalPolicy, aws_s3 as s3, Validations } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/** The buckets of one minter. */
export interface MinterBuckets {
  readonly configBucket: s3.Bucket;
  readonly tokenBucket: s3.Bucket;
  /** Receives both buckets' S3 server access logs. */
  readonly accessLogs: s3.IBucket;
}

/**
 * What every bucket of regtoken shares: no public access, ACLs off, SSE-S3, and kept when the
 * stack is deleted (docs/deploy.md, "Retiring").
 */
export const PRIVATE_BUCKET = {
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
  encryption: s3.BucketEncryption.S3_MANAGED,
  removalPolicy: RemovalPolicy.RETAIN,
} as const satisfies s3.BucketProps;

/**
 * Creates the config and token buckets in `scope`, logging access to `accessLogsBucket` or to
 * a new bucket.
 */
export function createBuckets(scope: Construct, accessLogsBucket?: s3.IBucket): MinterBuckets {
  const accessLogs = accessLogsBucket ?? createAccessLogsBucket(scope);
  const configBucket = new s3.Bucket(scope, 'ConfigBucket', {
    ...PRIVATE_BUCKET,
    versioned: true,
    // CDK owns this bucket's policy: nothing else writes it.
    enforceSSL: true,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: 'config-bucket/',
    lifecycleRules: [
      { noncurrentVersionExpiration: Duration.days(365) },
      { abortIncompleteMultipartUploadAfter: Duration.days(1) },
    ],
  });
  // SSE-S3 (PRIVATE_BUCKET): readers need no kms:Decrypt (an SSE-KMS key would have to be
  // granted to each).
  const tokenBucket = new s3.Bucket(scope, 'TokenBucket', {
    ...PRIVATE_BUCKET,
    // No versions: an old version would keep a replaced or revoked token readable.
    versioned: false,
    // No enforceSSL and no autoDeleteObjects: both would make CDK write the bucket policy,
    // which the function owns (it holds a TLS-only Deny of its own).
    enforceSSL: false,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: 'token-bucket/',
    lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1) }],
  });
  Validations.of(tokenBucket).acknowledge({
    id: 'AwsSolutions-S10',
    reason:
      'The token bucket policy is written by the function at run time (lambda/core/policy.ts) and starts with a TLS-only Deny (aws:SecureTransport=false); CDK must not own that policy too, or each would overwrite the other.',
  });
  return { configBucket, tokenBucket, accessLogs };
}

function createAccessLogsBucket(scope: Construct): s3.Bucket {
  return new s3.Bucket(scope, 'AccessLogs', {
    ...PRIVATE_BUCKET,
    enforceSSL: true,
    lifecycleRules: [{ expiration: Duration.days(365) }],
  });
}
