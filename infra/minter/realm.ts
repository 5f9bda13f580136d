/**
 * The token endpoint as a Lambda function URL (the construct's `realm` option): the same
 * handler as `regtoken realm` (lambda/realm-handler.ts), reachable by every client, so the
 * registry's `auth.token.realm` can point at it without a server to run. Its role reads the
 * trust bundle and nothing else; its logs are kept like the minter's; it alarms on errors and
 * throttles.
 */

import {
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  Duration,
  aws_iam as iam,
  aws_lambda as lambda,
  type aws_logs as logs,
  aws_lambda_nodejs as nodejs,
  Stack,
  type aws_s3 as s3,
  type aws_sns as sns,
  Validations,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { acknowledgeRuntime, bundledFunction, roleAndLogs } from './function.js';

/** Settings of the token endpoint (the construct's `realm` prop). */
export interface RealmOptions {
  /**
   * The registry's `auth.token.service` (the tokens' `aud`).
   * @default - `registry.service` of the construct's `grantsFile`; required without one
   */
  readonly service?: string;
  /**
   * The registry's `auth.token.issuer` (the tokens' `iss`).
   * @default - `registry.issuer` of the construct's `grantsFile`; required without one
   */
  readonly issuer?: string;
  /**
   * The function's memory, in MiB (CPU grows with it; verification is one ECDSA check).
   * @default 256
   */
  readonly memorySize?: number;
}

/** What {@link createRealm} makes. */
export interface Realm {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly functionUrl: lambda.FunctionUrl;
  /** The endpoint, `https://…/token`: the registry's `auth.token.realm`. */
  readonly url: string;
  readonly errorsAlarm: cloudwatch.Alarm;
  readonly throttlesAlarm: cloudwatch.Alarm;
}

/** Creates the token endpoint's function, URL, role, logs and alarms in `scope`. */
export function createRealm(
  scope: Construct,
  options: {
    readonly service: string;
    readonly issuer: string;
    readonly tokenBucket: s3.IBucket;
    /** `''` or `prefix/`: where `trust/` is in the token bucket. */
    readonly under: string;
    /** `s3://TOKEN_BUCKET[/PREFIX]`. */
    readonly tokenStoreUrl: string;
    readonly serviceName: string;
    readonly logLevel: string;
    readonly memorySize: number | undefined;
    readonly logRetention: logs.RetentionDays | undefined;
    readonly alarmTopic: sns.ITopic | undefined;
  },
): Realm {
  const { role, logGroup } = roleAndLogs(scope, {
    roleId: 'RealmRole',
    logsId: 'RealmLogs',
    description: 'regtoken token endpoint: reads the trust bundle, nothing else',
    logRetention: options.logRetention,
  });
  // REGTOKEN_TRUST is read from here: the bundle (and the JWKS beside it), public certificates.
  const trust = options.tokenBucket.arnForObjects(`${options.under}trust/*`);
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadTrustBundle',
      actions: ['s3:GetObject'],
      resources: [trust],
    }),
  );
  const bucketId = Stack.of(scope).getLogicalId(
    options.tokenBucket.node.defaultChild as s3.CfnBucket,
  );
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${options.under}trust/*]`,
    reason:
      'trust/* holds only the trust bundle and its JWKS (public certificates); tokens/ and state/ stay out of reach, and the token bucket policy denies every token to anyone but its owner.',
  });

  const fn = new nodejs.NodejsFunction(scope, 'RealmFunction', {
    ...bundledFunction('lambda/realm-handler.ts'),
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize ?? 256,
    timeout: Duration.seconds(10),
    role,
    logGroup,
    description: "regtoken: the registry's token endpoint (auth.token.realm)",
    environment: {
      REGTOKEN_TRUST: options.tokenStoreUrl,
      REGTOKEN_SERVICE: options.service,
      REGTOKEN_ISSUER: options.issuer,
      POWERTOOLS_SERVICE_NAME: options.serviceName,
      POWERTOOLS_LOG_LEVEL: options.logLevel,
      NODE_OPTIONS: '--enable-source-maps',
    },
  });
  acknowledgeRuntime(fn);
  // Docker, containerd and the kubelet cannot sign requests with SigV4: the URL is public, and
  // the token presented as the password is the credential it checks.
  const functionUrl = fn.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });

  const fiveMinutes = Duration.minutes(5);
  const alarm = (id: string, metric: cloudwatch.Metric, description: string) =>
    metric.createAlarm(scope, id, {
      alarmDescription: description,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  const errorsAlarm = alarm(
    'RealmErrorsAlarm',
    fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
    'regtoken token endpoint: the function failed (clients cannot log in). See its logs.',
  );
  const throttlesAlarm = alarm(
    'RealmThrottlesAlarm',
    fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }),
    "regtoken token endpoint: requests were throttled (the account's Lambda concurrency is exhausted); clients fail to log in or pull.",
  );
  if (options.alarmTopic) {
    const action = new cloudwatchActions.SnsAction(options.alarmTopic);
    for (const a of [errorsAlarm, throttlesAlarm]) {
      a.addAlarmAction(action);
      a.addOkAction(action);
    }
  }
  return {
    function: fn,
    role,
    logGroup,
    functionUrl,
    // A function URL ends with '/'.
    url: `${functionUrl.url}token`,
    errorsAlarm,
    throttlesAlarm,
  };
}
