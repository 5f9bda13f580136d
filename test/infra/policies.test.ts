/**
 * The resource policies of the deployed stack, evaluated by an independent IAM evaluator
 * (@cloud-copilot/iam-simulate) rather than read: the alarm topic's policy, the signing roots'
 * key policies, the config, access-log and token-reads trail bucket policies, and the token bucket policy the
 * function writes (built from the function's own settings in the template). Each table row is
 * one request and the decision AWS must make; a row is what to extend when a policy changes.
 *
 * The stack is synthesized in a concrete account and region, and its intrinsic functions
 * resolved (test/helpers/cfn.ts), so the policies are the documents CloudFormation would create.
 */

import { describe, expect, it } from '@jest/globals';
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RegtokenStack } from '../../infra/stack.js';
import { buildTokenBucketPolicy } from '../../lambda/core/policy.js';
import { newApp } from '../helpers/cdk.js';
import { ResolvedTemplate } from '../helpers/cfn.js';
import { allow, type Decision, decide, decideS3 } from '../helpers/iam-eval.js';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const REGION = 'eu-west-1';

const stack = new RegtokenStack(newApp(), 'Regtoken', {
  env: { account: ACCOUNT, region: REGION },
  minTokenTtl: Duration.hours(12),
  rootKeys: ['1', '2'],
  signingKey: '1',
  keyAdminRoleArn: `arn:aws:iam::${ACCOUNT}:role/KeyAdmins`,
  alarmEmail: 'ops@example.com',
  githubRepository: 'my-org/registry-grants',
  recordTokenReads: true,
});
const t = new ResolvedTemplate(Template.fromStack(stack).toJSON(), {
  account: ACCOUNT,
  region: REGION,
});

/** A role's session as AWS sees it: the session ARN asks, aws:PrincipalArn is the role. */
function session(roleArn: string, identityPolicies: unknown[] = []) {
  const [, , , , account, resource] = roleArn.split(':') as string[];
  const name = (resource as string).split('/').at(-1);
  return {
    principal: `arn:aws:sts::${account}:assumed-role/${name}/session`,
    principalArn: roleArn,
    identityPolicies,
  };
}

const minterRole = t.only('AWS::IAM::Role', 'MinterRole').id;
const minter = session(t.physical(minterRole).attributes.Arn as string, t.rolePolicies(minterRole));
const admin = session(`arn:aws:iam::${ACCOUNT}:role/Admin`, [allow('*', '*')]);
const otherAdmin = session(`arn:aws:iam::${OTHER}:role/Admin`, [allow('*', '*')]);
const noPolicies = session(`arn:aws:iam::${ACCOUNT}:role/web/ec2-web`);
/** PowerUserAccess as AWS ships it: every action but IAM, Organizations and Account. */
const powerUser = session(`arn:aws:iam::${ACCOUNT}:role/PowerUser`, [
  {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        NotAction: ['iam:*', 'organizations:*', 'account:*'],
        Resource: '*',
      },
    ],
  },
]);
/** The CDK bootstrap's CloudFormation execution role (AdministratorAccess by default). */
const deployer = session(
  `arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-${REGION}`,
  [allow('*', '*')],
);
/** The named key administrator (keyAdminRoleArn), with no identity policy of its own. */
const keyAdmin = session(`arn:aws:iam::${ACCOUNT}:role/KeyAdmins`);

describe('the alarm topic policy (alarmEmail)', () => {
  const topic = t.only('AWS::SNS::Topic').id;
  const topicArn = t.physical(topic).ref;
  const policy = t.resolve(t.only('AWS::SNS::TopicPolicy').properties.PolicyDocument);
  const alarm = (account: string, region = REGION) =>
    `arn:aws:cloudwatch:${region}:${account}:alarm:regtoken-failed-runs`;

  it.each<[string, string | undefined, Record<string, string>, unknown[], Decision]>([
    [
      'CloudWatch, for an alarm of this account',
      'cloudwatch.amazonaws.com',
      { 'aws:SourceAccount': ACCOUNT, 'aws:SourceArn': alarm(ACCOUNT) },
      [],
      'Allowed',
    ],
    [
      'CloudWatch, for an alarm of another account',
      'cloudwatch.amazonaws.com',
      { 'aws:SourceAccount': OTHER, 'aws:SourceArn': alarm(OTHER) },
      [],
      'ImplicitlyDenied',
    ],
    [
      'CloudWatch, claiming this account for another account’s alarm',
      'cloudwatch.amazonaws.com',
      { 'aws:SourceAccount': ACCOUNT, 'aws:SourceArn': alarm(OTHER) },
      [],
      'ImplicitlyDenied',
    ],
    [
      'CloudWatch, for an alarm of this account in another region',
      'cloudwatch.amazonaws.com',
      { 'aws:SourceAccount': ACCOUNT, 'aws:SourceArn': alarm(ACCOUNT, 'us-east-1') },
      [],
      'ImplicitlyDenied',
    ],
    [
      'CloudWatch, over plain HTTP',
      'cloudwatch.amazonaws.com',
      {
        'aws:SourceAccount': ACCOUNT,
        'aws:SourceArn': alarm(ACCOUNT),
        'aws:SecureTransport': 'false',
      },
      [],
      'ExplicitlyDenied',
    ],
    [
      'another service, for this account',
      'events.amazonaws.com',
      {
        'aws:SourceAccount': ACCOUNT,
        'aws:SourceArn': `arn:aws:events:${REGION}:${ACCOUNT}:rule/x`,
      },
      [],
      'ImplicitlyDenied',
    ],
    ['anyone, anonymously', undefined, {}, [], 'ImplicitlyDenied'],
    [
      "another account's administrator",
      otherAdmin.principal,
      { 'aws:PrincipalArn': otherAdmin.principalArn },
      otherAdmin.identityPolicies,
      'ImplicitlyDenied',
    ],
    [
      "this account's administrator (its identity policy suffices in its own account)",
      admin.principal,
      { 'aws:PrincipalArn': admin.principalArn },
      admin.identityPolicies,
      'Allowed',
    ],
    [
      "this account's administrator over plain HTTP",
      admin.principal,
      { 'aws:PrincipalArn': admin.principalArn, 'aws:SecureTransport': 'false' },
      admin.identityPolicies,
      'ExplicitlyDenied',
    ],
  ])('sns:Publish by %s: %#', async (_, principal, context, identityPolicies, expected) => {
    expect(
      await decide({
        ...(principal ? { principal } : {}),
        action: 'sns:Publish',
        resource: topicArn,
        resourceAccount: ACCOUNT,
        resourcePolicy: policy,
        identityPolicies,
        context: { 'aws:SecureTransport': 'true', ...context },
      }),
    ).toBe(expected);
  });
});

describe('the signing roots’ key policies', () => {
  const keys = t.idsOf('AWS::KMS::Key');

  it('exist for each root label', () => {
    expect(keys).toHaveLength(2);
  });

  it.each<[string, ReturnType<typeof session>, string, Decision]>([
    ['the function signs', minter, 'kms:Sign', 'Allowed'],
    ['the function reads the public key', minter, 'kms:GetPublicKey', 'Allowed'],
    ['the function cannot change the key policy', minter, 'kms:PutKeyPolicy', 'ImplicitlyDenied'],
    ['the function cannot create a grant', minter, 'kms:CreateGrant', 'ImplicitlyDenied'],
    ['the function cannot delete the key', minter, 'kms:ScheduleKeyDeletion', 'ImplicitlyDenied'],
    [
      'a PowerUser role cannot change the key policy',
      powerUser,
      'kms:PutKeyPolicy',
      'ImplicitlyDenied',
    ],
    ['a PowerUser role cannot create a grant', powerUser, 'kms:CreateGrant', 'ImplicitlyDenied'],
    ['a PowerUser role cannot sign', powerUser, 'kms:Sign', 'ExplicitlyDenied'],
    [
      'a PowerUser role cannot delete the key',
      powerUser,
      'kms:ScheduleKeyDeletion',
      'ImplicitlyDenied',
    ],
    ['an account administrator cannot sign', admin, 'kms:Sign', 'ExplicitlyDenied'],
    [
      'an account administrator cannot change the key policy',
      admin,
      'kms:PutKeyPolicy',
      'ImplicitlyDenied',
    ],
    [
      'an account administrator cannot create a grant',
      admin,
      'kms:CreateGrant',
      'ImplicitlyDenied',
    ],
    ['the deployment role changes the key policy', deployer, 'kms:PutKeyPolicy', 'Allowed'],
    ['the deployment role schedules deletion', deployer, 'kms:ScheduleKeyDeletion', 'Allowed'],
    ['the deployment role cannot sign', deployer, 'kms:Sign', 'ExplicitlyDenied'],
    ['the key administrator changes the key policy', keyAdmin, 'kms:PutKeyPolicy', 'Allowed'],
    ['the key administrator creates a grant', keyAdmin, 'kms:CreateGrant', 'Allowed'],
    ['the key administrator schedules deletion', keyAdmin, 'kms:ScheduleKeyDeletion', 'Allowed'],
    ['the key administrator cannot sign', keyAdmin, 'kms:Sign', 'ExplicitlyDenied'],
    ['a role without a KMS permission cannot sign', noPolicies, 'kms:Sign', 'ExplicitlyDenied'],
    ["another account's administrator cannot sign", otherAdmin, 'kms:Sign', 'ExplicitlyDenied'],
    [
      "another account's administrator cannot manage the key",
      otherAdmin,
      'kms:ScheduleKeyDeletion',
      'ImplicitlyDenied',
    ],
  ])('%s', async (_, who, action, expected) => {
    for (const key of keys) {
      const decision = await decide({
        principal: who.principal,
        action,
        resource: t.physical(key).attributes.Arn as string,
        resourceAccount: ACCOUNT,
        resourcePolicy: t.resolve(t.template.Resources[key].Properties.KeyPolicy),
        identityPolicies: who.identityPolicies,
        context: { 'aws:PrincipalArn': who.principalArn },
      });
      expect({ key, decision }).toEqual({ key, decision: expected });
    }
  });
});

describe('the config bucket policy', () => {
  const bucket = t.physical(t.only('AWS::S3::Bucket', 'MinterConfigBucket').id).ref;
  const policy = t.resolve(
    t.only('AWS::S3::BucketPolicy', 'MinterConfigBucketPolicy').properties.PolicyDocument,
  );
  const plan = session(
    t.physical(t.only('AWS::IAM::Role', 'GitHubPlanRole').id).attributes.Arn as string,
    t.rolePolicies(t.only('AWS::IAM::Role', 'GitHubPlanRole').id),
  );
  const upload = session(
    t.physical(t.only('AWS::IAM::Role', 'GitHubUploadRole').id).attributes.Arn as string,
    t.rolePolicies(t.only('AWS::IAM::Role', 'GitHubUploadRole').id),
  );

  it.each<
    [string, ReturnType<typeof session> | undefined, string, string | undefined, boolean, Decision]
  >([
    ['the plan role reads the grants', plan, 's3:GetObject', 'grants.yaml', true, 'Allowed'],
    [
      'the plan role sees that no grants exist yet',
      plan,
      's3:ListBucket',
      undefined,
      true,
      'Allowed',
    ],
    ['the plan role cannot upload', plan, 's3:PutObject', 'grants.yaml', true, 'ImplicitlyDenied'],
    ['the upload role uploads the grants', upload, 's3:PutObject', 'grants.yaml', true, 'Allowed'],
    [
      'the upload role writes nothing else',
      upload,
      's3:PutObject',
      'other.yaml',
      true,
      'ImplicitlyDenied',
    ],
    [
      'the upload role cannot read',
      upload,
      's3:GetObject',
      'grants.yaml',
      true,
      'ImplicitlyDenied',
    ],
    ['the function reads the grants', minter, 's3:GetObject', 'grants.yaml', true, 'Allowed'],
    [
      'the function cannot write them',
      minter,
      's3:PutObject',
      'grants.yaml',
      true,
      'ImplicitlyDenied',
    ],
    ['nobody over plain HTTP', plan, 's3:GetObject', 'grants.yaml', false, 'ExplicitlyDenied'],
    ['not anonymously', undefined, 's3:GetObject', 'grants.yaml', true, 'ImplicitlyDenied'],
    [
      "not another account's administrator",
      otherAdmin,
      's3:GetObject',
      'grants.yaml',
      true,
      'ImplicitlyDenied',
    ],
  ])('%s', async (_, who, action, key, secureTransport, expected) => {
    expect(
      await decideS3({
        bucketPolicy: policy,
        bucket,
        bucketAccount: ACCOUNT,
        ...(who ?? {}),
        action,
        ...(key ? { key } : {}),
        secureTransport,
      }),
    ).toBe(expected);
  });
});

describe('the access-log bucket policy', () => {
  const bucket = t.physical(t.only('AWS::S3::Bucket', 'MinterAccessLogs').id).ref;
  const policy = t.resolve(
    t.only('AWS::S3::BucketPolicy', 'MinterAccessLogsPolicy').properties.PolicyDocument,
  );
  const configArn = t.physical(t.only('AWS::S3::Bucket', 'MinterConfigBucket').id).attributes
    .Arn as string;
  const tokenArn = t.physical(t.only('AWS::S3::Bucket', 'MinterTokenBucket').id).attributes
    .Arn as string;

  it.each<[string, string, string, string, boolean, Decision]>([
    [
      'S3 logging, for the config bucket',
      'config-bucket/2026-11-30-04-00-00-ABC',
      configArn,
      ACCOUNT,
      true,
      'Allowed',
    ],
    [
      'S3 logging, for the token bucket',
      'token-bucket/2026-11-30-04-00-00-ABC',
      tokenArn,
      ACCOUNT,
      true,
      'Allowed',
    ],
    [
      'S3 logging, for a bucket of another account',
      'config-bucket/x',
      'arn:aws:s3:::someone-else',
      OTHER,
      true,
      'ImplicitlyDenied',
    ],
    [
      'S3 logging, for another bucket of this account',
      'config-bucket/x',
      'arn:aws:s3:::unrelated',
      ACCOUNT,
      true,
      'ImplicitlyDenied',
    ],
    [
      'S3 logging, over plain HTTP',
      'config-bucket/x',
      configArn,
      ACCOUNT,
      false,
      'ExplicitlyDenied',
    ],
  ])('s3:PutObject by %s', async (_, key, sourceArn, sourceAccount, secureTransport, expected) => {
    expect(
      await decideS3({
        bucketPolicy: policy,
        bucket,
        bucketAccount: ACCOUNT,
        principal: 'logging.s3.amazonaws.com',
        action: 's3:PutObject',
        key,
        secureTransport,
        context: { 'aws:SourceArn': sourceArn, 'aws:SourceAccount': sourceAccount },
      }),
    ).toBe(expected);
  });
});

describe('the token-reads trail bucket policy (recordTokenReads)', () => {
  const trailId = t.only('AWS::CloudTrail::Trail').id;
  const trail = t.template.Resources[trailId].Properties;
  const bucket = t.resolve(trail.S3BucketName) as string;
  const policy = t.resolve(
    t.only('AWS::S3::BucketPolicy', 'MinterTokenReadsBucketPolicy').properties.PolicyDocument,
  );
  const thisTrail = `arn:aws:cloudtrail:${REGION}:${ACCOUNT}:trail/${trail.TrailName}`;
  const logKey = (account: string) =>
    `AWSLogs/${account}/CloudTrail/${REGION}/2026/11/30/${account}_CloudTrail_${REGION}_x.json.gz`;

  it.each<[string, string | undefined, string, string, Record<string, string>, Decision]>([
    [
      'this trail delivers its log files',
      'cloudtrail.amazonaws.com',
      's3:PutObject',
      logKey(ACCOUNT),
      { 'aws:SourceArn': thisTrail, 's3:x-amz-acl': 'bucket-owner-full-control' },
      'Allowed',
    ],
    [
      'this trail checks the bucket ACL',
      'cloudtrail.amazonaws.com',
      's3:GetBucketAcl',
      '',
      { 'aws:SourceArn': thisTrail },
      'Allowed',
    ],
    [
      'another trail of this account cannot deliver here',
      'cloudtrail.amazonaws.com',
      's3:PutObject',
      logKey(ACCOUNT),
      {
        'aws:SourceArn': `arn:aws:cloudtrail:${REGION}:${ACCOUNT}:trail/other`,
        's3:x-amz-acl': 'bucket-owner-full-control',
      },
      'ExplicitlyDenied',
    ],
    [
      "another account's trail cannot deliver here, even under this account's prefix",
      'cloudtrail.amazonaws.com',
      's3:PutObject',
      logKey(ACCOUNT),
      {
        'aws:SourceArn': `arn:aws:cloudtrail:${REGION}:${OTHER}:trail/${trail.TrailName}`,
        's3:x-amz-acl': 'bucket-owner-full-control',
      },
      'ExplicitlyDenied',
    ],
    [
      'this trail, outside its account prefix',
      'cloudtrail.amazonaws.com',
      's3:PutObject',
      logKey(OTHER),
      { 'aws:SourceArn': thisTrail, 's3:x-amz-acl': 'bucket-owner-full-control' },
      'ImplicitlyDenied',
    ],
    [
      'this trail, over plain HTTP',
      'cloudtrail.amazonaws.com',
      's3:PutObject',
      logKey(ACCOUNT),
      {
        'aws:SourceArn': thisTrail,
        's3:x-amz-acl': 'bucket-owner-full-control',
        'aws:SecureTransport': 'false',
      },
      'ExplicitlyDenied',
    ],
    ['anyone, anonymously', undefined, 's3:GetObject', logKey(ACCOUNT), {}, 'ImplicitlyDenied'],
    [
      "another account's administrator cannot read the record",
      otherAdmin.principal,
      's3:GetObject',
      logKey(ACCOUNT),
      { 'aws:PrincipalArn': otherAdmin.principalArn },
      'ImplicitlyDenied',
    ],
  ])('%s', async (_, principal, action, key, context, expected) => {
    expect(
      await decideS3({
        bucketPolicy: policy,
        bucket,
        bucketAccount: ACCOUNT,
        ...(principal ? { principal } : {}),
        ...(principal === otherAdmin.principal
          ? { identityPolicies: otherAdmin.identityPolicies }
          : {}),
        action,
        ...(key ? { key } : {}),
        secureTransport: context['aws:SecureTransport'] !== 'false',
        context,
      }),
    ).toBe(expected);
  });
});

describe('the token bucket policy the function writes', () => {
  const fn = t.only('AWS::Lambda::Function', 'MinterFunction').properties;
  const env = t.resolve(fn.Environment.Variables) as Record<string, string>;
  const bucket = (env.REGTOKEN_OUT as string).replace('s3://', '');
  const policy = buildTokenBucketPolicy({
    bucket,
    prefix: '',
    partition: 'aws',
    readerAccounts: [ACCOUNT, OTHER],
    minterArns: (env.REGTOKEN_MINTER_ARNS as string).split(','),
  });
  const ownKey = `tokens/${ACCOUNT}/role/web/ec2-web.json`;
  const reader = session(`arn:aws:iam::${ACCOUNT}:role/web/ec2-web`, [
    allow('s3:GetObject', `arn:aws:s3:::${bucket}/tokens/*`),
  ]);

  it('names the function role as the minter', () => {
    expect(env.REGTOKEN_MINTER_ARNS).toBe(minter.principalArn);
  });

  it.each<
    [string, ReturnType<typeof session>, string, string | undefined, string | undefined, Decision]
  >([
    ['the function writes a token', minter, 's3:PutObject', ownKey, undefined, 'Allowed'],
    ['the function deletes a token', minter, 's3:DeleteObject', ownKey, undefined, 'Allowed'],
    [
      'a reader reads its own token',
      reader,
      's3:GetObject',
      ownKey,
      reader.principalArn,
      'Allowed',
    ],
    [
      "a reader cannot read another's token",
      reader,
      's3:GetObject',
      ownKey,
      'arn:aws:iam::111122223333:role/ci',
      'ExplicitlyDenied',
    ],
    [
      'an administrator cannot read a token',
      admin,
      's3:GetObject',
      ownKey,
      reader.principalArn,
      'ExplicitlyDenied',
    ],
    // What blocks emptying the bucket by hand (docs/deploy.md, "Retiring a deployment").
    [
      'an administrator cannot delete a token',
      admin,
      's3:DeleteObject',
      ownKey,
      undefined,
      'ExplicitlyDenied',
    ],
    [
      'an administrator cannot list the bucket',
      admin,
      's3:ListBucket',
      undefined,
      undefined,
      'ExplicitlyDenied',
    ],
    [
      'an administrator can delete the bucket policy',
      admin,
      's3:DeleteBucketPolicy',
      undefined,
      undefined,
      'Allowed',
    ],
    [
      'an administrator can delete the bucket (once empty)',
      admin,
      's3:DeleteBucket',
      undefined,
      undefined,
      'Allowed',
    ],
  ])('%s', async (_, who, action, key, ownerTag, expected) => {
    expect(
      await decideS3({
        bucketPolicy: policy,
        bucket,
        bucketAccount: ACCOUNT,
        ...who,
        action,
        ...(key ? { key } : {}),
        ...(ownerTag ? { ownerTag } : {}),
      }),
    ).toBe(expected);
  });

  it('without the policy (deleted by an administrator), the administrator empties the bucket', async () => {
    for (const action of ['s3:ListBucket', 's3:DeleteObject'])
      expect(
        await decideS3({
          bucketPolicy: undefined,
          bucket,
          bucketAccount: ACCOUNT,
          ...admin,
          action,
          ...(action === 's3:DeleteObject' ? { key: ownKey } : {}),
        }),
      ).toBe('Allowed');
  });
});
