/**
 * Minting past one function (the construct's `fanOut` option; docs/aws.md, "Fan-out"): a
 * Standard Step Functions workflow of three functions over the same core
 * (lambda/fan-out-handler.ts):
 *
 *   Plan → skipped? ─yes→ Skipped
 *           └no→ MintShards (Distributed Map over the manifest; one Shard worker per item,
 *                 retried with backoff; no failure tolerated; Catch → Finish)
 *                 → Finish → rerun? ─yes→ StartNextPass ─┐
 *                             └no──────────────────────── Outcome → Done | RunFailed
 *
 * The schedule and the grants object's S3 event (through EventBridge) start an execution
 * instead of invoking a function. Each function and the state machine have a role of their
 * own (fan-out-settings.ts); the state machine may invoke the three functions, read the
 * manifests and start executions of itself (its Map's child workflows and the next pass).
 */

import {
  Aws,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  Duration,
  aws_events as events,
  aws_events_targets as eventsTargets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_lambda_nodejs as nodejs,
  RemovalPolicy,
  Stack,
  type aws_s3 as s3,
  aws_scheduler as scheduler,
  aws_scheduler_targets as schedulerTargets,
  aws_stepfunctions as sfn,
  type aws_sns as sns,
  type aws_sqs as sqs,
  Token,
  aws_stepfunctions_tasks as tasks,
  Validations,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { formatDuration } from '../../lambda/core/duration.js';
import { DEFAULT_SHARD_SIZE, MAX_SHARD_SIZE } from '../../lambda/core/shards.js';
import { under } from './checks.js';
import {
  acknowledgeRuntime,
  bundledFunction,
  failedInvocationsQueue,
  roleAndLogs,
} from './function.js';

/** Settings of a fanned-out run (the construct's `fanOut` prop). */
export interface FanOutOptions {
  /**
   * Principals per shard. Each account is one shard, split further at this size; a shard file
   * holds about 1 KB per principal.
   * @default 5000
   */
  readonly shardSize?: number;
  /**
   * Shards minted at once. One worker writes about 1,300 tokens a second; S3 takes 3,500 writes
   * a second per prefix partition before it splits a busy bucket (docs/performance.md).
   * @default 2
   */
  readonly maxConcurrency?: number;
  /**
   * The longest one execution may run. The run lock's lease is this plus one function's
   * timeout, so no worker outlives it.
   * @default Duration.minutes(30)
   */
  readonly timeout?: Duration;
}

/** The Distributed Map's limit on MaxConcurrency. */
const MAX_CONCURRENCY = 10_000;

/** The settings with their defaults, checked: what synth builds from. */
export function fanOutSettings(options: FanOutOptions): Required<FanOutOptions> {
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  const maxConcurrency = options.maxConcurrency ?? 2;
  const timeout = options.timeout ?? Duration.minutes(30);
  if (!Number.isInteger(shardSize) || shardSize < 1 || shardSize > MAX_SHARD_SIZE)
    throw new Error(
      `RegistryTokenMinter: fanOut.shardSize must be a whole number from 1 to ${MAX_SHARD_SIZE} (got ${shardSize})`,
    );
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > MAX_CONCURRENCY)
    throw new Error(
      `RegistryTokenMinter: fanOut.maxConcurrency must be a whole number from 1 to ${MAX_CONCURRENCY} (got ${maxConcurrency})`,
    );
  const seconds = timeout.toSeconds();
  if (seconds < 60 || seconds > 24 * 3600)
    throw new Error(
      `RegistryTokenMinter: fanOut.timeout must be from 1 minute to 24 hours (got ${formatDuration(seconds)})`,
    );
  return { shardSize, maxConcurrency, timeout };
}

/** One function of the workflow. */
export interface FanOutFunction {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
}

/** What {@link createFanOut} makes. */
export interface FanOut {
  readonly plan: FanOutFunction;
  readonly shard: FanOutFunction;
  readonly finish: FanOutFunction;
  readonly stateMachine: sfn.StateMachine;
  /** Where the schedule and the grants event put a start they could not deliver. */
  readonly deadLetterQueue: sqs.Queue;
  readonly schedule: scheduler.Schedule;
  readonly failedExecutionsAlarm: cloudwatch.Alarm;
  readonly timedOutExecutionsAlarm: cloudwatch.Alarm;
}

/** Creates the functions, the workflow, its triggers and its alarms in `scope`. */
export function createFanOut(
  scope: Construct,
  options: {
    readonly settings: Required<FanOutOptions>;
    /** Each function's timeout. */
    readonly timeout: Duration;
    /** The plan step's memory (it parses and resolves the whole grants file). */
    readonly memorySize: number | undefined;
    readonly logRetention: logs.RetentionDays | undefined;
    readonly period: Duration;
    readonly grants: { readonly bucket: s3.Bucket; readonly key: string };
    readonly tokenBucket: s3.Bucket;
    readonly tokenPrefix: string;
    readonly alarmTopic: sns.ITopic | undefined;
  },
): FanOut {
  const step = (id: string, handler: string, memorySize: number, description: string) =>
    stepFunction(scope, id, {
      handler,
      memorySize,
      description,
      timeout: options.timeout,
      logRetention: options.logRetention,
    });
  const plan = step(
    'Plan',
    'index.plan',
    options.memorySize ?? 2048,
    'regtoken fan-out plan: grants, IAM check, bucket policy, trust bundle, shard files, lock',
  );
  const shard = step(
    'Shard',
    'index.shard',
    1024,
    "regtoken fan-out worker: certifies a key with one KMS Sign, signs and writes one shard's tokens",
  );
  const finish = step(
    'Finish',
    'index.finish',
    512,
    'regtoken fan-out finish: removes stale tokens, sums the shards, releases the lock',
  );
  const stateMachine = workflow(scope, { plan, shard, finish }, options);
  const deadLetterQueue = failedInvocationsQueue(
    scope,
    'This queue is the dead-letter queue of the schedule and of the grants event (starts of the workflow they could not deliver): a queue for it would hold nothing.',
  );
  const schedule = triggers(scope, stateMachine, deadLetterQueue, options);
  // The run's files are removed by the finish step; these are the files of runs that failed,
  // kept for diagnosis.
  options.tokenBucket.addLifecycleRule({
    id: 'ExpireRunFiles',
    prefix: `${under(options.tokenPrefix)}state/runs/`,
    expiration: Duration.days(7),
  });
  const alarm = (id: string, metric: cloudwatch.Metric, description: string) => {
    const a = metric.createAlarm(scope, id, {
      alarmDescription: description,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (options.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(options.alarmTopic);
      a.addAlarmAction(action);
      a.addOkAction(action);
    }
    return a;
  };
  const fiveMinutes = { period: Duration.minutes(5), statistic: 'Sum' };
  return {
    plan,
    shard,
    finish,
    stateMachine,
    deadLetterQueue,
    schedule,
    failedExecutionsAlarm: alarm(
      'FailedExecutionsAlarm',
      stateMachine.metricFailed(fiveMinutes),
      "regtoken: a mint workflow execution failed (a shard failed after its retries, some principal got no new token, or a step errored). See its execution history and the functions' logs.",
    ),
    timedOutExecutionsAlarm: alarm(
      'TimedOutExecutionsAlarm',
      stateMachine.metricTimedOut(fiveMinutes),
      `regtoken: a mint workflow execution ran past its timeout (${formatDuration(options.settings.timeout.toSeconds())}); its lock frees itself when the lease ends. Raise fanOut.timeout or maxConcurrency.`,
    ),
  };
}

function stepFunction(
  scope: Construct,
  id: string,
  o: {
    readonly handler: string;
    readonly memorySize: number;
    readonly description: string;
    readonly timeout: Duration;
    readonly logRetention: logs.RetentionDays | undefined;
  },
): FanOutFunction {
  const { role, logGroup } = roleAndLogs(scope, {
    roleId: `${id}Role`,
    logsId: `${id}Logs`,
    description: o.description,
    logRetention: o.logRetention,
  });
  const fn = new nodejs.NodejsFunction(scope, `${id}Function`, {
    ...bundledFunction('lambda/fan-out-handler.ts'),
    // One bundle, three handlers: the exports of lambda/fan-out-handler.ts.
    handler: o.handler,
    architecture: lambda.Architecture.ARM_64,
    memorySize: o.memorySize,
    timeout: o.timeout,
    role,
    logGroup,
    description: o.description,
    environment: { NODE_OPTIONS: '--enable-source-maps' },
  });
  acknowledgeRuntime(fn);
  return { function: fn, role, logGroup };
}

/**
 * The Map's ItemReader: the manifest whose key the plan step returns. Its read permission is
 * the run folders' manifests only, where aws-cdk-lib would grant every object of the bucket.
 */
class ManifestReader extends sfn.S3JsonItemReader {
  constructor(
    bucket: s3.IBucket,
    private readonly manifests: string,
  ) {
    super({ bucket, key: sfn.JsonPath.stringAt('$.manifest') });
  }

  override providePolicyStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({
        sid: 'ReadManifests',
        actions: ['s3:GetObject'],
        resources: [this.manifests],
      }),
    ];
  }
}

/** A Distributed Map that states its tolerated failures (none), which aws-cdk-lib leaves out at 0. */
class NoFailureMap extends sfn.DistributedMap {
  override toStateJson(queryLanguage?: sfn.QueryLanguage): object {
    return { ...super.toStateJson(queryLanguage), ToleratedFailurePercentage: 0 };
  }
}

function workflow(
  scope: Construct,
  fns: { plan: FanOutFunction; shard: FanOutFunction; finish: FanOutFunction },
  options: {
    readonly settings: Required<FanOutOptions>;
    readonly tokenBucket: s3.IBucket;
    readonly tokenPrefix: string;
    readonly logRetention: logs.RetentionDays | undefined;
  },
): sfn.StateMachine {
  const plan = new tasks.LambdaInvoke(scope, 'Plan', {
    lambdaFunction: fns.plan.function,
    payloadResponseOnly: true,
    payload: sfn.TaskInput.fromObject({
      input: sfn.JsonPath.entirePayload,
      execution: sfn.JsonPath.executionId,
      name: sfn.JsonPath.executionName,
    }),
  });
  const mintShards = new NoFailureMap(scope, 'MintShards', {
    itemReader: new ManifestReader(
      options.tokenBucket,
      options.tokenBucket.arnForObjects(`${under(options.tokenPrefix)}state/runs/*/manifest.json`),
    ),
    itemSelector: {
      run: sfn.JsonPath.stringAt('$.run'),
      // The run lock's holding: each worker joins its lease before it writes.
      lock: sfn.JsonPath.objectAt('$.lock'),
      item: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
    },
    maxConcurrency: options.settings.maxConcurrency,
    mapExecutionType: sfn.StateMachineType.STANDARD,
    // The workers' results are in the run's folder: the state stays small at any size.
    resultPath: sfn.JsonPath.DISCARD,
  });
  mintShards.itemProcessor(
    new tasks.LambdaInvoke(scope, 'Shard', {
      lambdaFunction: fns.shard.function,
      payloadResponseOnly: true,
    }).addRetry({
      // A failed or timed-out worker is run again: it rewrites its keys with new valid tokens.
      errors: [sfn.Errors.ALL],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 3,
      jitterStrategy: sfn.JitterType.FULL,
    }),
  );
  const finish = new tasks.LambdaInvoke(scope, 'Finish', {
    lambdaFunction: fns.finish.function,
    payloadResponseOnly: true,
  });
  // The lock is released whatever happened to the shards.
  mintShards.addCatch(finish, { errors: [sfn.Errors.ALL], resultPath: '$.failure' });
  const outcome = new sfn.Choice(scope, 'Outcome')
    .when(sfn.Condition.stringEquals('$.status', 'succeeded'), new sfn.Succeed(scope, 'Done'))
    .otherwise(new sfn.Fail(scope, 'RunFailed', { errorPath: '$.error', causePath: '$.cause' }));
  const startNextPass = new sfn.CustomState(scope, 'StartNextPass', {
    stateJson: {
      Type: 'Task',
      Resource: `arn:${Aws.PARTITION}:states:::states:startExecution`,
      Parameters: { 'StateMachineArn.$': '$$.StateMachine.Id', 'Input.$': '$.next' },
      ResultPath: null,
    },
  });
  const definition = plan.next(
    new sfn.Choice(scope, 'LockHeld')
      .when(sfn.Condition.booleanEquals('$.skipped', true), new sfn.Succeed(scope, 'Skipped'))
      .otherwise(
        mintShards.next(
          finish.next(
            new sfn.Choice(scope, 'ConfigChanged')
              .when(sfn.Condition.booleanEquals('$.rerun', true), startNextPass.next(outcome))
              .otherwise(outcome),
          ),
        ),
      ),
  );
  const logGroup = new logs.LogGroup(scope, 'WorkflowLogs', {
    retention: options.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const stateMachine = new sfn.StateMachine(scope, 'Workflow', {
    definitionBody: sfn.DefinitionBody.fromChainable(definition),
    stateMachineType: sfn.StateMachineType.STANDARD,
    timeout: options.settings.timeout,
    comment: 'regtoken: one mint run, fanned out over shards of principals',
    // Every state transition, without the states' data (principals, keys of run files).
    logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    tracingEnabled: true,
  });
  acknowledgeWorkflow(scope, stateMachine, fns, options.tokenBucket, options.tokenPrefix);
  return stateMachine;
}

/** The schedule and the grants object's event, each starting an execution. */
function triggers(
  scope: Construct,
  stateMachine: sfn.StateMachine,
  deadLetterQueue: sqs.Queue,
  options: {
    readonly period: Duration;
    readonly grants: { readonly bucket: s3.Bucket; readonly key: string };
  },
): scheduler.Schedule {
  const schedulerRole = new iam.Role(scope, 'ScheduleRole', {
    assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account } },
    }),
    description: 'regtoken: lets EventBridge Scheduler start the mint workflow',
  });
  const schedule = new scheduler.Schedule(scope, 'Schedule', {
    schedule: scheduler.ScheduleExpression.rate(options.period),
    description: `regtoken: re-mint every token every ${formatDuration(options.period.toSeconds())}`,
    target: new schedulerTargets.StepFunctionsStartExecution(stateMachine, {
      role: schedulerRole,
      input: scheduler.ScheduleTargetInput.fromObject({ source: 'regtoken.schedule' }),
      deadLetterQueue,
      // A missed run is superseded by the next one.
      maxEventAge: options.period,
      retryAttempts: 3,
    }),
  });
  // S3 notifications cannot start a workflow; EventBridge can.
  options.grants.bucket.enableEventBridgeNotification();
  new events.Rule(scope, 'GrantsUploaded', {
    description: 'regtoken: mint at once when the grants object is written',
    eventPattern: {
      source: ['aws.s3'],
      detailType: ['Object Created'],
      detail: {
        bucket: { name: [options.grants.bucket.bucketName] },
        object: { key: [options.grants.key] },
      },
    },
    targets: [
      new eventsTargets.SfnStateMachine(stateMachine, {
        deadLetterQueue,
        retryAttempts: 3,
        maxEventAge: Duration.hours(1),
      }),
    ],
  });
  return schedule;
}

/** The cdk-nag findings of the workflow's role, each with its reason. */
function acknowledgeWorkflow(
  scope: Construct,
  stateMachine: sfn.StateMachine,
  fns: { plan: FanOutFunction; shard: FanOutFunction; finish: FanOutFunction },
  tokenBucket: s3.IBucket,
  tokenPrefix: string,
): void {
  const stack = Stack.of(scope);
  const bucketId = stack.getLogicalId(tokenBucket.node.defaultChild as s3.CfnBucket);
  const id = (c: Construct) => stack.getLogicalId(c.node.defaultChild as lambda.CfnFunction);
  const stateMachineId = stack.getLogicalId(stateMachine.node.defaultChild as sfn.CfnStateMachine);
  // cdk-nag names a pseudo parameter <AWS::…> unless the stack's environment is concrete.
  const name = (v: string, placeholder: string) =>
    Token.isUnresolved(v) ? `<AWS::${placeholder}>` : v;
  const executions = `arn:${name(stack.partition, 'Partition')}:states:${name(stack.region, 'Region')}:${name(stack.account, 'AccountId')}:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stateMachineId}"}]}]}`;
  Validations.of(stateMachine).acknowledge(
    ...[fns.plan, fns.shard, fns.finish].map((f) => ({
      id: `AwsSolutions-IAM5[Resource::<${id(f.function)}.Arn>:*]`,
      reason:
        "aws-cdk-lib's LambdaInvoke allows lambda:InvokeFunction on this one function and its qualified ARNs (versions, aliases: ':*'); no other function.",
    })),
    {
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${under(tokenPrefix)}state/runs/*/manifest.json]`,
      reason:
        "The Distributed Map reads the manifest of each run (state/runs/RUN/manifest.json, RUN being the execution's name): manifests only, no shard, token or other file.",
    },
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Log delivery to CloudWatch Logs (logs:CreateLogDelivery and its kin) and X-Ray (xray:PutTraceSegments and its kin) accept only "*" as a resource.',
    },
    {
      id: `AwsSolutions-IAM5[Resource::${executions}:*]`,
      reason:
        'The Distributed Map describes and stops its own child executions, whose names Step Functions makes at run time: executions of this state machine only.',
    },
    {
      id: `AwsSolutions-IAM5[Resource::${executions}/*:*]`,
      reason:
        'The Distributed Map redrives its own child executions (named at run time by Step Functions): executions of this state machine only.',
    },
  );
}
