/**
 * The construct's `realm` option: the token endpoint as a Lambda function URL. Off by default;
 * when on, a public function URL, a role that reads the trust bundle and nothing else (checked
 * with the IAM evaluator against the bucket policy the minter writes), log retention, alarms on
 * errors and throttles, and the `RealmUrl` stack output.
 */

import { describe, expect, it } from '@jest/globals';
import { Duration, Stack, aws_sns as sns } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { RegistryTokenMinter } from '../../infra/minter.js';
import { RegtokenStack } from '../../infra/stack.js';
import { buildTokenBucketPolicy } from '../../lambda/core/policy.js';
import { type CfnJson, newApp, ROOT } from '../helpers/cdk.js';
import { decideS3 } from '../helpers/iam-eval.js';

const GRANTS = `${ROOT}examples/config-repo/grants.yaml`;
const ACCOUNT = '111122223333';
const BUCKET = 'regtoken-tokens';

function build(props: ConstructorParameters<typeof RegistryTokenMinter>[2]) {
  const stack = new Stack(newApp(), 'Test', { env: { account: ACCOUNT, region: 'eu-west-1' } });
  const topic = new sns.Topic(stack, 'Topic');
  const minter = new RegistryTokenMinter(stack, 'Minter', { alarmTopic: topic, ...props });
  return { stack, minter, template: Template.fromStack(stack) };
}

/** Replaces the token bucket's references with a fixed name, so policies can be evaluated. */
function concrete(value: CfnJson, stack: Stack, bucketLogicalId: string): CfnJson {
  if (Array.isArray(value)) return value.map((v) => concrete(v, stack, bucketLogicalId));
  if (value && typeof value === 'object') {
    if (value['Fn::GetAtt']?.[0] === bucketLogicalId) return `arn:aws:s3:::${BUCKET}`;
    // Anything else (the log group): an ARN of its own, outside the bucket.
    if (value['Fn::GetAtt'])
      return `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:${value['Fn::GetAtt'][0]}:*`;
    if (value.Ref === bucketLogicalId) return BUCKET;
    if (value.Ref === 'AWS::Partition') return 'aws';
    if (value['Fn::Join'])
      return (concrete(value['Fn::Join'][1], stack, bucketLogicalId) as unknown[]).join(
        value['Fn::Join'][0],
      );
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, concrete(v, stack, bucketLogicalId)]),
    );
  }
  return value;
}

describe('the token endpoint option', () => {
  it('is off by default: no function URL', () => {
    const { template } = build({ minTokenTtl: Duration.hours(12) });
    template.resourceCountIs('AWS::Lambda::Url', 0);
  });

  it('fails synth without service and issuer when no grants file gives them', () => {
    expect(() => build({ minTokenTtl: Duration.hours(12), realm: {} })).toThrow(
      "RegistryTokenMinter: realm needs service and issuer (the registry's auth.token.service and auth.token.issuer), or a grantsFile to take them from",
    );
  });

  describe('with a grants file', () => {
    const { stack, minter, template } = build({ grantsFile: GRANTS, realm: {} });
    const json = template.toJSON() as CfnJson;
    const realm = minter.realm ?? fail('no realm');
    const fnId = stack.getLogicalId(realm.function.node.defaultChild as never);
    const roleId = stack.getLogicalId(realm.role.node.defaultChild as never);
    const bucketId = stack.getLogicalId(minter.tokenBucket.node.defaultChild as never);

    it('serves the handler from a public function URL (clients cannot sign requests)', () => {
      template.hasResourceProperties('AWS::Lambda::Url', {
        AuthType: 'NONE',
        TargetFunctionArn: { 'Fn::GetAtt': [fnId, 'Arn'] },
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunctionUrl',
        FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
        FunctionUrlAuthType: 'NONE',
        Principal: '*',
      });
    });

    it('takes service and issuer from the grants file, and the trust from the token bucket', () => {
      const env = json.Resources[fnId].Properties.Environment.Variables;
      expect(env).toMatchObject({
        REGTOKEN_SERVICE: 'registry.example.com',
        REGTOKEN_ISSUER: 'regtoken',
        REGTOKEN_TRUST: { 'Fn::Join': ['', ['s3://', { Ref: bucketId }]] },
      });
      expect(json.Resources[fnId].Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Handler: 'index.handler',
        Timeout: 10,
        MemorySize: 256,
      });
    });

    it('gives its role exactly two statements: its logs, and reading trust/*', () => {
      const policies = Object.values(json.Resources as Record<string, CfnJson>).filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          r.Properties.Roles.some((x: CfnJson) => x.Ref === roleId),
      );
      expect(policies).toHaveLength(1);
      const statements = policies[0].Properties.PolicyDocument.Statement;
      expect(statements.map((s: CfnJson) => [s.Sid, s.Action])).toEqual([
        ['WriteLogs', ['logs:CreateLogStream', 'logs:PutLogEvents']],
        ['ReadTrustBundle', 's3:GetObject'],
      ]);
      expect(json.Resources[roleId].Properties.ManagedPolicyArns).toBeUndefined();
    });

    it('may read the trust bundle and nothing else of the token bucket (IAM evaluator)', async () => {
      const policy = Object.values(json.Resources as Record<string, CfnJson>).find(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          r.Properties.Roles.some((x: CfnJson) => x.Ref === roleId),
      );
      const identity = concrete(policy.Properties.PolicyDocument, stack, bucketId);
      const roleArn = `arn:aws:iam::${ACCOUNT}:role/realm`;
      const bucketPolicy = buildTokenBucketPolicy({
        bucket: BUCKET,
        prefix: '',
        partition: 'aws',
        readerAccounts: [ACCOUNT],
        minterArns: [`arn:aws:iam::${ACCOUNT}:role/minter`],
      });
      const decide = (action: string, key: string, ownerTag?: string) =>
        decideS3({
          bucketPolicy,
          bucket: BUCKET,
          bucketAccount: ACCOUNT,
          principal: `arn:aws:sts::${ACCOUNT}:assumed-role/realm/fn`,
          principalArn: roleArn,
          action,
          key,
          ...(ownerTag ? { ownerTag } : {}),
          identityPolicies: [identity],
        });
      expect(await decide('s3:GetObject', 'trust/bundle.pem')).toBe('Allowed');
      expect(await decide('s3:GetObject', 'trust/jwks.json')).toBe('Allowed');
      expect(
        await decide(
          's3:GetObject',
          `tokens/${ACCOUNT}/role/ci.json`,
          `arn:aws:iam::${ACCOUNT}:role/ci`,
        ),
      ).not.toBe('Allowed');
      expect(await decide('s3:GetObject', 'state/lock.json')).not.toBe('Allowed');
      expect(await decide('s3:PutObject', 'trust/bundle.pem')).not.toBe('Allowed');
    });

    it('keeps its logs like the minter, and alarms on errors and throttles to the topic', () => {
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        RetentionInDays: 90,
      });
      for (const metric of ['Errors', 'Throttles'])
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: metric,
          Namespace: 'AWS/Lambda',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
          Threshold: 1,
          TreatMissingData: 'notBreaching',
          AlarmActions: [{ Ref: Match.stringLikeRegexp('^Topic') }],
        });
    });
  });

  it('uses service and issuer given as props over the grants file', () => {
    const { stack, minter, template } = build({
      grantsFile: GRANTS,
      realm: { service: 'svc.test', issuer: 'iss.test', memorySize: 512 },
    });
    const fnId = stack.getLogicalId(minter.realm?.function.node.defaultChild as never);
    const props = (template.toJSON() as CfnJson).Resources[fnId].Properties;
    expect(props.Environment.Variables).toMatchObject({
      REGTOKEN_SERVICE: 'svc.test',
      REGTOKEN_ISSUER: 'iss.test',
    });
    expect(props.MemorySize).toBe(512);
  });
});

describe('RegtokenStack with realm', () => {
  it('outputs RealmUrl, the function URL with /token', () => {
    const stack = new RegtokenStack(newApp(), 'Regtoken', { grantsFile: GRANTS, realm: true });
    const template = Template.fromStack(stack);
    const urlId = stack.getLogicalId(stack.minter.realm?.functionUrl.node.defaultChild as never);
    template.hasOutput('RealmUrl', {
      Value: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [urlId, 'FunctionUrl'] }, 'token']] },
    });
  });

  it('has no RealmUrl output without realm', () => {
    const stack = new RegtokenStack(newApp(), 'Regtoken', { grantsFile: GRANTS });
    expect(Object.keys(Template.fromStack(stack).toJSON().Outputs)).not.toContain('RealmUrl');
  });
});

function fail(message: string): never {
  throw new Error(message);
}
