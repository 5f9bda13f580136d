/**
 * The token endpoint behind an AWS Lambda function URL: the same {@link handleRealmRequest} as
 * `regtoken realm`, with function-URL events (payload 2.0) in and out. Settings come from the
 * environment (REGTOKEN_TRUST, REGTOKEN_SERVICE, REGTOKEN_ISSUER), read on the first
 * invocation. The trust bundle is read from the token bucket then, and looked at again (a
 * conditional GET) at most once a minute by a warm container.
 */

import { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyStructuredResultV2, LambdaFunctionURLEvent } from 'aws-lambda';
import { MAX_ATTEMPTS } from './adapters/aws.js';
import { jsonLogger } from './adapters/log.js';
import { S3TrustSource, TrustCache, type TrustSource } from './adapters/trust-source.js';
import type { Logger } from './core/ports.js';
import {
  handleRealmRequest,
  MAX_REQUEST_BYTES,
  type RealmEvent,
  type RealmSettings,
} from './core/realm.js';
import { readEnv, required } from './env.js';

/** What the handler answers: a function URL's structured result. */
type UrlResult = APIGatewayProxyStructuredResultV2;

/** How often a warm function looks for a new trust bundle. */
export const LAMBDA_TRUST_REFRESH_MS = 60_000;

export interface RealmHandlerOptions {
  readonly settings?: () => RealmSettings & { readonly trust: TrustSource };
  readonly logger?: Logger;
  readonly clock?: () => Date;
}

function settingsFromEnv(): RealmSettings & { trust: TrustSource } {
  const env = readEnv();
  return {
    service: required(env.service, 'REGTOKEN_SERVICE'),
    issuer: required(env.issuer, 'REGTOKEN_ISSUER'),
    trust: new S3TrustSource(
      new S3Client({ maxAttempts: MAX_ATTEMPTS }),
      required(env.trust, 'REGTOKEN_TRUST'),
    ),
  };
}

function tooLarge(status: 413 | 431, what: string): UrlResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify({
      errors: [{ code: 'TOO_LARGE', message: `${what} larger than ${MAX_REQUEST_BYTES} bytes` }],
    }),
  };
}

/** Builds a function-URL handler around injected settings (tests) or the environment. */
export function createRealmHandler(options: RealmHandlerOptions = {}) {
  const env = readEnv();
  const logger = options.logger ?? jsonLogger(env.serviceName);
  let state: { settings: RealmSettings; trust: TrustCache } | undefined;

  return async (event: LambdaFunctionURLEvent): Promise<UrlResult> => {
    const http = event.requestContext.http;
    const audit = (e: RealmEvent) => logger.info('token request', { ...e });
    if (!state) {
      const { trust, ...settings } = (options.settings ?? settingsFromEnv)();
      state = {
        settings,
        trust: new TrustCache(trust, {
          refreshMs: LAMBDA_TRUST_REFRESH_MS,
          logger,
          ...(options.clock ? { clock: () => (options.clock as () => Date)().getTime() } : {}),
        }),
      };
    }
    const headers: Record<string, string | undefined> = {};
    let headerBytes = event.rawPath.length + (event.rawQueryString ?? '').length;
    for (const [name, value] of Object.entries(event.headers ?? {})) {
      headers[name.toLowerCase()] = value;
      headerBytes += name.length + (value?.length ?? 0) + 4;
    }
    const body = event.body
      ? event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body
      : '';
    const base = { method: http.method, path: event.rawPath, client: http.sourceIp };
    if (headerBytes > MAX_REQUEST_BYTES) {
      audit({ ...base, status: 431, outcome: 'invalid', reason: 'size' });
      return tooLarge(431, 'request headers are');
    }
    if (Buffer.byteLength(body) > MAX_REQUEST_BYTES) {
      audit({ ...base, status: 413, outcome: 'invalid', reason: 'size' });
      return tooLarge(413, 'the body is');
    }
    const verifier = await state.trust.refreshIfStale();
    const { response, event: record } = handleRealmRequest(
      {
        method: http.method,
        path: event.rawPath,
        query: event.rawQueryString ?? '',
        headers,
        body,
        client: http.sourceIp,
      },
      verifier,
      state.settings,
      (options.clock ?? (() => new Date()))(),
    );
    audit(record);
    return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
  };
}

/** The Lambda entry point. */
export const handler = createRealmHandler();
