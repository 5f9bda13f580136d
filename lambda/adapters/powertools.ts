/**
 * The logger and metrics ports over Powertools for AWS Lambda, for every Lambda entry point:
 * JSON log lines on stdout, metrics in CloudWatch embedded metric format.
 */

import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Logger as LoggerPort, Metrics as MetricsPort } from '../core/ports.js';

/** The ports a run talks to, writing through this Powertools logger and metrics. */
export function powertoolsPorts(
  logger: Logger,
  metrics: Metrics,
): { log: LoggerPort; metrics: MetricsPort } {
  return {
    log: {
      debug: (m, a) => logger.debug(m, a ?? {}),
      info: (m, a) => logger.info(m, a ?? {}),
      warn: (m, a) => logger.warn(m, a ?? {}),
      error: (m, a) => logger.error(m, a ?? {}),
    },
    metrics: {
      count: (name, value) => metrics.addMetric(name, MetricUnit.Count, value),
      duration: (name, ms) => metrics.addMetric(name, MetricUnit.Milliseconds, ms),
      metadata: (key, value) => metrics.addMetadata(key, value),
    },
  };
}
