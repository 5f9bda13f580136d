/**
 * RegistryTokenMinter with `fanOut` at synth time: the state machine's definition (the plan
 * step, the Distributed Map's ItemReader, ItemSelector, concurrency, retries, tolerated failures
 * and Catch to the finish step), the triggers that start it, its alarms, every role's exact
 * statements, cdk-nag (no unacknowledged finding, every acknowledgement answering one) and
 * cfn-lint on the synthesized template. Without `fanOut` nothing of it is there.
 *
 * test/integration/fan-out.test.ts runs this definition against the AWS stand-in.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  type App,
  Duration,
  type aws_iam as iam,
  type aws_lambda as lambda,
  type aws_logs as logs,
  type Stack,
  aws_sns as sns,
  type aws_sqs as sqs,
  Validations,
} from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type FanOutOptions, RegistryTokenMinter } from '../../infra/minter.js';
import { propsFromContext, RegtokenStack, type RegtokenStackProps } from '../../infra/stack.js';
import {
  acknowledgements,
  type CfnJson,
  EVERY_OPTION,
  nagFindings,
  newApp,
  synth,
} from '../helpers/cdk.js';
import { ResolvedTemplate } from '../helpers/cfn.js';
import { minterStatements, roleStatements } from '../helpers/iam-statements.js';
import { requireBinary, run } from '../helpers/process.js';

function build(
  fanOut: FanOutOptions | undefined,
  props: Partial<ConstructorParameters<typeof RegistryTokenMinter>[2]> = {},
) {
  let minter: RegistryTokenMinter | undefined;
  const { stack, template } = synth((s) => {
    minter = new RegistryTokenMinter(s, 'Minter', {
      minTokenTtl: Duration.hours(12),
      ...props,
      ...(fanOut ? { fanOut } : {}),
    });
  });
  if (!minter) throw new Error('not built');
  const json = template.toJSON() as {
    Resources: Record<string, { Type: string; Properties: CfnJson }>;
  };
  return { stack, template, json, minter, r: (v: unknown) => stack.resolve(v) };
}

/** The logical ID of a construct's CloudFormation resource. */
function idOf(stack: Stack, c: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(c.node.defaultChild as never);
}

/** Every identity statement attached to `role`, in the order of the template's policies. */
function statementsOf(template: Template, stack: Stack, role: iam.IRole): unknown[] {
  return roleStatements(template, { Ref: idOf(stack, role) });
}

/** The state machine's definition, with the CloudFormation references left as `<LogicalId>`. */
function definitionOf(json: {
  Resources: Record<string, { Type: string; Properties: CfnJson }>;
}): CfnJson {
  const sm = Object.values(json.Resources).filter(
    (r) => r.Type === 'AWS::StepFunctions::StateMachine',
  );
  expect(sm).toHaveLength(1);
  const body = sm[0]?.Properties.DefinitionString['Fn::Join'] as [string, CfnJson[]] | undefined;
  const parts = body?.[1] ?? [];
  const text = parts
    .map((p) => {
      if (typeof p === 'string') return p;
      if (p.Ref) return `<${p.Ref}>`;
      if (p['Fn::GetAtt']) return `<${p['Fn::GetAtt'][0]}.${p['Fn::GetAtt'][1]}>`;
      throw new Error(`unexpected part ${JSON.stringify(p)}`);
    })
    .join('');
  return JSON.parse(text);
}

describe('without fanOut (the default)', () => {
  const { json, minter } = build(undefined);
  it('has no state machine, no workflow function, no EventBridge rule', () => {
    const types = Object.values(json.Resources).map((r) => r.Type);
    expect(types).not.toContain('AWS::StepFunctions::StateMachine');
    expect(types).not.toContain('AWS::Events::Rule');
    expect(types.filter((t) => t === 'AWS::Lambda::Function')).toHaveLength(2); // minter + CDK's notifications handler
    expect(minter.fanOut).toBeUndefined();
  });

  it('leaves the template exactly as an explicit fanOut: undefined does', () => {
    expect(build(undefined, { fanOut: undefined }).json).toEqual(json);
  });
});

describe('with fanOut (defaults)', () => {
  const { json, template, minter, stack, r } = build({});
  const fan = minter.fanOut;
  if (!fan) throw new Error('no fanOut');
  const fnId = (f: { function: lambda.Function }) => idOf(stack, f.function);
  const tokenBucketId = idOf(stack, minter.tokenBucket);
  const configBucketId = idOf(stack, minter.configBucket);
  const stateMachineId = idOf(stack, fan.stateMachine);
  const definition = definitionOf(json);

  it('plan → LockHeld → MintShards → Finish → ConfigChanged → (StartNextPass) → Outcome', () => {
    expect(definition.StartAt).toBe('Plan');
    expect(definition.TimeoutSeconds).toBe(1800);
    expect(Object.keys(definition.States).sort()).toEqual(
      [
        'ConfigChanged',
        'Done',
        'Finish',
        'LockHeld',
        'MintShards',
        'Outcome',
        'Plan',
        'RunFailed',
        'Skipped',
        'StartNextPass',
      ].sort(),
    );
    expect(definition.States.Plan).toMatchObject({
      Type: 'Task',
      Resource: `<${fnId(fan.plan)}.Arn>`,
      Parameters: {
        'input.$': '$',
        'execution.$': '$$.Execution.Id',
        'name.$': '$$.Execution.Name',
      },
      Next: 'LockHeld',
    });
    expect(definition.States.LockHeld).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.skipped', BooleanEquals: true, Next: 'Skipped' }],
      Default: 'MintShards',
    });
    expect(definition.States.Finish).toMatchObject({
      Type: 'Task',
      Resource: `<${fnId(fan.finish)}.Arn>`,
      Next: 'ConfigChanged',
    });
    expect(definition.States.StartNextPass).toEqual({
      Type: 'Task',
      Resource: 'arn:<AWS::Partition>:states:::states:startExecution',
      Parameters: { 'StateMachineArn.$': '$$.StateMachine.Id', 'Input.$': '$.next' },
      ResultPath: null,
      Next: 'Outcome',
    });
    expect(definition.States.RunFailed).toEqual({
      Type: 'Fail',
      ErrorPath: '$.error',
      CausePath: '$.cause',
    });
  });

  it('MintShards: a Distributed Map over the manifest in the token bucket, no failure tolerated', () => {
    const map = definition.States.MintShards;
    expect(map).toMatchObject({
      Type: 'Map',
      ItemReader: {
        Resource: 'arn:<AWS::Partition>:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { Bucket: `<${tokenBucketId}>`, 'Key.$': '$.manifest' },
      },
      ItemSelector: { 'run.$': '$.run', 'lock.$': '$.lock', 'item.$': '$$.Map.Item.Value' },
      MaxConcurrency: 2,
      ToleratedFailurePercentage: 0,
      ResultPath: null,
      Next: 'Finish',
    });
    expect(map.ItemProcessor.ProcessorConfig).toEqual({
      Mode: 'DISTRIBUTED',
      ExecutionType: 'STANDARD',
    });
    expect(Object.keys(map.ItemProcessor.States)).toEqual(['Shard']);
    expect(map.ItemProcessor.States.Shard).toMatchObject({
      Type: 'Task',
      Resource: `<${fnId(fan.shard)}.Arn>`,
      End: true,
    });
  });

  it('a shard is retried on any error with backoff and full jitter; Lambda service errors too', () => {
    expect(definition.States.MintShards.ItemProcessor.States.Shard.Retry).toEqual([
      {
        ErrorEquals: [
          'Lambda.ClientExecutionTimeoutException',
          'Lambda.ServiceException',
          'Lambda.AWSLambdaException',
          'Lambda.SdkClientException',
        ],
        IntervalSeconds: 2,
        MaxAttempts: 6,
        BackoffRate: 2,
      },
      {
        ErrorEquals: ['States.ALL'],
        IntervalSeconds: 5,
        MaxAttempts: 3,
        BackoffRate: 2,
        JitterStrategy: 'FULL',
      },
    ]);
  });

  it('a Map that fails goes to Finish (which releases the lock) with the error in $.failure', () => {
    expect(definition.States.MintShards.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Finish' },
    ]);
    // Nothing else can end the run without the finish step, once the lock is taken.
    expect(definition.States.Finish.Catch).toBeUndefined();
    expect(definition.States.Plan.Catch).toBeUndefined();
  });

  it('the state machine: Standard, logs without execution data, traced', () => {
    expect(json.Resources[stateMachineId]?.Properties).toMatchObject({
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { IncludeExecutionData: false, Level: 'ALL' },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('three functions from one bundle, each with its handler, memory and environment', () => {
    const env = (f: { function: lambda.Function }) =>
      Object.keys(json.Resources[fnId(f)]?.Properties.Environment.Variables).sort();
    const props = (f: { function: lambda.Function }) => json.Resources[fnId(f)]?.Properties;
    expect([fan.plan, fan.shard, fan.finish].map((f) => props(f).Handler)).toEqual([
      'index.plan',
      'index.shard',
      'index.finish',
    ]);
    expect([fan.plan, fan.shard, fan.finish].map((f) => props(f).MemorySize)).toEqual([
      2048, 1024, 512,
    ]);
    const powertools = [
      'POWERTOOLS_LOG_LEVEL',
      'POWERTOOLS_METRICS_NAMESPACE',
      'POWERTOOLS_SERVICE_NAME',
    ];
    expect(env(fan.plan)).toEqual(
      [
        'NODE_OPTIONS',
        'REGTOKEN_CONFIG',
        'REGTOKEN_LOCK_LEASE',
        'REGTOKEN_MINTER_ARNS',
        'REGTOKEN_OUT',
        'REGTOKEN_SHARD_SIZE',
        'REGTOKEN_SIGNING_KEY',
        ...powertools,
      ].sort(),
    );
    expect(env(fan.shard)).toEqual(
      [
        'NODE_OPTIONS',
        'REGTOKEN_MINTER_ARNS',
        'REGTOKEN_OUT',
        'REGTOKEN_SIGNING_KEY',
        ...powertools,
      ].sort(),
    );
    expect(env(fan.finish)).toEqual(
      [
        'NODE_OPTIONS',
        'REGTOKEN_CONFIG',
        'REGTOKEN_MINTER_ARNS',
        'REGTOKEN_OUT',
        ...powertools,
      ].sort(),
    );
    const planEnv = props(fan.plan).Environment.Variables;
    // The lease covers the whole execution and one more function timeout, plus a minute.
    expect(planEnv.REGTOKEN_LOCK_LEASE).toBe('36m');
    expect(planEnv.REGTOKEN_SHARD_SIZE).toBe('5000');
    // The bucket policy's minters: the three roles and the state machine (it reads the manifest).
    expect(planEnv.REGTOKEN_MINTER_ARNS).toEqual({
      'Fn::Join': [
        '',
        [
          { 'Fn::GetAtt': [idOf(stack, fan.plan.role), 'Arn'] },
          ',',
          { 'Fn::GetAtt': [idOf(stack, fan.shard.role), 'Arn'] },
          ',',
          { 'Fn::GetAtt': [idOf(stack, fan.finish.role), 'Arn'] },
          ',',
          { 'Fn::GetAtt': [idOf(stack, fan.stateMachine.role as iam.Role), 'Arn'] },
        ],
      ],
    });
  });

  const st = minterStatements(minter, r);
  const { tokens } = st;
  const logs = (f: { logGroup: logs.LogGroup }) => st.writeLogs(idOf(stack, f.logGroup));

  it('plan role: grants, trust, lock, run files, listing, bucket policy, IAM lists, KMS; no token write', () => {
    expect(statementsOf(template, stack, fan.plan.role)).toEqual([
      logs(fan.plan),
      ...st.readGrants,
      st.publishTrustAndLock,
      {
        Sid: 'WriteRunFiles',
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: tokens('state/runs/*'),
      },
      st.listTokens,
      st.ownTokenBucketPolicy,
      st.checkPrincipals,
      st.signWithRoot,
    ]);
  });

  it('shard role: its tokens and run files, reading the lock, one KMS Sign; no delete, no list', () => {
    expect(statementsOf(template, stack, fan.shard.role)).toEqual([
      logs(fan.shard),
      {
        Sid: 'WriteTokens',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:PutObjectTagging'],
        Resource: tokens('tokens/*'),
      },
      {
        Sid: 'ReadShardWriteResult',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: tokens('state/runs/*'),
      },
      {
        Sid: 'JoinRunLease',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: tokens('state/lock.json'),
      },
      {
        Sid: 'CertifyShardKey',
        Effect: 'Allow',
        Action: 'kms:Sign',
        Resource: r(minter.signingKey.keyArn),
      },
    ]);
  });

  it('finish role: the grants version, stale deletes, the lock, the run files; no KMS, no token write', () => {
    expect(statementsOf(template, stack, fan.finish.role)).toEqual([
      logs(fan.finish),
      ...st.readGrants,
      {
        Sid: 'DeleteStaleTokens',
        Effect: 'Allow',
        Action: 's3:DeleteObject',
        Resource: tokens('tokens/*'),
      },
      {
        Sid: 'JoinAndReleaseLock',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: tokens('state/lock.json'),
      },
      {
        Sid: 'ReadAndRemoveRunFiles',
        Effect: 'Allow',
        Action: ['s3:DeleteObject', 's3:GetObject'],
        Resource: tokens('state/runs/*'),
      },
    ]);
  });

  it('state machine role: invokes its three functions, reads manifests, starts itself', () => {
    const fns = [fan.finish, fan.plan, fan.shard].map((f) => ({ 'Fn::GetAtt': [fnId(f), 'Arn'] }));
    const executions = (tail: string) => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':states:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':execution:',
          { 'Fn::Select': [6, { 'Fn::Split': [':', { Ref: stateMachineId }] }] },
          tail,
        ],
      ],
    });
    expect(statementsOf(template, stack, fan.stateMachine.role)).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: [...fns, ...fns.map((f) => ({ 'Fn::Join': ['', [f, ':*']] }))],
      },
      {
        Sid: 'ReadManifests',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: tokens('state/runs/*/manifest.json'),
      },
      {
        Effect: 'Allow',
        Action: [
          'logs:CreateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:DescribeLogGroups',
          'logs:DescribeResourcePolicies',
          'logs:GetLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:UpdateLogDelivery',
          'xray:GetSamplingRules',
          'xray:GetSamplingTargets',
          'xray:PutTelemetryRecords',
          'xray:PutTraceSegments',
        ],
        Resource: '*',
      },
      // The Distributed Map's child executions, and the next pass.
      { Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: stateMachineId } },
      {
        Effect: 'Allow',
        Action: ['states:DescribeExecution', 'states:StopExecution'],
        Resource: executions(':*'),
      },
      { Effect: 'Allow', Action: 'states:RedriveExecution', Resource: executions('/*:*') },
    ]);
  });

  it('only the plan and shard roles may sign with the key (key policy)', () => {
    const key = json.Resources[idOf(stack, minter.signingKey as never)]?.Properties.KeyPolicy;
    const signers = [fan.plan.role, fan.shard.role].map((role) => ({
      'Fn::GetAtt': [idOf(stack, role), 'Arn'],
    }));
    expect(key.Statement).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Sid: 'MinterSigns',
          Action: ['kms:GetPublicKey', 'kms:Sign'],
          Condition: { ArnEquals: { 'aws:PrincipalArn': signers } },
        }),
        expect.objectContaining({
          Sid: 'NobodyElseSigns',
          Effect: 'Deny',
          Action: 'kms:Sign',
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': signers } },
        }),
      ]),
    );
  });

  it('the schedule and the grants upload start an execution, each with its own role and the DLQ', () => {
    const queue = { 'Fn::GetAtt': [idOf(stack, fan.deadLetterQueue as sqs.Queue), 'Arn'] };
    const schedule = Object.values(json.Resources).filter(
      (x) => x.Type === 'AWS::Scheduler::Schedule',
    );
    expect(schedule).toHaveLength(1);
    expect(schedule[0]?.Properties).toMatchObject({
      ScheduleExpression: 'rate(1 hour)',
      Target: {
        Arn: { Ref: stateMachineId },
        Input: JSON.stringify({ source: 'regtoken.schedule' }),
        DeadLetterConfig: { Arn: queue },
      },
    });
    const scheduleRole = schedule[0]?.Properties.Target.RoleArn['Fn::GetAtt'][0];
    const rule = Object.values(json.Resources).filter((x) => x.Type === 'AWS::Events::Rule');
    expect(rule).toHaveLength(1);
    expect(rule[0]?.Properties).toMatchObject({
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: configBucketId }] }, object: { key: ['grants.yaml'] } },
      },
      Targets: [{ Arn: { Ref: stateMachineId }, DeadLetterConfig: { Arn: queue } }],
    });
    const ruleRole = rule[0]?.Properties.Targets[0].RoleArn['Fn::GetAtt'][0];
    const policyOf = (roleId: string) => roleStatements(template, { Ref: roleId });
    const start = {
      Effect: 'Allow',
      Action: 'states:StartExecution',
      Resource: { Ref: stateMachineId },
    };
    expect(policyOf(scheduleRole)).toEqual([
      start,
      { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queue },
    ]);
    expect(policyOf(ruleRole)).toEqual([start]);
    // The grants bucket tells EventBridge; nothing invokes a function directly.
    const functions = Object.entries(json.Resources).filter(
      ([, x]) => x.Type === 'AWS::Lambda::Permission',
    );
    expect(functions).toEqual([]);
  });

  it('alarms on failed and on timed-out executions', () => {
    const alarms = Object.values(json.Resources)
      .filter((x) => x.Type === 'AWS::CloudWatch::Alarm' && x.Properties.Namespace === 'AWS/States')
      .map((x) => ({
        metric: x.Properties.MetricName,
        dimensions: x.Properties.Dimensions,
        threshold: x.Properties.Threshold,
        operator: x.Properties.ComparisonOperator,
        period: x.Properties.Period,
        statistic: x.Properties.Statistic,
      }));
    const on = [{ Name: 'StateMachineArn', Value: { Ref: stateMachineId } }];
    const common = {
      threshold: 1,
      operator: 'GreaterThanOrEqualToThreshold',
      period: 300,
      statistic: 'Sum',
    };
    expect(alarms).toEqual([
      { metric: 'ExecutionsFailed', dimensions: on, ...common },
      { metric: 'ExecutionsTimedOut', dimensions: on, ...common },
    ]);
  });

  it("the run files of a failed run expire after 7 days (the finish step removes a good run's)", () => {
    const rules = json.Resources[tokenBucketId]?.Properties.LifecycleConfiguration.Rules;
    expect(rules.filter((rule: { Id?: string }) => rule.Id === 'ExpireRunFiles')).toEqual([
      { Id: 'ExpireRunFiles', Prefix: 'state/runs/', ExpirationInDays: 7, Status: 'Enabled' },
    ]);
    // Without fanOut there is no such rule.
    const plain = build(undefined);
    expect(
      JSON.stringify(plain.json.Resources[idOf(plain.stack, plain.minter.tokenBucket)]),
    ).not.toContain('ExpireRunFiles');
  });
});

describe('fanOut options', () => {
  it('shardSize, maxConcurrency and timeout reach the plan step, the Map and the lease', () => {
    const { json, template, minter, stack } = build(
      { shardSize: 250, maxConcurrency: 8, timeout: Duration.hours(2) },
      { timeout: Duration.minutes(10), tokenPrefix: 'prod' },
    );
    const fan = minter.fanOut;
    if (!fan) throw new Error('no fanOut');
    const definition = definitionOf(json);
    expect(definition.TimeoutSeconds).toBe(7200);
    expect(definition.States.MintShards.MaxConcurrency).toBe(8);
    const plan = json.Resources[idOf(stack, fan.plan.function)]?.Properties;
    expect(plan.Environment.Variables).toMatchObject({
      REGTOKEN_SHARD_SIZE: '250',
      REGTOKEN_LOCK_LEASE: '2h11m',
    });
    expect(plan.Timeout).toBe(600);
    // The run files, and the manifests the Map reads, move under the prefix.
    const role = statementsOf(template, stack, fan.stateMachine.role);
    expect(JSON.stringify(role)).toContain('/prod/state/runs/*/manifest.json');
  });

  it.each<[FanOutOptions, RegExp]>([
    [{ shardSize: 0 }, /fanOut\.shardSize must be a whole number from 1 to 100000 \(got 0\)/],
    [{ shardSize: 1.5 }, /fanOut\.shardSize must be a whole number/],
    [{ shardSize: 100_001 }, /fanOut\.shardSize must be a whole number/],
    [
      { maxConcurrency: 0 },
      /fanOut\.maxConcurrency must be a whole number from 1 to 10000 \(got 0\)/,
    ],
    [
      { timeout: Duration.seconds(30) },
      /fanOut\.timeout must be from 1 minute to 24 hours \(got 30s\)/,
    ],
    [{ timeout: Duration.hours(25) }, /fanOut\.timeout must be from 1 minute to 24 hours/],
  ])('refuses %o', (fanOut, message) => {
    expect(() => build(fanOut)).toThrow(message);
  });

  it('a token lifetime is checked against the execution timeout, not one function’s', () => {
    // 1h schedule: 2 × 1h + 2h of execution > 3h.
    expect(() => build({ timeout: Duration.hours(2) }, { minTokenTtl: Duration.hours(3) })).toThrow(
      /minTokenTtl/,
    );
    expect(() => build(undefined, { minTokenTtl: Duration.hours(3) })).not.toThrow();
  });

  it('alarmTopic: the execution alarms notify on alarm and on recovery', () => {
    const { json, minter } = build({}, {});
    expect(minter.fanOut).toBeDefined();
    let topic: sns.Topic | undefined;
    const withTopic = synth((s) => {
      topic = new sns.Topic(s, 'Topic');
      new RegistryTokenMinter(s, 'Minter', {
        minTokenTtl: Duration.hours(12),
        fanOut: {},
        alarmTopic: topic,
      });
    });
    const topicRef = withTopic.stack.resolve((topic as sns.Topic).topicArn);
    const alarms = Object.values(withTopic.template.toJSON().Resources as Record<string, CfnJson>)
      .filter((x) => x.Type === 'AWS::CloudWatch::Alarm' && x.Properties.Namespace === 'AWS/States')
      .map((x) => [x.Properties.AlarmActions, x.Properties.OKActions]);
    expect(alarms).toEqual([
      [[topicRef], [topicRef]],
      [[topicRef], [topicRef]],
    ]);
    expect(Object.keys(json.Resources).length).toBeGreaterThan(0);
  });
});

describe('RegtokenStack with fanOut', () => {
  it('from context: fanOut=true with shardSize and maxConcurrency', () => {
    const app = newApp({ context: { fanOut: 'true', shardSize: '1000', maxConcurrency: '4' } });
    expect(propsFromContext(app.node).fanOut).toEqual({ shardSize: 1000, maxConcurrency: 4 });
    const off = newApp({ context: { fanOut: 'false' } });
    expect(propsFromContext(off.node).fanOut).toBeUndefined();
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ shardSize: '1000' }, /^context shardSize needs fanOut=true$/],
    [{ fanOut: 'true', shardSize: 'many' }, /^context shardSize="many" is not a whole number$/],
    [{ fanOut: 'yes' }, /^context fanOut="yes" must be true or false$/],
    [{ fanOut: 'true', fanOutTimeout: 'soon' }, /^context fanOutTimeout="soon" is not a duration/],
  ])('refuses context %o', (context, message) => {
    expect(() => propsFromContext(newApp({ context }).node)).toThrow(message);
  });

  it('outputs the state machine and the workers’ log group', () => {
    const stack = new RegtokenStack(newApp(), 'Regtoken', {
      minTokenTtl: Duration.hours(12),
      fanOut: {},
    });
    const outputs = Object.keys(
      (stack.node.root as App).synth().getStackByName('Regtoken').template.Outputs,
    );
    expect(outputs).toEqual(expect.arrayContaining(['StateMachineArn', 'ShardLogGroupName']));
  });
});

const { recordTokenReads: _, ...everyOtherOption } = EVERY_OPTION;
const EVERYTHING: RegtokenStackProps = {
  ...everyOtherOption,
  fanOut: { shardSize: 2000, maxConcurrency: 4 },
};

describe.each([
  ['fanOut with defaults', { minTokenTtl: Duration.hours(12), fanOut: {} }],
  ['fanOut with every option on', EVERYTHING],
  [
    'fanOut with every option on, in a concrete account and region',
    { ...EVERYTHING, env: { account: '111122223333', region: 'eu-west-1' } },
  ],
])('AwsSolutionsChecks on the stack with %s', (_, props: RegtokenStackProps) => {
  const app = newApp();
  new RegtokenStack(app, 'Regtoken', props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

  it('has no unacknowledged finding', () => {
    expect(nagFindings(app)).toEqual([]);
  });

  it('acknowledges each finding with a reason, and only findings that exist', () => {
    const all = nagFindings(app, { ignoreAcknowledgements: true });
    for (const ack of acknowledgements(app)) {
      const answered = all.some(
        (f) => f.rule === ack.id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)),
      );
      expect({ ack: `${ack.path} ${ack.id}`, answered, reason: ack.reason.length >= 40 }).toEqual({
        ack: `${ack.path} ${ack.id}`,
        answered: true,
        reason: true,
      });
    }
  });
});

/** cfn-lint's findings on `files` (JSON), and its exit code (a bit set: 2 = errors). */
async function cfnLint(files: readonly string[]) {
  await requireBinary('cfn-lint', 'pip install cfn-lint');
  const r = await run('cfn-lint', ['--format', 'json', ...files], { timeoutMs: 300_000 });
  const findings = JSON.parse(r.stdout || '[]') as {
    Rule: { Id: string };
    Level: string;
    Message: string;
    Filename: string;
  }[];
  return { code: r.code, findings };
}

describe('cfn-lint on the synthesized fan-out template', () => {
  const dir = mkdtempSync(join(tmpdir(), 'regtoken-fan-out-lint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const DEPLOYMENT = { account: '111122223333', region: 'eu-west-1' };

  /** The template of the stack with `props`, and a copy whose definition is one literal string. */
  function templates(name: string, props: RegtokenStackProps, edit = (d: string) => d) {
    const app = newApp();
    new RegtokenStack(app, 'Regtoken', props);
    const template = app.synth().getStackByName('Regtoken').template as CfnJson;
    const file = join(dir, `${name}.template.json`);
    writeFileSync(file, JSON.stringify(template));
    // cfn-lint validates a state machine definition (E3601) only when it is a literal string;
    // the synthesized one is an Fn::Join around the functions' ARNs. So the definition is also
    // linted as CloudFormation would pass it to Step Functions in one deployment.
    const resolved = JSON.parse(JSON.stringify(template));
    const sm = Object.values(resolved.Resources as Record<string, CfnJson>).find(
      (r) => r.Type === 'AWS::StepFunctions::StateMachine',
    );
    const definition = new ResolvedTemplate(template, DEPLOYMENT).resolve(
      sm.Properties.DefinitionString,
    ) as string;
    sm.Properties.DefinitionString = edit(definition);
    const literal = join(dir, `${name}-definition.template.json`);
    writeFileSync(literal, JSON.stringify(resolved));
    return [file, literal];
  }

  it('finds no error and no warning but W3005 in the template and the definition', async () => {
    const files = [
      ...templates('defaults', { minTokenTtl: Duration.hours(12), fanOut: {} }),
      ...templates('everything', { ...EVERYTHING, env: DEPLOYMENT }),
    ];
    const { code, findings } = await cfnLint(files);
    // The only warning allowed is W3005, about a DependsOn that aws-cdk-lib itself writes next
    // to a reference that implies it (harmless, not ours to change): any other finding fails.
    expect(
      findings
        .filter((f) => f.Rule.Id !== 'W3005')
        .map((f) => `${f.Level} ${f.Rule.Id} ${f.Message}`),
    ).toEqual([]);
    expect(new Set(findings.map((f) => f.Filename)).size).toBe(files.length); // it read them all
    expect(code & 2).toBe(0);
  }, 360_000);

  it('does validate the definition: a broken Map is an error', async () => {
    const [, broken] = templates('broken', { minTokenTtl: Duration.hours(12), fanOut: {} }, (d) =>
      d.replace('"ToleratedFailurePercentage":0', '"ToleratedFailurePercentage":"none"'),
    );
    const { code, findings } = await cfnLint([broken as string]);
    expect(
      findings.filter((f) => f.Level === 'Error').map((f) => `${f.Rule.Id} ${f.Message}`),
    ).toEqual([
      "E3601 'none' is not of type 'integer' at 'States/MintShards/ToleratedFailurePercentage'",
    ]);
    expect(code & 2).toBe(2);
  }, 360_000);
});
