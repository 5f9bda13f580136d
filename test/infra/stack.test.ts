/**
 * RegtokenStack and the context the app reads: outputs, signing-root rotation, the GitHub
 * roles of a config repository, the alarm topic, and grants deployed from this repository.
 */

import { describe, expect, it } from '@jest/globals';
import { Duration, type aws_kms as kms } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import {
  DEFAULT_MIN_TOKEN_TTL,
  propsFromContext,
  RegtokenStack,
  type RegtokenStackProps,
} from '../../infra/stack.js';
import { type CfnJson, newApp, ROOT } from '../helpers/cdk.js';

const GRANTS = `${ROOT}examples/config-repo/grants.yaml`;

function stackWith(props: RegtokenStackProps) {
  const stack = new RegtokenStack(newApp(), 'Regtoken', props);
  return { stack, template: Template.fromStack(stack), r: (v: unknown) => stack.resolve(v) };
}

describe('propsFromContext', () => {
  /** The props, with durations as seconds so they compare by value. */
  const read = (context: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(propsFromContext(newApp({ context }).node)).map(([k, v]) => [
        k,
        v instanceof Duration ? `${v.toSeconds()}s` : v,
      ]),
    );

  it(`assumes the shortest lifetime is ${DEFAULT_MIN_TOKEN_TTL} when nothing says otherwise`, () => {
    expect(read({})).toEqual({ minTokenTtl: `${12 * 3600}s` });
  });

  it('takes the lifetimes from grantsFile when given', () => {
    expect(read({ grantsFile: 'grants.yaml' })).toEqual({ grantsFile: 'grants.yaml' });
  });

  it('reads every setting', () => {
    expect(
      read({
        grantsFile: 'grants.yaml',
        minTokenTtl: '3h',
        schedule: '30m',
        timeout: '10m',
        rootKeys: '1, 2',
        signingKey: '2',
        keyAdminRole: 'arn:aws:iam::111122223333:role/KeyAdmins',
        alarmEmail: 'ops@example.com',
        githubRepository: 'my-org/registry-grants',
        githubOidcProviderArn:
          'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com',
        registryBucket: 'registry-storage',
        registryPrefix: 'prod',
        additionalMinterArns: 'arn:aws:iam::111122223333:role/ops/break-glass',
        realm: 'true',
        realmService: 'registry.example.com',
        realmIssuer: 'regtoken',
      }),
    ).toEqual({
      grantsFile: 'grants.yaml',
      minTokenTtl: `${3 * 3600}s`,
      schedule: `${30 * 60}s`,
      timeout: `${10 * 60}s`,
      rootKeys: ['1', '2'],
      signingKey: '2',
      keyAdminRoleArn: 'arn:aws:iam::111122223333:role/KeyAdmins',
      alarmEmail: 'ops@example.com',
      githubRepository: 'my-org/registry-grants',
      githubOidcProviderArn:
        'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com',
      registryBucket: 'registry-storage',
      registryPrefix: 'prod',
      additionalMinterArns: ['arn:aws:iam::111122223333:role/ops/break-glass'],
      realm: true,
      realmService: 'registry.example.com',
      realmIssuer: 'regtoken',
    });
  });

  it('rejects a realm flag that is not true or false', () => {
    expect(() => read({ realm: 'yes' })).toThrow('context realm="yes" must be true or false');
  });

  it('rejects a duration it cannot read', () => {
    expect(() => read({ schedule: 'hourly' })).toThrow(
      'context schedule="hourly" is not a duration like 1h or 90m',
    );
  });

  it('fails synth with the lifetime message when -c minTokenTtl is too short', () => {
    const app = newApp({ context: { minTokenTtl: '1h' } });
    expect(() => new RegtokenStack(app, 'Regtoken', propsFromContext(app.node))).toThrow(
      'RegistryTokenMinter: token lifetime 1h (minTokenTtl) is shorter than 2 × schedule (1h) + margin (5m) = 2h5m',
    );
  });
});

describe('RegtokenStack outputs', () => {
  const { template, stack, r } = stackWith({ minTokenTtl: Duration.hours(12) });
  const m = stack.minter;

  it.each([
    ['ConfigBucketName', () => m.configBucket.bucketName],
    ['ConfigObject', () => m.configUrl],
    ['TokenBucketName', () => m.tokenBucket.bucketName],
    ['TrustBundle', () => m.trustBundleUrl],
    ['SigningKeyArn', () => m.signingKey.keyArn],
    ['RootKey1Arn', () => m.signingKey.keyArn],
    ['FunctionName', () => m.function.functionName],
    ['LogGroupName', () => m.logGroup.logGroupName],
    ['FailedInvocationsQueueUrl', () => m.deadLetterQueue.queueUrl],
  ])('%s', (name, value) => {
    template.hasOutput(name, { Value: r(value()) });
  });

  it('the schedule output is what the config repository passes to --schedule', () => {
    template.hasOutput('Schedule', { Value: '1h' });
    const { template: every30 } = stackWith({
      minTokenTtl: Duration.hours(12),
      schedule: Duration.minutes(30),
    });
    every30.hasOutput('Schedule', { Value: '30m' });
  });

  it('the trust bundle output is the s3:// URL of trust/bundle.pem', () => {
    template.hasOutput('TrustBundle', {
      Value: {
        'Fn::Join': [
          '',
          ['s3://', { Ref: Match.stringLikeRegexp('^MinterTokenBucket') }, '/trust/bundle.pem'],
        ],
      },
    });
  });

  it('no GitHub roles, topic or grants upload unless asked for', () => {
    expect(Object.keys(template.toJSON().Outputs)).not.toContain('GitHubPlanRoleArn');
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('Custom::CDKBucketDeployment', 0);
  });
});

describe('signing-root rotation with rootKeys / signingKey', () => {
  it('phase 1: a new root is trusted while the old one still signs', () => {
    const { stack, template, r } = stackWith({
      minTokenTtl: Duration.hours(12),
      rootKeys: ['1', '2'],
    });
    const [one, two] = [...stack.rootKeys.values()] as [kms.Key, kms.Key];
    const env = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x' },
    });
    const vars = (Object.values(env)[0] as { Properties: { Environment: { Variables: CfnJson } } })
      .Properties.Environment.Variables;
    expect(vars.REGTOKEN_SIGNING_KEY).toEqual(r(`kms:${one.keyArn}`));
    expect(vars.REGTOKEN_TRUSTED_KEYS).toEqual(r(two.keyArn));
    template.hasOutput('RootKey2Arn', {
      Value: r(two.keyArn),
      Description: 'Root key "2" (trusted)',
    });
    // Both keys let the function (and only it) sign.
    const keys = Object.values(template.findResources('AWS::KMS::Key')) as {
      Properties: { KeyPolicy: { Statement: { Sid?: string }[] } };
      DeletionPolicy: string;
    }[];
    expect(keys).toHaveLength(2);
    for (const k of keys) {
      expect(k.DeletionPolicy).toBe('Retain');
      expect(k.Properties.KeyPolicy.Statement.map((s) => s.Sid)).toEqual([
        'KeyAdministration',
        'MinterSigns',
        'NobodyElseSigns',
      ]);
    }
  });

  it('phase 2: the new root signs and the old one stays trusted', () => {
    const { stack, template, r } = stackWith({
      minTokenTtl: Duration.hours(12),
      rootKeys: ['1', '2'],
      signingKey: '2',
    });
    const two = stack.rootKeys.get('2') as kms.Key;
    template.hasOutput('SigningKeyArn', { Value: r(two.keyArn) });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          REGTOKEN_SIGNING_KEY: r(`kms:${two.keyArn}`),
          REGTOKEN_TRUSTED_KEYS: r((stack.rootKeys.get('1') as kms.Key).keyArn),
        }),
      },
    });
  });

  it('phase 3: the old root leaves the stack (retained by its deletion policy)', () => {
    const { template } = stackWith({ minTokenTtl: Duration.hours(12), rootKeys: ['2'] });
    template.resourceCountIs('AWS::KMS::Key', 1);
    expect(Object.keys(template.findResources('AWS::KMS::Key'))[0]).toMatch(/^RootKey2/);
  });

  it.each([
    [{ rootKeys: ['a-b'] }, 'root key label "a-b" must be letters and digits'],
    [{ rootKeys: ['1', '1'] }, 'rootKeys lists a label twice: 1,1'],
    [{ rootKeys: ['1'], signingKey: '2' }, 'signingKey "2" is not one of rootKeys (1)'],
    [
      { keyAdminRoleArn: 'arn:aws:iam::111122223333:user/alice' },
      'keyAdminRoleArn must be a role ARN: arn:aws:iam::111122223333:user/alice',
    ],
  ])('rejects %p', (props, message) => {
    expect(() => stackWith({ minTokenTtl: Duration.hours(12), ...props })).toThrow(message);
  });
});

describe('GitHub config repository roles', () => {
  const { template, stack, r } = stackWith({
    minTokenTtl: Duration.hours(12),
    githubRepository: 'my-org/registry-grants',
  });
  const github = stack.github;
  const provider = Object.keys(template.findResources('AWS::IAM::OIDCProvider'))[0];

  it('creates the GitHub OIDC provider for sts.amazonaws.com', () => {
    template.resourceCountIs('AWS::IAM::OIDCProvider', 1);
    template.hasResourceProperties('AWS::IAM::OIDCProvider', {
      Url: 'https://token.actions.githubusercontent.com',
      ClientIdList: ['sts.amazonaws.com'],
    });
  });

  it.each([
    ['plan', 'repo:my-org/registry-grants:pull_request'],
    ['upload', 'repo:my-org/registry-grants:ref:refs/heads/main'],
  ])('the %s role trusts only %s', (which, sub) => {
    const role = which === 'plan' ? github?.planRole : github?.uploadRole;
    const id = stack.getLogicalId(role?.node.defaultChild as never);
    expect(template.toJSON().Resources[id].Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRoleWithWebIdentity',
        Effect: 'Allow',
        Principal: { Federated: { Ref: provider } },
        Condition: {
          StringEquals: {
            'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
            'token.actions.githubusercontent.com:sub': sub,
          },
        },
      },
    ]);
  });

  it('the plan role reads the grants object; the upload role writes it; nothing more', () => {
    const policyOf = (roleName: unknown) =>
      (
        Object.values(template.findResources('AWS::IAM::Policy')).find(
          (p) =>
            JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles) ===
            JSON.stringify([roleName]),
        ) as { Properties: { PolicyDocument: { Statement: unknown[] } } }
      ).Properties.PolicyDocument.Statement;
    const m = stack.minter;
    expect(policyOf(r(github?.planRole.roleName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: r(m.configBucket.arnForObjects('grants.yaml')),
      },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: r(m.configBucket.bucketArn) },
    ]);
    expect(policyOf(r(github?.uploadRole.roleName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: r(m.configBucket.arnForObjects('grants.yaml')),
      },
    ]);
  });

  it('outputs the role ARNs the workflow needs', () => {
    template.hasOutput('GitHubPlanRoleArn', { Value: r(github?.planRole.roleArn) });
    template.hasOutput('GitHubUploadRoleArn', { Value: r(github?.uploadRole.roleArn) });
  });

  it("uses the account's existing provider when given", () => {
    const arn = 'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com';
    const existing = stackWith({
      minTokenTtl: Duration.hours(12),
      githubRepository: 'my-org/registry-grants',
      githubOidcProviderArn: arn,
    });
    existing.template.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    existing.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Federated: arn } })],
      },
    });
  });

  it('rejects a repository that is not OWNER/NAME', () => {
    expect(() =>
      stackWith({ minTokenTtl: Duration.hours(12), githubRepository: 'registry-grants' }),
    ).toThrow('GitHubConfigRoles: repository "registry-grants" must be OWNER/NAME');
  });
});

describe('alarm e-mail', () => {
  it('subscribes the address to a TLS-only topic that every alarm notifies', () => {
    const { template } = stackWith({
      minTokenTtl: Duration.hours(12),
      alarmEmail: 'ops@example.com',
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    // What the policy allows and denies is evaluated in test/infra/policies.test.ts.
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Sid: 'CloudWatchAlarmsOfThisAccount',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
          }),
        ]),
      },
    });
    const topic = Object.keys(template.findResources('AWS::SNS::Topic'))[0];
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(6);
    for (const a of alarms)
      expect((a as { Properties: { AlarmActions: unknown } }).Properties.AlarmActions).toEqual([
        { Ref: topic },
      ]);
  });
});

describe('grants kept in this repository (grantsFile)', () => {
  const { template, stack, r } = stackWith({ grantsFile: GRANTS });

  it('uploads the file to the grants key, never pruning or deleting anything', () => {
    template.resourceCountIs('Custom::CDKBucketDeployment', 1);
    template.hasResourceProperties('Custom::CDKBucketDeployment', {
      DestinationBucketName: r(stack.minter.configBucket.bucketName),
      DestinationBucketKeyPrefix: Match.absent(),
      Prune: false,
      RetainOnDelete: true,
      Extract: Match.absent(),
      SystemMetadata: { 'content-type': 'application/yaml' },
    });
  });

  it('uploads only after the notification exists, so the upload mints at once', () => {
    const deployment = Object.values(template.findResources('Custom::CDKBucketDeployment'))[0] as {
      DependsOn: string[];
    };
    const notifications = Object.keys(template.findResources('Custom::S3BucketNotifications'));
    expect(deployment.DependsOn).toEqual(expect.arrayContaining(notifications));
  });

  it('checks the lifetimes of the file itself (3h here is enough for an hourly schedule)', () => {
    expect(() => stackWith({ grantsFile: GRANTS, schedule: Duration.minutes(90) })).toThrow(
      `RegistryTokenMinter: token lifetime 3h (${GRANTS}: arn:aws:iam::111122223333:role/web/ec2-web) is shorter than 2 × schedule (1h30m)`,
    );
  });
});
