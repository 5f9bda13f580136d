/**
 * The settings of a fanned-out run's three functions (lambda/fan-out-handler.ts): every
 * environment variable each step reads, set on the line next to the least-privilege statement
 * that makes it usable, as settings.ts does for the single function. Each step gets only what
 * it touches:
 *
 * - plan: reads the grants, the inventory and IAM; owns the bucket policy, the trust material
 *   and the lock; lists the tokens; writes the run's files; signs once-only root certificates.
 *   It writes no token.
 * - shard: reads its shard, writes its shard's tokens and its result; one KMS Sign per shard.
 * - finish: reads the results and the grants' version, deletes stale tokens and the run's
 *   files, releases the lock.
 */

import { type Duration, aws_iam as iam, Stack, type aws_s3 as s3, Validations } from 'aws-cdk-lib';
import { formatDuration } from '../../lambda/core/duration.js';
import { METRICS_NAMESPACE } from './alarms.js';
import { checkPrefix, under } from './checks.js';
import { bindEnv, readGrants, type SettingsSource } from './settings.js';
import { allowOnlyToSign, signingStatement } from './signing-root.js';

/** A function and its role. */
export interface StepFunction {
  readonly function: { addEnvironment(name: string, value: string): unknown };
  readonly role: iam.Role;
}

/** The three functions of a fanned-out run. */
export interface FanOutFunctions {
  readonly plan: StepFunction;
  readonly shard: StepFunction;
  readonly finish: StepFunction;
}

/** Sets every environment variable of the three functions, each with the permissions it needs. */
export function bindFanOutSettings(
  fns: FanOutFunctions,
  s: SettingsSource & {
    readonly shardSize: number;
    /** The run lock's lease: the whole execution plus one worker's timeout. */
    readonly lease: Duration;
  },
): void {
  const out = under(s.tokenPrefix);
  const objects = (...keys: string[]) => keys.map((k) => s.tokenBucket.arnForObjects(`${out}${k}`));
  const runFiles = 'state/runs/*';
  const { plan, shard, finish } = fns;

  // The grants: read by the plan step, their version checked by the finish step.
  for (const step of [plan, finish])
    bindEnv(step, 'REGTOKEN_CONFIG', s.configUrl, ...readGrants(s));

  bindEnv(
    plan,
    'REGTOKEN_OUT',
    s.tokenStoreUrl,
    statement(
      'PublishTrustAndLock',
      ['s3:GetObject', 's3:PutObject'],
      objects('trust/bundle.pem', 'trust/jwks.json', 'state/lock.json'),
    ),
    statement('WriteRunFiles', ['s3:PutObject'], objects(runFiles)),
    // Lists tokens/ to find the stale ones (and lets S3 answer 404 for the first run's reads).
    statement('ListTokens', ['s3:ListBucket'], [s.tokenBucket.bucketArn]),
    statement(
      'OwnTokenBucketPolicy',
      ['s3:GetBucketPolicy', 's3:PutBucketPolicy'],
      [s.tokenBucket.bucketArn],
    ),
    // IAM's list APIs have no resource-level permissions.
    statement('CheckPrincipals', ['iam:ListRoles', 'iam:ListUsers'], ['*']),
  );
  bindEnv(
    shard,
    'REGTOKEN_OUT',
    s.tokenStoreUrl,
    // One object per principal of the shard: names come from the grants at run time.
    statement('WriteTokens', ['s3:PutObject', 's3:PutObjectTagging'], objects('tokens/*')),
    statement('ReadShardWriteResult', ['s3:GetObject', 's3:PutObject'], objects(runFiles)),
    // Reads the lock before it writes: still this run's holding (lambda/adapters/s3/run-lock.ts).
    statement('JoinRunLease', ['s3:GetObject'], objects('state/lock.json')),
  );
  bindEnv(
    finish,
    'REGTOKEN_OUT',
    s.tokenStoreUrl,
    statement('DeleteStaleTokens', ['s3:DeleteObject'], objects('tokens/*')),
    // Reads the lock to join the run's lease before its deletes, then releases it.
    statement('JoinAndReleaseLock', ['s3:GetObject', 's3:PutObject'], objects('state/lock.json')),
    statement('ReadAndRemoveRunFiles', ['s3:GetObject', 's3:DeleteObject'], objects(runFiles)),
  );

  // The bucket policy exempts these from its Denies; no permission is needed for that.
  for (const step of [plan, shard, finish])
    bindEnv(step, 'REGTOKEN_MINTER_ARNS', s.minterArns.join(','));

  // The plan step signs only a root certificate it has to make (once per root); each worker
  // signs its shard's certificate. Neither key policy lets anyone else sign.
  bindEnv(
    plan,
    'REGTOKEN_SIGNING_KEY',
    `kms:${s.signingKey.keyArn}`,
    signingStatement('SignWithRoot', [s.signingKey]),
  );
  bindEnv(
    shard,
    'REGTOKEN_SIGNING_KEY',
    `kms:${s.signingKey.keyArn}`,
    statement('CertifyShardKey', ['kms:Sign'], [s.signingKey.keyArn]),
  );
  allowOnlyToSign(s.signingKey, [plan.role, shard.role]);
  if (s.trustedKeys.length > 0) {
    bindEnv(
      plan,
      'REGTOKEN_TRUSTED_KEYS',
      s.trustedKeys.map((k) => k.keyArn).join(','),
      signingStatement('CertifyTrustedRoots', s.trustedKeys),
    );
    for (const key of s.trustedKeys) allowOnlyToSign(key, [plan.role]);
  }

  if (s.registryStorage)
    bindEnv(plan, 'REGTOKEN_REPOSITORIES', ...listRepositories(s.registryStorage));

  acknowledge(fns, s.tokenBucket, out);
  bindEnv(plan, 'REGTOKEN_LOCK_LEASE', formatDuration(s.lease.toSeconds()));
  bindEnv(plan, 'REGTOKEN_SHARD_SIZE', String(s.shardSize));
  for (const step of [plan, shard, finish]) {
    bindEnv(step, 'POWERTOOLS_LOG_LEVEL', s.logLevel);
    bindEnv(step, 'POWERTOOLS_SERVICE_NAME', s.serviceName);
    bindEnv(step, 'POWERTOOLS_METRICS_NAMESPACE', METRICS_NAMESPACE);
  }
}

/** The cdk-nag findings of the three roles, each with its reason. */
function acknowledge(fns: FanOutFunctions, tokenBucket: s3.Bucket, out: string): void {
  const bucketId = Stack.of(tokenBucket).getLogicalId(
    tokenBucket.node.defaultChild as s3.CfnBucket,
  );
  const runFiles = {
    id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${out}state/runs/*]`,
    reason:
      "A fanned-out run's files are named by the run (the execution's name) at run time: state/runs/RUN/ holds its shards, manifest and results; the bucket policy denies state/ to everyone but the minters.",
  };
  const tokens = (what: string) => ({
    id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${out}tokens/*]`,
    reason: `The function ${what} one token object per principal under tokens/; the names come from the grants file at run time. It reads no token.`,
  });
  Validations.of(fns.plan.role).acknowledge(runFiles, {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'iam:ListRoles and iam:ListUsers have no resource-level permissions: IAM only accepts "*" for them. They are the only actions on "*".',
  });
  Validations.of(fns.shard.role).acknowledge(runFiles, tokens('writes'));
  Validations.of(fns.finish.role).acknowledge(runFiles, tokens('deletes stale'));
}

/** The registry's storage as REGTOKEN_REPOSITORIES, and listing its repositories only. */
function listRepositories(
  storage: NonNullable<SettingsSource['registryStorage']>,
): [string, iam.PolicyStatement] {
  const prefix = checkPrefix('registryStorage.prefix', storage.prefix ?? '');
  const bucket = storage.bucket;
  return [
    `s3://${bucket.bucketName}${prefix ? `/${prefix}` : ''}`,
    new iam.PolicyStatement({
      sid: 'ListRepositories',
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: {
        StringLike: { 's3:prefix': `${under(prefix)}docker/registry/v2/repositories/*` },
      },
    }),
  ];
}

function statement(sid: string, actions: string[], resources: string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid, actions, resources });
}
