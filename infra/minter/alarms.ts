/**
 * The minter's alarms: a failed run, no successful run in two schedule periods, principals IAM
 * does not know, token lifetimes too short for the schedule, accounts S3 refused in the token
 * bucket policy, and a signing root certificate within a year of its end. They read the metrics the
 * function publishes (lambda/handler.ts) under the deployment's own `service` dimension, and
 * notify a topic that CloudWatch is allowed to publish to.
 */

import {
  ArnFormat,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cloudwatchActions,
  Duration,
  aws_iam as iam,
  type aws_lambda as lambda,
  Names,
  Stack,
  type aws_sns as sns,
} from 'aws-cdk-lib';
import type { Construct, IConstruct } from 'constructs';
import { formatDuration } from '../../lambda/core/duration.js';
import { ROOT_RENEW_DAYS, ROOT_WARN_DAYS } from '../../lambda/core/root-certificate.js';

/** Metric namespace the function publishes under (lambda/handler.ts). */
export const METRICS_NAMESPACE = 'regtoken';

/**
 * The `service` dimension (and log field) of one deployment: unique per construct, so two
 * deployments in one account and region never share metrics or trip each other's alarms.
 */
export function serviceNameOf(scope: IConstruct): string {
  return `regtoken-${Names.uniqueId(scope)}`.slice(0, 128);
}

/** The alarms of one minter. */
export interface MinterAlarms {
  /** A run failed: the function errored (RunsFailed or Lambda Errors). */
  readonly failedRuns: cloudwatch.Alarm;
  /** No run succeeded during two schedule periods. */
  readonly noSuccessfulRun: cloudwatch.Alarm;
  /** Some principal in the grants does not exist in IAM, so it got no token. */
  readonly unknownPrincipals: cloudwatch.Alarm;
  /** Some token lifetime in the grants is shorter than 2 × schedule + margin. */
  readonly shortLifetimes: cloudwatch.Alarm;
  /** S3 refused some reader accounts as principals: they were left out of the bucket policy. */
  readonly policyAccountsLeftOut: cloudwatch.Alarm;
  /** The signing root's certificate expires within a year (it is renewed in its last months). */
  readonly rootCertificateExpiring: cloudwatch.Alarm;
}

/**
 * Creates the alarms of the minter `scope` (whose {@link serviceNameOf} the metrics carry) for
 * its function, notifying `topic` when given.
 */
export function createAlarms(
  scope: Construct,
  fn: lambda.IFunction,
  period: Duration,
  topic: sns.ITopic | undefined,
): MinterAlarms {
  const metric = (name: string, statistic: string, alarmPeriod: Duration) =>
    new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: serviceNameOf(scope) },
      statistic,
      period: alarmPeriod,
    });
  const fiveMinutes = Duration.minutes(5);
  const failedRuns = new cloudwatch.MathExpression({
    expression: 'FILL(errors, 0) + FILL(failed, 0)',
    usingMetrics: {
      errors: fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      failed: metric('RunsFailed', 'Sum', fiveMinutes),
    },
    period: fiveMinutes,
    label: 'failed runs',
  }).createAlarm(scope, 'FailedRunsAlarm', {
    alarmDescription:
      'regtoken: a mint run failed (some principal got no new token, or the function errored). See the function logs.',
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const noSuccessfulRun = metric(
    'RunsSucceeded',
    'Sum',
    Duration.seconds(2 * period.toSeconds()),
  ).createAlarm(scope, 'NoSuccessfulRunAlarm', {
    alarmDescription: `regtoken: no successful mint run in two schedule periods (${formatDuration(2 * period.toSeconds())}); tokens expire unless a run succeeds soon.`,
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    evaluationPeriods: 1,
    // No data means no run reported success: that is the condition this alarm is for.
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
  const unknownPrincipals = metric('UnknownPrincipals', 'Maximum', period).createAlarm(
    scope,
    'UnknownPrincipalsAlarm',
    {
      alarmDescription:
        'regtoken: the grants name a role or user that IAM does not know (or spelled differently); it got no token. See the "unknown principal" log lines.',
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    },
  );
  const shortLifetimes = metric('ShortLifetimes', 'Maximum', period).createAlarm(
    scope,
    'ShortLifetimesAlarm',
    {
      alarmDescription:
        'regtoken: the grants give some principal a token lifetime shorter than 2 × schedule + margin; when one scheduled run fails, those tokens expire before they are replaced. See the "token lifetime shorter" log lines for the ttl to raise.',
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    },
  );
  const policyAccountsLeftOut = metric('PolicyAccountsLeftOut', 'Maximum', period).createAlarm(
    scope,
    'PolicyAccountsLeftOutAlarm',
    {
      alarmDescription:
        'regtoken: S3 refused some accounts of the grants as principals of the token bucket policy (MalformedPolicy: Invalid principal), so they were left out and their principals cannot read their tokens. See the "left out of the token bucket policy" log lines for the account IDs to correct.',
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    },
  );
  const rootCertificateExpiring = metric('RootCertificateDaysLeft', 'Minimum', period).createAlarm(
    scope,
    'RootCertificateExpiringAlarm',
    {
      alarmDescription: `regtoken: the signing root's certificate expires within ${ROOT_WARN_DAYS} days. Runs re-issue it under the same KMS key ${ROOT_RENEW_DAYS} days before it ends; registries must then be restarted with the new trust bundle. See docs/tokens.md, "Root certificate renewal".`,
      threshold: ROOT_WARN_DAYS,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    },
  );
  const alarms: MinterAlarms = {
    failedRuns,
    noSuccessfulRun,
    unknownPrincipals,
    shortLifetimes,
    policyAccountsLeftOut,
    rootCertificateExpiring,
  };
  if (topic) {
    allowAlarmsToPublish(topic);
    const action = new cloudwatchActions.SnsAction(topic);
    for (const alarm of Object.values(alarms)) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
  }
  return alarms;
}

/**
 * Lets CloudWatch alarms of this account and region publish to `topic`. A topic with a policy
 * of its own (enforceSSL gives it one) has no SNS default policy, and nothing else allows
 * cloudwatch.amazonaws.com: the alarm would fire and the e-mail never arrive. Scoped with
 * aws:SourceAccount and aws:SourceArn so no other account's alarms can use the topic. For a
 * topic defined elsewhere this adds nothing; its owner must allow the same.
 */
export function allowAlarmsToPublish(topic: sns.ITopic): void {
  const stack = Stack.of(topic);
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsOfThisAccount',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: {
          'aws:SourceArn': stack.formatArn({
            service: 'cloudwatch',
            resource: 'alarm',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
}
