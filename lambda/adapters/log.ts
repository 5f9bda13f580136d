/**
 * Logs as JSON lines on stdout, one event per line, in the shape of Powertools for AWS
 * Lambda's Logger (`level`, `message`, `timestamp`, `service`, then the attributes): the same
 * format in a Lambda function and in a long-running `regtoken` server, so one log pipeline
 * reads both.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import type { Logger as LoggerPort } from '../core/ports.js';

/** A {@link LoggerPort} writing Powertools JSON lines for `serviceName` (Lambda functions). */
export function jsonLogger(serviceName: string): LoggerPort {
  const logger = new Logger({ serviceName });
  return {
    debug: (m, a) => logger.debug(m, a ?? {}),
    info: (m, a) => logger.info(m, a ?? {}),
    warn: (m, a) => logger.warn(m, a ?? {}),
    error: (m, a) => logger.error(m, a ?? {}),
  };
}

/**
 * The same lines written directly (no debug level): for the token endpoint's server, which logs
 * every request, and for which Powertools' per-line work costs as much as verifying a token.
 */
export function jsonLineLogger(
  serviceName: string,
  write: (line: string) => void = (line) => process.stdout.write(line),
): LoggerPort {
  const line = (level: string) => (message: string, attributes?: Record<string, unknown>) =>
    write(
      `${JSON.stringify({ level, message, timestamp: new Date().toISOString(), service: serviceName, ...attributes })}\n`,
    );
  return { debug() {}, info: line('INFO'), warn: line('WARN'), error: line('ERROR') };
}
