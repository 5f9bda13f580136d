/**
 * The S3 notification and the grants upload run on CDK's own singleton functions at stack
 * level (deploy-time custom resources whose roles aws-cdk-lib defines); their cdk-nag findings
 * are acknowledged here, each with its reason.
 */

import { DefaultStackSynthesizer, Stack, type aws_s3 as s3, Token, Validations } from 'aws-cdk-lib';
import type { Construct, IConstruct } from 'constructs';

/** Acknowledges the findings on CDK's support functions in the stack of `scope`. */
export function acknowledgeSupportFunctions(scope: Construct, configBucket: s3.Bucket): void {
  const stack = Stack.of(scope);
  const child = (prefix: string): IConstruct | undefined =>
    stack.node.children.find((c) => c.node.id.startsWith(prefix));
  const basicExecution =
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]';
  const notifications = child('BucketNotificationsHandler');
  if (notifications)
    Validations.of(notifications).acknowledge({
      id: basicExecution,
      reason:
        "CDK's S3 notification handler (a deploy-time custom resource that configures the grants notification) logs with the AWS managed basic execution policy; aws-cdk-lib does not let its role be replaced.",
    });
  const deployment = child('Custom::CDKBucketDeployment');
  if (!deployment) return;
  const handlerGrants =
    "aws-cdk-lib's BucketDeployment handler runs only during deployments; its role, not configurable, reads the staged grants asset from the CDK bootstrap bucket and syncs it into the config bucket (which holds nothing but the grants). prune is off, so it deletes nothing.";
  const name = (v: string, placeholder: string) =>
    Token.isUnresolved(v) ? `<AWS::${placeholder}>` : v;
  const synthesizer = stack.synthesizer;
  const qualifier =
    synthesizer instanceof DefaultStackSynthesizer
      ? (synthesizer.bootstrapQualifier ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER)
      : DefaultStackSynthesizer.DEFAULT_QUALIFIER;
  const assetBucket = `arn:${name(stack.partition, 'Partition')}:s3:::cdk-${qualifier}-assets-${name(stack.account, 'AccountId')}-${name(stack.region, 'Region')}/*`;
  const configBucketId = stack.getLogicalId(configBucket.node.defaultChild as s3.CfnBucket);
  Validations.of(deployment).acknowledge(
    {
      id: basicExecution,
      reason:
        "CDK's BucketDeployment handler (uploads the grants file at deploy time) logs with the AWS managed basic execution policy; aws-cdk-lib does not let its role be replaced.",
    },
    {
      id: 'AwsSolutions-L1',
      reason:
        "CDK's BucketDeployment handler runtime is chosen by aws-cdk-lib, not by this project; it runs only during deployments.",
    },
    ...[
      'Action::s3:GetObject*',
      'Action::s3:GetBucket*',
      'Action::s3:List*',
      'Action::s3:DeleteObject*',
      'Action::s3:Abort*',
      `Resource::${assetBucket}`,
      `Resource::<${configBucketId}.Arn>/*`,
    ].map((finding) => ({ id: `AwsSolutions-IAM5[${finding}]`, reason: handlerGrants })),
  );
}
