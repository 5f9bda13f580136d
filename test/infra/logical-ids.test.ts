/**
 * The logical ID of every resource the stack deploys, as a table. CloudFormation identifies a
 * resource by its logical ID: a changed ID replaces the resource. For the retained buckets and
 * KMS keys that means the old ones are orphaned (with every token, grants version and the
 * signing root) and new, empty ones take their place. Refactoring the construct (it is built
 * from parts in infra/minter/, all in its own scope) must leave every ID as it is; a change
 * here has to be deliberate, with a migration in docs/deploy.md.
 */

import { describe, expect, it } from '@jest/globals';
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RegistryTokenMinter } from '../../infra/minter.js';
import { RegtokenStack } from '../../infra/stack.js';
import { newApp, ROOT } from '../helpers/cdk.js';

function resources(stack: Stack): string[] {
  const template = Template.fromStack(stack).toJSON() as {
    Resources: Record<string, { Type: string }>;
  };
  return Object.entries(template.Resources)
    .map(([id, r]) => `${id} ${r.Type}`)
    .sort();
}

/** The minter's own resources and CDK's stack-level helpers, in both cases below. */
const MINTER = [
  'BucketNotificationsHandler050a0587b7544547bf325f094a3db8347ECC3691 AWS::Lambda::Function',
  'BucketNotificationsHandler050a0587b7544547bf325f094a3db834RoleB6FB88EC AWS::IAM::Role',
  'MinterAccessLogsE4FB3AD9 AWS::S3::Bucket',
  'MinterAccessLogsPolicy1B60F364 AWS::S3::BucketPolicy',
  'MinterConfigBucket38D0E0F9 AWS::S3::Bucket',
  'MinterConfigBucketNotifications66019A28 Custom::S3BucketNotifications',
  'MinterConfigBucketNotificationsHandlerPolicy1A519892 AWS::IAM::Policy',
  'MinterConfigBucketPolicy851B7E9A AWS::S3::BucketPolicy',
  'MinterFailedInvocations2C4A2BBC AWS::SQS::Queue',
  'MinterFailedInvocationsPolicyF5C79DF6 AWS::SQS::QueuePolicy',
  'MinterFailedRunsAlarm26BDCF8A AWS::CloudWatch::Alarm',
  'MinterFunctionD2A57B74 AWS::Lambda::Function',
  'MinterFunctionEventInvokeConfigCC7089ED AWS::Lambda::EventInvokeConfig',
  'MinterLogs72C5F197 AWS::Logs::LogGroup',
  'MinterNoSuccessfulRunAlarm54C54488 AWS::CloudWatch::Alarm',
  'MinterPolicyAccountsLeftOutAlarmD22FE1D9 AWS::CloudWatch::Alarm',
  'MinterRoleC6B61636 AWS::IAM::Role',
  'MinterRoleDefaultPolicyD3F84CDB AWS::IAM::Policy',
  'MinterRootCertificateExpiringAlarm509AEEC4 AWS::CloudWatch::Alarm',
  'MinterSchedule552A0B03 AWS::Scheduler::Schedule',
  'MinterScheduleRole4D207AB0 AWS::IAM::Role',
  'MinterScheduleRoleDefaultPolicy9362877F AWS::IAM::Policy',
  'MinterShortLifetimesAlarmC190D22C AWS::CloudWatch::Alarm',
  'MinterTokenBucketD2F40F8B AWS::S3::Bucket',
  'MinterUnknownPrincipalsAlarm9C49F91D AWS::CloudWatch::Alarm',
];

describe('logical IDs', () => {
  it('of RegtokenStack with every option', () => {
    const stack = new RegtokenStack(newApp(), 'Regtoken', {
      grantsFile: `${ROOT}examples/grants.yaml`,
      schedule: Duration.minutes(20),
      rootKeys: ['1', '2'],
      signingKey: '2',
      alarmEmail: 'ops@example.com',
      githubRepository: 'acme/config',
      registryBucket: 'registry-storage',
      additionalMinterArns: ['arn:aws:iam::111122223333:role/breakglass'],
    });
    expect(resources(stack)).toEqual(
      [
        ...MINTER,
        'Alarms04B5A0BF AWS::SNS::Topic',
        'AlarmsPolicy5C860CFE AWS::SNS::TopicPolicy',
        'Alarmsopsexamplecom5486E8DD AWS::SNS::Subscription',
        'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C81C01536 AWS::Lambda::Function',
        'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756CLogGroup817B64E9 AWS::Logs::LogGroup',
        'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756CServiceRole89A01265 AWS::IAM::Role',
        'CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756CServiceRoleDefaultPolicy88902FDF AWS::IAM::Policy',
        'GitHubPlanRole4195A234 AWS::IAM::Role',
        'GitHubPlanRoleDefaultPolicy118CE694 AWS::IAM::Policy',
        'GitHubProviderE571E8F1 AWS::IAM::OIDCProvider',
        'GitHubUploadRole63D5FA2A AWS::IAM::Role',
        'GitHubUploadRoleDefaultPolicy0979A1B4 AWS::IAM::Policy',
        'MinterConfigBucketAllowBucketNotificationsToRegtokenMinterFunctionD06246F3453525C1 AWS::Lambda::Permission',
        'MinterGrantsAwsCliLayer125E760F AWS::Lambda::LayerVersion',
        'MinterGrantsCustomResource03608D9F Custom::CDKBucketDeployment',
        'RootKey1F4B28807 AWS::KMS::Key',
        'RootKey22E5F768D AWS::KMS::Key',
      ].sort(),
    );
  });

  it('of a RegistryTokenMinter that makes its own signing key', () => {
    const stack = new Stack(newApp(), 'Test');
    new RegistryTokenMinter(stack, 'Minter', { minTokenTtl: Duration.hours(12) });
    expect(resources(stack)).toEqual(
      [
        ...MINTER,
        'MinterConfigBucketAllowBucketNotificationsToTestMinterFunction1E1015C1603BE830 AWS::Lambda::Permission',
        'MinterSigningKey8D4A4A12 AWS::KMS::Key',
      ].sort(),
    );
  });
});
