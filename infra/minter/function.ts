/**
 * The minting function and its triggers: its role, log group and failure destination, the
 * bundled function itself (lambda/handler.ts, local esbuild), the schedule that re-mints every
 * token, the S3 notification on the grants object, and the optional upload of grants kept in
 * this repository.
 */

import { fileURLToPath } from 'node:url';
import {
  Duration,
  aws_lambda_destinations as destinations,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_lambda_nodejs as nodejs,
  RemovalPolicy,
  Stack,
  aws_s3 as s3,
  aws_s3_deployment as s3deploy,
  aws_s3_notifications as s3n,
  aws_scheduler as scheduler,
  aws_scheduler_targets as schedulerTargets,
  aws_sqs as sqs,
  Validations,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { formatDuration } from '../../lambda/core/duration.js';

/** The repository root, found from this file so the construct works from any working directory. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The function and what it runs with. */
export interface MinterFunction {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly deadLetterQueue: sqs.Queue;
}

/**
 * A function's execution role and its log group (retained), with the one statement every
 * regtoken function needs: writing its own logs, scoped to this log group instead of the
 * AWSLambdaBasicExecutionRole managed policy (logs:* on every log group).
 */
export function roleAndLogs(
  scope: Construct,
  options: {
    readonly roleId: string;
    readonly logsId: string;
    readonly description: string;
    readonly logRetention: logs.RetentionDays | undefined;
  },
): { role: iam.Role; logGroup: logs.LogGroup } {
  const role = new iam.Role(scope, options.roleId, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: options.description,
  });
  const logGroup = new logs.LogGroup(scope, options.logsId, {
    retention: options.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'WriteLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }),
  );
  return { role, logGroup };
}

/**
 * The queue that keeps the events regtoken could not deliver or handle (`FailedInvocations`):
 * encrypted, TLS only, kept 14 days. It is itself a dead-letter queue (`why`), so it has none.
 */
export function failedInvocationsQueue(scope: Construct, why: string): sqs.Queue {
  const queue = new sqs.Queue(scope, 'FailedInvocations', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: why });
  return queue;
}

/** Creates the function, its role (with only its log statement so far) and its log group. */
export function createFunction(
  scope: Construct,
  options: {
    readonly timeout: Duration;
    readonly memorySize: number | undefined;
    readonly logRetention: logs.RetentionDays | undefined;
  },
): MinterFunction {
  const { role, logGroup } = roleAndLogs(scope, {
    roleId: 'Role',
    logsId: 'Logs',
    description: 'regtoken minter: reads the grants, writes tokens and the token bucket policy',
    logRetention: options.logRetention,
  });
  const deadLetterQueue = failedInvocationsQueue(
    scope,
    "This queue is the function's on-failure destination (and the schedule's dead-letter queue): it is the dead-letter queue, a queue for it would hold nothing.",
  );

  const fn = new nodejs.NodejsFunction(scope, 'Function', {
    ...bundledFunction('lambda/handler.ts'),
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize ?? 512,
    timeout: options.timeout,
    role,
    logGroup,
    description: 'regtoken: mints a registry token for every principal in the grants file',
    // Overlapping runs are handled by the run lock in the token bucket, not by reserved
    // concurrency (which fails to deploy on accounts with little unreserved concurrency).
    onFailure: new destinations.SqsDestination(deadLetterQueue),
    retryAttempts: 2,
    maxEventAge: Duration.hours(1),
    environment: { NODE_OPTIONS: '--enable-source-maps' },
  });
  acknowledgeRuntime(fn);
  return { function: fn, role, logGroup, deadLetterQueue };
}

/**
 * How every regtoken function is built and run: an entry under lambda/, bundled with local
 * esbuild (never Docker) into ES modules, `index.mjs` and the chunks it loads on demand, on the
 * Node.js runtime the project is tested on.
 */
export function bundledFunction(
  entry: string,
): Pick<
  nodejs.NodejsFunctionProps,
  'entry' | 'handler' | 'projectRoot' | 'depsLockFilePath' | 'runtime' | 'bundling'
> {
  return {
    entry: `${ROOT}${entry}`,
    handler: 'handler',
    projectRoot: ROOT,
    depsLockFilePath: `${ROOT}package-lock.json`,
    runtime: lambda.Runtime.NODEJS_22_X,
    bundling: {
      // Local esbuild (a dev dependency) only: synth must never need Docker.
      forceDockerBundling: false,
      format: nodejs.OutputFormat.ESM,
      target: BUILD.target,
      mainFields: BUILD.mainFields,
      // Bundle the AWS SDK too, so the function runs the SDK version the tests ran.
      bundleAwsSDK: true,
      minify: BUILD.minify,
      sourceMap: BUILD.sourcemap,
      sourcesContent: BUILD.sourcesContent,
      banner: BUILD.banner.js,
      // NodejsFunction writes one file; this bundles the entry again, split at its dynamic
      // imports, so what a run never loads is not compiled on every cold start (about 50 ms
      // less, docs/performance.md). Same options; the entry stays index.mjs.
      commandHooks: {
        beforeBundling: () => [],
        beforeInstall: () => [],
        afterBundling: (_inputDir, outputDir) => [
          [
            'node',
            `${ROOT}scripts/bundle-function.mjs`,
            `${ROOT}${entry}`,
            outputDir,
            JSON.stringify(BUILD),
          ]
            .map(shellQuote)
            .join(' '),
        ],
      },
    },
  };
}

/** The esbuild options of every function bundle (both passes of {@link bundledFunction}). */
const BUILD = {
  target: 'node22',
  mainFields: ['module', 'main'],
  minify: true,
  sourcemap: true,
  // Stack traces name file:line:column from the map's mappings; the sources themselves are not
  // needed, and without them the map is a third of the size and --enable-source-maps costs
  // about 85 ms less on a cold start (docs/performance.md).
  sourcesContent: false,
  // Some bundled CommonJS dependencies call require() for Node built-ins, which an ES module
  // does not have.
  banner: {
    js: "import { createRequire as __regtokenCreateRequire } from 'node:module'; const require = __regtokenCreateRequire(import.meta.url);",
  },
};

/** One word for bash -c, whatever it holds. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** The cdk-nag acknowledgement of the pinned runtime, for every regtoken function. */
export function acknowledgeRuntime(fn: lambda.IFunction): void {
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'Pinned to nodejs22.x, the runtime regtoken is built and tested for (esbuild target node22); it moves with the project, not with each new Lambda runtime.',
  });
}

/** The schedule, and the S3 notification that mints when the grants object is written. */
export function createTriggers(
  scope: Construct,
  minter: MinterFunction,
  grants: { readonly bucket: s3.Bucket; readonly key: string },
  period: Duration,
): scheduler.Schedule {
  const schedulerRole = new iam.Role(scope, 'ScheduleRole', {
    assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account } },
    }),
    description: 'regtoken: lets EventBridge Scheduler invoke the minter',
  });
  Validations.of(schedulerRole).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${Stack.of(scope).getLogicalId(minter.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
    reason:
      "aws-cdk-lib's grantInvoke allows lambda:InvokeFunction on this one function and its qualified ARNs (versions, aliases: ':*'); no other function.",
  });
  const schedule = new scheduler.Schedule(scope, 'Schedule', {
    schedule: scheduler.ScheduleExpression.rate(period),
    description: `regtoken: re-mint every token every ${formatDuration(period.toSeconds())}`,
    target: new schedulerTargets.LambdaInvoke(minter.function, {
      role: schedulerRole,
      input: scheduler.ScheduleTargetInput.fromObject({ source: 'regtoken.schedule' }),
      deadLetterQueue: minter.deadLetterQueue,
      // A missed run is superseded by the next one.
      maxEventAge: period,
      retryAttempts: 3,
    }),
  });
  grants.bucket.addEventNotification(
    s3.EventType.OBJECT_CREATED,
    new s3n.LambdaDestination(minter.function),
    // Prefix and suffix both equal to the key: only the grants object itself.
    { prefix: grants.key, suffix: grants.key },
  );
  return schedule;
}

/** Uploads grants kept in this repository with the stack (the grantsFile prop). */
export function deployGrants(
  scope: Construct,
  grants: { readonly bucket: s3.Bucket; readonly key: string },
  text: string,
): void {
  const deployment = new s3deploy.BucketDeployment(scope, 'Grants', {
    sources: [s3deploy.Source.data(grants.key, text)],
    destinationBucket: grants.bucket,
    // Manage the grants object only: never delete anything else in the bucket, and leave
    // the last grants in place if this deployment is removed.
    prune: false,
    retainOnDelete: true,
    contentType: 'application/yaml',
  });
  // Upload after the notification exists, so the upload mints at once.
  deployment.node.addDependency(grants.bucket);
}
