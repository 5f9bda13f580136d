/**
 * RegistryTokenMinter at synth time: targeted template assertions on what each resource must
 * (and must not) be. The function's IAM statements are compared exactly, so any added
 * permission fails here first.
 */

import { describe, expect, it } from '@jest/globals';
import {
  Duration,
  aws_iam as iam,
  aws_kms as kms,
  type Stack,
  aws_s3 as s3,
  aws_sns as sns,
} from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { RegistryTokenMinter, serviceNameOf } from '../../infra/minter.js';
import { type CfnJson, synth } from '../helpers/cdk.js';
import { minterStatements, rolePolicies } from '../helpers/iam-statements.js';

/**
 * The CDK key-admin actions (aws-kms ADMIN_ACTIONS): management, no signing. Sorted, as the
 * feature flag @aws-cdk/aws-iam:minimizePolicies (cdk.json) writes every statement's lists.
 */
const KEY_ADMIN_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:Create*',
  'kms:Delete*',
  'kms:Describe*',
  'kms:Disable*',
  'kms:Enable*',
  'kms:Get*',
  'kms:List*',
  'kms:Put*',
  'kms:Revoke*',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:Update*',
];

function build(
  props: ConstructorParameters<typeof RegistryTokenMinter>[2] = { minTokenTtl: Duration.hours(12) },
  extra?: (stack: Stack) => Partial<ConstructorParameters<typeof RegistryTokenMinter>[2]>,
) {
  let minter: RegistryTokenMinter | undefined;
  const { stack, template } = synth((s) => {
    minter = new RegistryTokenMinter(s, 'Minter', { ...props, ...extra?.(s) });
  });
  if (!minter) throw new Error('not built');
  const r = (v: unknown) => stack.resolve(v);
  return { stack, template, minter, r };
}

/** The one resource of `type` whose logical id starts with `prefix`. */
function only(template: Template, type: string, prefix = ''): { id: string; props: CfnJson } {
  const found = Object.entries(template.findResources(type)).filter(([id]) =>
    id.startsWith(prefix),
  );
  expect(found).toHaveLength(1);
  const [id, resource] = found[0] as [string, { Properties: unknown }];
  return { id, props: resource.Properties };
}

/** The statements of the function role's policy (its one policy). */
function functionStatements(template: Template, r: (v: unknown) => unknown, role: iam.Role) {
  const policies = rolePolicies(template, r(role.roleName));
  expect(policies).toHaveLength(1);
  return policies[0];
}

describe('RegistryTokenMinter with defaults', () => {
  const { template, minter, r, stack } = build();
  const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
  const tokenBucketId = stack.getLogicalId(minter.tokenBucket.node.defaultChild as s3.CfnBucket);
  const configBucketId = stack.getLogicalId(minter.configBucket.node.defaultChild as s3.CfnBucket);

  it('token bucket: Block Public Access, bucket owner enforced, SSE-S3, unversioned, retained', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
          ],
        },
        VersioningConfiguration: Match.absent(),
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'token-bucket/' }),
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    expect(template.toJSON().Resources[tokenBucketId].Properties.VersioningConfiguration).toBe(
      undefined,
    );
  });

  it('token bucket: CDK defines no bucket policy for it (the function owns that policy)', () => {
    const onTokenBucket = Object.values(template.findResources('AWS::S3::BucketPolicy')).filter(
      (p) =>
        JSON.stringify((p as { Properties: { Bucket: unknown } }).Properties.Bucket) ===
        JSON.stringify({ Ref: tokenBucketId }),
    );
    expect(onTokenBucket).toEqual([]);
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  it('config bucket: versioned, private, TLS only, retained', () => {
    expect(template.toJSON().Resources[configBucketId]).toMatchObject({
      Properties: {
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      },
      DeletionPolicy: 'Retain',
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: configBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('signing key: ECC_NIST_P256 for SIGN_VERIFY, retained; only the function may sign', () => {
    const key = template.findResources('AWS::KMS::Key');
    expect(Object.keys(key)).toHaveLength(1);
    const resource = Object.values(key)[0] as { Properties: CfnJson; DeletionPolicy: string };
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(resource.Properties.KeySpec).toBe('ECC_NIST_P256');
    expect(resource.Properties.KeyUsage).toBe('SIGN_VERIFY');
    const role = r(minter.role.roleArn);
    expect(resource.Properties.KeyPolicy.Statement).toEqual([
      {
        // Named administrators only, never the account: here the CDK deployment role.
        Sid: 'KeyAdministration',
        Effect: 'Allow',
        Principal: {
          AWS: {
            'Fn::Sub':
              // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's placeholders
              'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-hnb659fds-cfn-exec-role-${AWS::AccountId}-${AWS::Region}',
          },
        },
        Action: KEY_ADMIN_ACTIONS,
        Resource: '*',
      },
      {
        // The account as principal, the function in the condition: a Principal naming a role
        // created in the same deployment can fail KMS's principal check.
        Sid: 'MinterSigns',
        Effect: 'Allow',
        Principal: { AWS: r(new iam.AccountRootPrincipal().arn) },
        Action: ['kms:GetPublicKey', 'kms:Sign'],
        Resource: '*',
        Condition: { ArnEquals: { 'aws:PrincipalArn': role } },
      },
      {
        Sid: 'NobodyElseSigns',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'kms:Sign',
        Resource: '*',
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': role } },
      },
    ]);
  });

  it('function: nodejs22.x on arm64, bundled ESM, 5 minute timeout, no reserved concurrency', () => {
    expect(fn.props).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      Timeout: 300,
      MemorySize: 512,
    });
    expect(fn.props.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('function: every environment variable, each one a setting the runtime reads', () => {
    expect(fn.props.Environment.Variables).toEqual({
      NODE_OPTIONS: '--enable-source-maps',
      REGTOKEN_CONFIG: r(`s3://${minter.configBucket.bucketName}/grants.yaml`),
      REGTOKEN_OUT: r(`s3://${minter.tokenBucket.bucketName}`),
      REGTOKEN_MINTER_ARNS: r(minter.role.roleArn),
      REGTOKEN_SIGNING_KEY: r(`kms:${minter.signingKey.keyArn}`),
      REGTOKEN_LOCK_LEASE: '6m',
      REGTOKEN_SCHEDULE: '1h',
      REGTOKEN_LIFETIME_MARGIN: '5m',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_SERVICE_NAME: serviceNameOf(minter),
      POWERTOOLS_METRICS_NAMESPACE: 'regtoken',
    });
  });

  it('function: logs to its own log group, kept three months', () => {
    const logs = only(template, 'AWS::Logs::LogGroup');
    expect(logs.props.RetentionInDays).toBe(90);
    expect(fn.props.LoggingConfig).toEqual({ LogGroup: { Ref: logs.id } });
  });

  it('function role: assumed by Lambda only, no managed policies', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'lambda.amazonaws.com' },
          },
        ],
      },
      Description: Match.stringLikeRegexp('^regtoken minter'),
      ManagedPolicyArns: Match.absent(),
    });
  });

  it('function role: exactly these statements, "*" only for the IAM list APIs', () => {
    const logGroup = only(template, 'AWS::Logs::LogGroup').id;
    const queue = only(template, 'AWS::SQS::Queue').id;
    const s = minterStatements(minter, r);
    expect(functionStatements(template, r, minter.role)).toEqual([
      s.writeLogs(logGroup),
      {
        Effect: 'Allow',
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Resource: { 'Fn::GetAtt': [queue, 'Arn'] },
      },
      ...s.readGrants,
      {
        Sid: 'WriteTokens',
        Effect: 'Allow',
        Action: ['s3:DeleteObject', 's3:PutObject', 's3:PutObjectTagging'],
        Resource: s.tokens('tokens/*'),
      },
      s.publishTrustAndLock,
      s.listTokens,
      s.ownTokenBucketPolicy,
      s.checkPrincipals,
      s.signWithRoot,
    ]);
  });

  it('schedule: every hour, invoking the function with a DLQ and its own role', () => {
    const schedule = only(template, 'AWS::Scheduler::Schedule');
    const scheduleRole = stack.getLogicalId(
      minter.node.findChild('ScheduleRole').node.defaultChild as iam.CfnRole,
    );
    expect(schedule.props).toMatchObject({
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: r(minter.function.functionArn),
        Input: JSON.stringify({ source: 'regtoken.schedule' }),
        DeadLetterConfig: { Arn: r(minter.deadLetterQueue.queueArn) },
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 },
        RoleArn: { 'Fn::GetAtt': [scheduleRole, 'Arn'] },
      },
    });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ],
      },
    });
  });

  it('S3 notification: ObjectCreated on the grants object only invokes the function', () => {
    const notifications = only(template, 'Custom::S3BucketNotifications');
    expect(notifications.props.BucketName).toEqual({ Ref: configBucketId });
    expect(notifications.props.NotificationConfiguration).toEqual({
      LambdaFunctionConfigurations: [
        {
          Events: ['s3:ObjectCreated:*'],
          Filter: {
            Key: {
              FilterRules: [
                { Name: 'suffix', Value: 'grants.yaml' },
                { Name: 'prefix', Value: 'grants.yaml' },
              ],
            },
          },
          LambdaFunctionArn: r(minter.function.functionArn),
        },
      ],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: r(minter.function.functionArn),
      Principal: 's3.amazonaws.com',
      SourceArn: r(minter.configBucket.bucketArn),
      SourceAccount: { Ref: 'AWS::AccountId' },
    });
  });

  it('failed asynchronous invocations go to an encrypted, TLS-only queue after 2 retries', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: r(minter.function.functionName),
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: r(minter.deadLetterQueue.queueArn) } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ],
      },
    });
  });

  it('alarm: failed runs (Lambda Errors or RunsFailed) in 5 minutes', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(errors, 0) + FILL(failed, 0)', ReturnData: true }),
        {
          Id: 'errors',
          ReturnData: false,
          MetricStat: {
            Metric: {
              Namespace: 'AWS/Lambda',
              MetricName: 'Errors',
              Dimensions: [{ Name: 'FunctionName', Value: r(minter.function.functionName) }],
            },
            Period: 300,
            Stat: 'Sum',
          },
        },
        {
          Id: 'failed',
          ReturnData: false,
          MetricStat: {
            Metric: {
              Namespace: 'regtoken',
              MetricName: 'RunsFailed',
              Dimensions: [{ Name: 'service', Value: serviceNameOf(minter) }],
            },
            Period: 300,
            Stat: 'Sum',
          },
        },
      ]),
    });
  });

  it('alarm: no successful run in two periods, missing data breaching', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'regtoken',
      MetricName: 'RunsSucceeded',
      Dimensions: [{ Name: 'service', Value: serviceNameOf(minter) }],
      Statistic: 'Sum',
      Period: 7200,
      EvaluationPeriods: 1,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
  });

  it('alarm: unknown principals above zero in a schedule period', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'regtoken',
      MetricName: 'UnknownPrincipals',
      Dimensions: [{ Name: 'service', Value: serviceNameOf(minter) }],
      Statistic: 'Maximum',
      Period: 3600,
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      TreatMissingData: 'notBreaching',
    });
  });

  it('alarm: a token lifetime too short for the schedule in a schedule period', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'regtoken',
      MetricName: 'ShortLifetimes',
      Dimensions: [{ Name: 'service', Value: serviceNameOf(minter) }],
      Statistic: 'Maximum',
      Period: 3600,
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      TreatMissingData: 'notBreaching',
    });
  });

  it("alarm: the signing root's certificate within a year of its end", () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'regtoken',
      MetricName: 'RootCertificateDaysLeft',
      Dimensions: [{ Name: 'service', Value: serviceNameOf(minter) }],
      Statistic: 'Minimum',
      Period: 3600,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 365,
      TreatMissingData: 'notBreaching',
    });
  });

  it('alarm: reader accounts S3 refused in the bucket policy in a schedule period', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'regtoken',
      MetricName: 'PolicyAccountsLeftOut',
      Dimensions: [{ Name: 'service', Value: serviceNameOf(minter) }],
      Statistic: 'Maximum',
      Period: 3600,
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      TreatMissingData: 'notBreaching',
    });
    template.resourceCountIs('AWS::CloudWatch::Alarm', 6);
  });

  it('without grantsFile nothing uploads grants', () => {
    template.resourceCountIs('Custom::CDKBucketDeployment', 0);
  });

  it('exposes the locations the docs and outputs use', () => {
    expect(r(minter.trustBundleUrl)).toEqual(
      r(`s3://${minter.tokenBucket.bucketName}/trust/bundle.pem`),
    );
    expect(r(minter.configUrl)).toEqual(r(`s3://${minter.configBucket.bucketName}/grants.yaml`));
  });
});

describe('RegistryTokenMinter options', () => {
  it('tokenPrefix moves every token bucket path and permission under the prefix', () => {
    const { template, minter, r } = build({
      minTokenTtl: Duration.hours(12),
      tokenPrefix: 'reg/prod',
    });
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Environment.Variables.REGTOKEN_OUT).toEqual(
      r(`s3://${minter.tokenBucket.bucketName}/reg/prod`),
    );
    expect(r(minter.trustBundleUrl)).toEqual(
      r(`s3://${minter.tokenBucket.bucketName}/reg/prod/trust/bundle.pem`),
    );
    const statements = functionStatements(template, r, minter.role) as { Sid?: string }[];
    expect(statements.find((s) => s.Sid === 'WriteTokens')).toMatchObject({
      Resource: r(minter.tokenBucket.arnForObjects('reg/prod/tokens/*')),
    });
    expect(statements.find((s) => s.Sid === 'PublishTrustAndLock')).toMatchObject({
      Resource: [
        r(minter.tokenBucket.arnForObjects('reg/prod/state/lock.json')),
        r(minter.tokenBucket.arnForObjects('reg/prod/trust/bundle.pem')),
        r(minter.tokenBucket.arnForObjects('reg/prod/trust/jwks.json')),
      ],
    });
  });

  it('trusted keys: in REGTOKEN_TRUSTED_KEYS, usable by the function, and (own keys) policed', () => {
    let next: kms.Key | undefined;
    let external: kms.IKey | undefined;
    const { template, minter, r } = build(undefined, (s) => {
      next = new kms.Key(s, 'NextRoot', {
        keySpec: kms.KeySpec.ECC_NIST_P256,
        keyUsage: kms.KeyUsage.SIGN_VERIFY,
      });
      external = kms.Key.fromKeyArn(
        s,
        'OldRoot',
        'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      );
      return { minTokenTtl: Duration.hours(12), trustedKeys: [next, external] };
    });
    if (!next || !external) throw new Error('not built');
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Environment.Variables.REGTOKEN_TRUSTED_KEYS).toEqual(
      r(`${next.keyArn},${external.keyArn}`),
    );
    const statements = functionStatements(template, r, minter.role) as { Sid?: string }[];
    expect(statements.find((s) => s.Sid === 'CertifyTrustedRoots')).toEqual({
      Sid: 'CertifyTrustedRoots',
      Effect: 'Allow',
      Action: ['kms:GetPublicKey', 'kms:Sign'],
      Resource: [external.keyArn, r(next.keyArn)],
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: Match.absent(),
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: 'MinterSigns' }),
          Match.objectLike({ Sid: 'NobodyElseSigns', Effect: 'Deny' }),
        ]),
      },
    });
  });

  it('registryStorage: REGTOKEN_REPOSITORIES and a prefix-scoped ListBucket', () => {
    let bucket: s3.IBucket | undefined;
    const { template, minter, r } = build(undefined, (s) => {
      bucket = s3.Bucket.fromBucketName(s, 'Registry', 'registry-storage');
      return { minTokenTtl: Duration.hours(12), registryStorage: { bucket, prefix: 'v2root' } };
    });
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Environment.Variables.REGTOKEN_REPOSITORIES).toBe(
      's3://registry-storage/v2root',
    );
    const statements = functionStatements(template, r, minter.role) as { Sid?: string }[];
    expect(statements.find((s) => s.Sid === 'ListRepositories')).toEqual({
      Sid: 'ListRepositories',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: r(bucket?.bucketArn),
      Condition: { StringLike: { 's3:prefix': 'v2root/docker/registry/v2/repositories/*' } },
    });
  });

  it('additionalMinters join the function role in REGTOKEN_MINTER_ARNS', () => {
    const { template, minter, r } = build(undefined, (s) => ({
      minTokenTtl: Duration.hours(12),
      additionalMinters: [
        iam.Role.fromRoleArn(s, 'BreakGlass', 'arn:aws:iam::111122223333:role/ops/break-glass'),
        iam.User.fromUserArn(s, 'Admin', 'arn:aws:iam::111122223333:user/admin'),
      ],
    }));
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Environment.Variables.REGTOKEN_MINTER_ARNS).toEqual(
      r(
        `${minter.role.roleArn},arn:aws:iam::111122223333:role/ops/break-glass,arn:aws:iam::111122223333:user/admin`,
      ),
    );
  });

  it('alarmTopic: every alarm notifies on alarm and on recovery', () => {
    const { template } = build(undefined, (s) => ({
      minTokenTtl: Duration.hours(12),
      alarmTopic: new sns.Topic(s, 'Topic'),
    }));
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { AlarmActions: unknown[]; OKActions: unknown[] };
    }[];
    expect(alarms).toHaveLength(6);
    // The topic lets CloudWatch publish (its policy replaces SNS's default one).
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Sid: 'CloudWatchAlarmsOfThisAccount',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
          }),
        ],
      },
    });
    for (const a of alarms) {
      expect(a.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^Topic/) }]);
      expect(a.Properties.OKActions).toEqual([{ Ref: expect.stringMatching(/^Topic/) }]);
    }
  });

  it('timeout sets the function timeout, a lease one minute longer and the lifetime margin', () => {
    const { template } = build({
      minTokenTtl: Duration.hours(12),
      timeout: Duration.minutes(15),
    });
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Timeout).toBe(900);
    expect(fn.props.Environment.Variables.REGTOKEN_LOCK_LEASE).toBe('16m');
    expect(fn.props.Environment.Variables.REGTOKEN_LIFETIME_MARGIN).toBe('15m');
  });

  it('schedule sets the rate and the alarm periods', () => {
    const { template } = build({
      minTokenTtl: Duration.hours(12),
      schedule: Duration.minutes(30),
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(30 minutes)',
      Target: Match.objectLike({
        RetryPolicy: Match.objectLike({ MaximumEventAgeInSeconds: 1800 }),
      }),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'RunsSucceeded',
      Period: 3600,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'UnknownPrincipals',
      Period: 1800,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ShortLifetimes',
      Period: 1800,
    });
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Environment.Variables.REGTOKEN_SCHEDULE).toBe('30m');
  });

  it('configKey and logLevel are passed through', () => {
    const { template, minter, r } = build({
      minTokenTtl: Duration.hours(12),
      configKey: 'registry/grants.yaml',
      logLevel: 'DEBUG',
    });
    const fn = only(template, 'AWS::Lambda::Function', 'MinterFunction');
    expect(fn.props.Environment.Variables).toMatchObject({
      REGTOKEN_CONFIG: r(`s3://${minter.configBucket.bucketName}/registry/grants.yaml`),
      POWERTOOLS_LOG_LEVEL: 'DEBUG',
    });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          Match.objectLike({
            Filter: {
              Key: {
                FilterRules: [
                  { Name: 'suffix', Value: 'registry/grants.yaml' },
                  { Name: 'prefix', Value: 'registry/grants.yaml' },
                ],
              },
            },
          }),
        ],
      },
    });
  });

  it.each([
    [{ tokenPrefix: 'a/*' }, 'tokenPrefix "a/*" must be'],
    [{ tokenPrefix: '/a' }, 'tokenPrefix "/a" must be'],
    [{ configKey: 'grants*.yaml' }, 'configKey "grants*.yaml" must be an S3 key'],
    [{ schedule: Duration.seconds(90) }, 'schedule must be whole minutes, at least 1 minute'],
    [{ timeout: Duration.minutes(16) }, 'timeout must be at most 15 minutes'],
  ])('rejects %p', (props, message) => {
    expect(() => build({ minTokenTtl: Duration.hours(12), ...props })).toThrow(message);
  });
});
