/**
 * The scheduled Lambda function: the same mint run as `regtoken mint`, with its settings from
 * the environment (read once, on the first invocation) and its logs and metrics through
 * Powertools for AWS Lambda (JSON on stdout; metrics in CloudWatch embedded metric format).
 *
 * It is invoked by EventBridge Scheduler and by S3 notifications on the grants object. The
 * event only says *that* something happened: each run reads the latest grants itself, under
 * the run lock, so duplicated or reordered events are harmless. A run in which some principal
 * got no new token throws, so Lambda's retries, the failure destination and the alarms see it.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { AwsClients } from './adapters/aws.js';
import { powertoolsPorts } from './adapters/powertools.js';
import { readEnv } from './env.js';
import { ConfigError, RunIncompleteError } from './errors.js';
import { describeTrigger, lambdaSettings } from './lambda-env.js';
import { type RunSettings, runMint } from './run.js';
import { awsSide } from './run-aws.js';
import { GrantsCache } from './steps/plan.js';

export { lambdaSettings } from './lambda-env.js';

/** What a run reports back to the invoker (also logged). */
export interface HandlerResult {
  readonly skipped: boolean;
  readonly configVersion?: string | undefined;
  readonly minted?: number;
  readonly removed?: number;
  readonly unknown?: number;
  readonly passes?: number;
}

/** Builds a handler around injected settings and clients (tests) or the environment (Lambda). */
export function createHandler(
  options: {
    settings?: () => RunSettings;
    aws?: AwsClients;
    logger?: Logger;
    metrics?: Metrics;
    clock?: () => Date;
  } = {},
) {
  const defaults = readEnv();
  const logger = options.logger ?? new Logger({ serviceName: defaults.serviceName });
  const metrics =
    options.metrics ??
    new Metrics({ namespace: defaults.metricsNamespace, serviceName: defaults.serviceName });
  const aws = awsSide(options.aws ?? new AwsClients());
  // One per handler, so one per warm container: the scheduled runs of an unchanged grants
  // object parse it once.
  const grantsCache = new GrantsCache();
  let settings: RunSettings | undefined;

  const { log, metrics: metricsPort } = powertoolsPorts(logger, metrics);

  return async (event: unknown, context?: Context): Promise<HandlerResult> => {
    if (context) logger.addContext(context);
    logger.info('run started', { trigger: describeTrigger(event) });
    try {
      settings ??= (options.settings ?? (() => lambdaSettings(readEnv())))();
      const run = await runMint(settings, {
        aws,
        grantsCache,
        logger: log,
        metrics: metricsPort,
        ...(options.clock ? { clock: options.clock } : {}),
      });
      if (run.skipped) {
        metrics.addMetric('RunsSkipped', MetricUnit.Count, 1);
        return { skipped: true };
      }
      const { result } = run;
      if (result.failed.length) {
        metrics.addMetric('RunsFailed', MetricUnit.Count, 1);
        throw new RunIncompleteError(
          `${result.failed.length} principal(s) got no new token: ${result.failed.map((f) => `${f.principal}: ${f.reason}`).join('; ')}`,
          result.failed.map((f) => f.principal),
        );
      }
      metrics.addMetric('RunsSucceeded', MetricUnit.Count, 1);
      return {
        skipped: false,
        configVersion: result.configVersion,
        minted: result.tokens.length,
        removed: result.removed.length,
        unknown: result.unknown.length,
        passes: run.passes,
      };
    } catch (err) {
      if (!(err instanceof RunIncompleteError))
        metrics.addMetric('RunsFailed', MetricUnit.Count, 1);
      // A bad grants file: every problem as file:line:col, nothing written.
      if (err instanceof ConfigError)
        logger.error('grants file invalid; nothing written', { issues: err.message.split('\n') });
      else
        logger.error('run failed', {
          error: (err as Error).message,
          code: (err as { code?: string }).code,
        });
      throw err;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

/** The Lambda entry point. */
export const handler = createHandler();
