/**
 * Logs as JSON lines on stdout through Powertools for AWS Lambda's Logger: the same format in
 * a Lambda function and in a long-running `regtoken` server, so one log pipeline reads both.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import type { Logger as LoggerPort } from '../core/ports.js';

/** A {@link LoggerPort} writing Powertools JSON lines for `serviceName`. */
export function jsonLogger(serviceName: string): LoggerPort {
  const logger = new Logger({ serviceName });
  return {
    debug: (m, a) => logger.debug(m, a ?? {}),
    info: (m, a) => logger.info(m, a ?? {}),
    warn: (m, a) => logger.warn(m, a ?? {}),
    error: (m, a) => logger.error(m, a ?? {}),
  };
}
