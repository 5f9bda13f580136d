import type { Template } from 'aws-cdk-lib/assertions';
import type { RegistryTokenMinter } from '../../infra/minter.js';

interface PolicyResource {
  Properties: { Roles?: unknown[]; PolicyDocument: { Statement: unknown[] } };
}

/**
 * The statements of each identity policy attached to the role `ref` stands for (`{ Ref: id }`,
 * as the template writes it), one list a policy, in the template's order.
 */
export function rolePolicies(template: Template, ref: unknown): unknown[][] {
  const key = JSON.stringify(ref);
  return (Object.values(template.findResources('AWS::IAM::Policy')) as PolicyResource[])
    .filter((p) => (p.Properties.Roles ?? []).some((x) => JSON.stringify(x) === key))
    .map((p) => p.Properties.PolicyDocument.Statement);
}

/** Every identity statement attached to the role `ref` stands for, policy after policy. */
export function roleStatements(template: Template, ref: unknown): unknown[] {
  return rolePolicies(template, ref).flat();
}

/**
 * The statements the minter's code needs wherever it runs (the one function, or the fan-out's
 * plan and finish steps), exactly as the template writes them: lists sorted, as the feature flag
 * @aws-cdk/aws-iam:minimizePolicies (cdk.json) does. `r` resolves a token in the minter's stack.
 */
export function minterStatements(minter: RegistryTokenMinter, r: (v: unknown) => unknown) {
  const tokens = (key: string) => r(minter.tokenBucket.arnForObjects(key));
  const tokenBucket = r(minter.tokenBucket.bucketArn);
  return {
    /** The ARN of `key` in the token bucket. */
    tokens,
    /** Writing to the log group with logical id `logGroupId`. */
    writeLogs: (logGroupId: string) => ({
      Sid: 'WriteLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
    }),
    /** Reading the grants object, and telling a missing one from a forbidden one. */
    readGrants: [
      {
        Sid: 'ReadGrants',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:GetObjectVersion'],
        Resource: r(minter.configBucket.arnForObjects('grants.yaml')),
      },
      {
        Sid: 'SeeMissingGrants',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: r(minter.configBucket.bucketArn),
      },
    ],
    publishTrustAndLock: {
      Sid: 'PublishTrustAndLock',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject'],
      Resource: [tokens('state/lock.json'), tokens('trust/bundle.pem'), tokens('trust/jwks.json')],
    },
    listTokens: {
      Sid: 'ListTokens',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: tokenBucket,
    },
    ownTokenBucketPolicy: {
      Sid: 'OwnTokenBucketPolicy',
      Effect: 'Allow',
      Action: ['s3:GetBucketPolicy', 's3:PutBucketPolicy'],
      Resource: tokenBucket,
    },
    /** The only "*" a minter role has: the IAM list APIs take no resource. */
    checkPrincipals: {
      Sid: 'CheckPrincipals',
      Effect: 'Allow',
      Action: ['iam:ListRoles', 'iam:ListUsers'],
      Resource: '*',
    },
    signWithRoot: {
      Sid: 'SignWithRoot',
      Effect: 'Allow',
      Action: ['kms:GetPublicKey', 'kms:Sign'],
      Resource: r(minter.signingKey.keyArn),
    },
  };
}
