/**
 * Who fetched which token: CloudTrail S3 data events for the token bucket's `tokens/` prefix
 * (docs/aws.md, "Who read which token"). S3 server access logs already record reads, but
 * hours late and best effort; a data event names the caller's principal and session, its
 * source address or VPC endpoint, and whether the read was denied, and arrives within minutes.
 *
 * Either an existing trail of the app records them, or a dedicated trail does: data events
 * only (no management events, one region), to its own retained bucket and to a CloudWatch log
 * group, where a Logs Insights query answers "who read the token of role X, when, from where".
 */

import {
  aws_cloudtrail as cloudtrail,
  Duration,
  aws_iam as iam,
  aws_logs as logs,
  Names,
  RemovalPolicy,
  Stack,
  aws_s3 as s3,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { PRIVATE_BUCKET } from './buckets.js';

/** Settings of the token-read trail (the `recordTokenReads` prop). */
export interface TokenReadsOptions {
  /**
   * A trail of this app to add the data event selector to (the account's trail, say). Its
   * other selectors and its management events stay as they are.
   * @default - a dedicated trail: data events of the token bucket only, to a CloudWatch log group
   */
  readonly trail?: cloudtrail.Trail;
  /**
   * How long the dedicated trail's log group keeps the events (its bucket keeps them as long).
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly retention?: logs.RetentionDays;
}

/** The trail recording token reads, and, for a dedicated one, its log group. */
export interface TokenReads {
  readonly trail: cloudtrail.Trail;
  /** The dedicated trail's log group (undefined when an existing trail records the reads). */
  readonly logGroup?: logs.LogGroup;
}

/**
 * Records reads of `tokenBucket`'s objects under `tokensPrefix` (`tokens/` or
 * `PREFIX/tokens/`) with CloudTrail, on `options.trail` or on a new trail in `scope`.
 */
export function recordTokenReads(
  scope: Construct,
  tokenBucket: s3.IBucket,
  tokensPrefix: string,
  accessLogs: s3.IBucket,
  options: TokenReadsOptions,
): TokenReads {
  // Read-only: a read is the question ("who fetched it"); writes and deletes come from the
  // function alone (the bucket policy denies everyone else), every run, for every principal,
  // and would multiply the events billed without answering anything new.
  const selector = [{ bucket: tokenBucket, objectPrefix: tokensPrefix }];
  if (options.trail) {
    options.trail.addS3EventSelector(selector, {
      readWriteType: cloudtrail.ReadWriteType.READ_ONLY,
    });
    return { trail: options.trail };
  }
  const retention = options.retention ?? logs.RetentionDays.ONE_YEAR;
  // The record of who read a token outlives the deployment (docs/deploy.md, "Retiring").
  const bucket = new s3.Bucket(scope, 'TokenReadsBucket', {
    ...PRIVATE_BUCKET,
    enforceSSL: true,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: 'token-reads-bucket/',
    lifecycleRules:
      retention === logs.RetentionDays.INFINITE ? [] : [{ expiration: Duration.days(retention) }],
  });
  const logGroup = new logs.LogGroup(scope, 'TokenReadsLogs', {
    retention,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  // A name fixed at synth, so the bucket policy can name this trail's ARN without a cycle
  // (the trail depends on the policy): CloudTrail writes here for this trail only.
  const trailName = `${Names.uniqueResourceName(scope, { maxLength: 100, separator: '-' })}-token-reads`;
  const stack = Stack.of(scope);
  const trailArn = stack.formatArn({
    service: 'cloudtrail',
    resource: 'trail',
    resourceName: trailName,
  });
  // The Allows aws-cdk-lib adds for CloudTrail name no trail, so any trail in any account
  // could deliver here (the confused deputy AWS's bucket policy guidance warns about).
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'OnlyThisTrail',
      effect: iam.Effect.DENY,
      principals: [new iam.ServicePrincipal('cloudtrail.amazonaws.com')],
      actions: ['s3:PutObject', 's3:GetBucketAcl'],
      resources: [bucket.bucketArn, bucket.arnForObjects('*')],
      conditions: { StringNotEquals: { 'aws:SourceArn': trailArn } },
    }),
  );
  const trail = new cloudtrail.Trail(scope, 'TokenReads', {
    trailName,
    bucket,
    // The token bucket's data events are recorded in its own region; nothing else is wanted.
    isMultiRegionTrail: false,
    includeGlobalServiceEvents: false,
    managementEvents: cloudtrail.ReadWriteType.NONE,
    enableFileValidation: true,
    sendToCloudWatchLogs: true,
    cloudWatchLogGroup: logGroup,
  });
  trail.addS3EventSelector(selector, {
    readWriteType: cloudtrail.ReadWriteType.READ_ONLY,
    includeManagementEvents: false,
  });
  return { trail, logGroup };
}
