/**
 * The function's settings: every environment variable it reads (lambda/env.ts), each set on
 * the line next to the least-privilege statement that makes it usable.
 */

import {
  type Duration,
  aws_iam as iam,
  type aws_kms as kms,
  Stack,
  type aws_s3 as s3,
  Validations,
} from 'aws-cdk-lib';
import { formatDuration } from '../../lambda/core/duration.js';
import { leaseMarginMs, S3_REQUEST_TIMEOUT_MS } from '../../lambda/core/lease.js';
import type { EnvName } from '../../lambda/env.js';
import { METRICS_NAMESPACE } from './alarms.js';
import { checkPrefix, lifetimeMargin, under } from './checks.js';
import type { MinterFunction } from './function.js';
import { allowOnlyToSign, signingStatement } from './signing-root.js';

/** Powertools settings, read by the Powertools library rather than lambda/env.ts. */
export type PowertoolsEnv =
  | 'POWERTOOLS_LOG_LEVEL'
  | 'POWERTOOLS_SERVICE_NAME'
  | 'POWERTOOLS_METRICS_NAMESPACE';

/** What the settings are made of. */
export interface SettingsSource {
  readonly configBucket: s3.Bucket;
  readonly configKey: string;
  /** `s3://CONFIG_BUCKET/KEY` of the grants object. */
  readonly configUrl: string;
  readonly tokenBucket: s3.Bucket;
  readonly tokenPrefix: string;
  /** `s3://TOKEN_BUCKET[/PREFIX]`. */
  readonly tokenStoreUrl: string;
  readonly signingKey: kms.IKey;
  readonly trustedKeys: readonly kms.IKey[];
  readonly registryStorage?: { readonly bucket: s3.IBucket; readonly prefix?: string };
  /** ARNs of every minter of the token bucket: the function's role first. */
  readonly minterArns: readonly string[];
  readonly timeout: Duration;
  /** How often every token is re-minted. */
  readonly period: Duration;
  readonly logLevel: string;
  readonly serviceName: string;
}

/**
 * Sets one environment variable of a function and gives its role the statements that go with
 * it: each setting arrives with exactly the permissions it needs.
 */
export function bindEnv(
  target: {
    readonly function: { addEnvironment(name: string, value: string): unknown };
    readonly role: iam.Role;
  },
  name: EnvName | PowertoolsEnv,
  value: string,
  ...statements: iam.PolicyStatement[]
): void {
  target.function.addEnvironment(name, value);
  for (const statement of statements) target.role.addToPrincipalPolicy(statement);
}

/** Reading the grants object, and seeing that it is missing (404, not 403) before the first upload. */
export function readGrants(
  s: Pick<SettingsSource, 'configBucket' | 'configKey'>,
): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: 'ReadGrants',
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [s.configBucket.arnForObjects(s.configKey)],
    }),
    // Without ListBucket, S3 answers 403 instead of 404 for a grants object not uploaded yet,
    // and the run would report "access denied" instead of "no such object". The bucket holds
    // nothing but the grants.
    new iam.PolicyStatement({
      sid: 'SeeMissingGrants',
      actions: ['s3:ListBucket'],
      resources: [s.configBucket.bucketArn],
    }),
  ];
}

/** Sets every environment variable of the function, each with the permissions it needs. */
export function bindSettings(minter: MinterFunction, s: SettingsSource): void {
  const bind = (
    name: EnvName | PowertoolsEnv,
    value: string,
    ...statements: iam.PolicyStatement[]
  ) => bindEnv(minter, name, value, ...statements);
  const out = under(s.tokenPrefix);

  bind('REGTOKEN_CONFIG', s.configUrl, ...readGrants(s));

  bind('REGTOKEN_OUT', s.tokenStoreUrl, ...tokenStoreStatements(s.tokenBucket, out));

  const tokenBucketId = Stack.of(s.tokenBucket).getLogicalId(
    s.tokenBucket.node.defaultChild as s3.CfnBucket,
  );
  Validations.of(minter.role).acknowledge(
    {
      id: `AwsSolutions-IAM5[Resource::<${tokenBucketId}.Arn>/${out}tokens/*]`,
      reason:
        'The function writes and deletes one token object per principal under tokens/; the names come from the grants file at run time. It reads no token.',
    },
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'iam:ListRoles and iam:ListUsers have no resource-level permissions: IAM only accepts "*" for them. They are the only actions on "*".',
    },
  );

  // The bucket policy exempts these from its Denies; no permission is needed for that.
  bind('REGTOKEN_MINTER_ARNS', s.minterArns.join(','));

  bind(
    'REGTOKEN_SIGNING_KEY',
    `kms:${s.signingKey.keyArn}`,
    signingStatement('SignWithRoot', [s.signingKey]),
  );
  allowOnlyToSign(s.signingKey, [minter.role]);
  if (s.trustedKeys.length > 0) {
    bind(
      'REGTOKEN_TRUSTED_KEYS',
      s.trustedKeys.map((k) => k.keyArn).join(','),
      // Sign too: the root certificate of a trusted key is self-signed by that key once.
      signingStatement('CertifyTrustedRoots', s.trustedKeys),
    );
    for (const key of s.trustedKeys) allowOnlyToSign(key, [minter.role]);
  }

  if (s.registryStorage) {
    const prefix = checkPrefix('registryStorage.prefix', s.registryStorage.prefix ?? '');
    const bucket = s.registryStorage.bucket;
    bind(
      'REGTOKEN_REPOSITORIES',
      `s3://${bucket.bucketName}${prefix ? `/${prefix}` : ''}`,
      new iam.PolicyStatement({
        sid: 'ListRepositories',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: {
          StringLike: { 's3:prefix': `${under(prefix)}docker/registry/v2/repositories/*` },
        },
      }),
    );
  }

  // The timeout plus the margin a lease keeps free of writes: the function's writes stop when
  // Lambda would stop it, and a crashed run's lock frees itself (docs/aws.md).
  const marginSeconds = leaseMarginMs(S3_REQUEST_TIMEOUT_MS) / 1000;
  bind('REGTOKEN_LOCK_LEASE', formatDuration(s.timeout.toSeconds() + marginSeconds));
  // The grants come from wherever they are uploaded: each run checks their lifetimes against
  // the schedule the stack set (a warning, the ShortLifetimes metric and its alarm).
  bind('REGTOKEN_SCHEDULE', formatDuration(s.period.toSeconds()));
  bind('REGTOKEN_LIFETIME_MARGIN', formatDuration(lifetimeMargin(s.timeout).toSeconds()));
  bind('POWERTOOLS_LOG_LEVEL', s.logLevel);
  bind('POWERTOOLS_SERVICE_NAME', s.serviceName);
  bind('POWERTOOLS_METRICS_NAMESPACE', METRICS_NAMESPACE);
}

/**
 * What REGTOKEN_OUT needs: write and delete token objects, publish the trust material and hold
 * the lock, list the tokens, own the bucket policy, and check principals against IAM.
 */
function tokenStoreStatements(tokenBucket: s3.Bucket, out: string): iam.PolicyStatement[] {
  const bucketArn = tokenBucket.bucketArn;
  return [
    // One object per principal: names come from the grants at run time.
    new iam.PolicyStatement({
      sid: 'WriteTokens',
      actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject'],
      resources: [tokenBucket.arnForObjects(`${out}tokens/*`)],
    }),
    new iam.PolicyStatement({
      sid: 'PublishTrustAndLock',
      actions: ['s3:GetObject', 's3:PutObject'],
      resources: [
        tokenBucket.arnForObjects(`${out}trust/bundle.pem`),
        tokenBucket.arnForObjects(`${out}trust/jwks.json`),
        tokenBucket.arnForObjects(`${out}state/lock.json`),
      ],
    }),
    // Lists tokens/ (and trust/, whose ETags tell whether the trust files changed since the
    // container saw them) to remove tokens of principals no longer granted. Not narrowed with
    // s3:prefix: the first run reads trust/bundle.pem and state/lock.json before they exist,
    // and S3 answers that with 404 only to a caller allowed to list the bucket.
    new iam.PolicyStatement({
      sid: 'ListTokens',
      actions: ['s3:ListBucket'],
      resources: [bucketArn],
    }),
    new iam.PolicyStatement({
      sid: 'OwnTokenBucketPolicy',
      actions: ['s3:GetBucketPolicy', 's3:PutBucketPolicy'],
      resources: [bucketArn],
    }),
    // Minting into S3 checks every same-account principal against IAM. The list APIs have no
    // resource-level permissions; sts:GetCallerIdentity needs no permission.
    new iam.PolicyStatement({
      sid: 'CheckPrincipals',
      actions: ['iam:ListRoles', 'iam:ListUsers'],
      resources: ['*'],
    }),
  ];
}
