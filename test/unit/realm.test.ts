import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LambdaFunctionURLEvent } from 'aws-lambda';
import type { TrustSource } from '../../lambda/adapters/trust-source.js';
import type { Logger } from '../../lambda/core/ports.js';
import {
  handleRealmRequest,
  MAX_REQUEST_BYTES,
  type RealmRequest,
} from '../../lambda/core/realm.js';
import { parseTrustBundle } from '../../lambda/core/trust.js';
import { TokenVerifier } from '../../lambda/core/verify.js';
import { createRealmHandler } from '../../lambda/realm-handler.js';
import { registryClaims, signJws } from '../helpers/jws.js';
import { makeRoot, type TestCert } from '../helpers/pki.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { libtrustKeyId } from '../helpers/tokens.js';

/**
 * The token endpoint's protocol, one row per request. Every row runs twice: through the pure
 * handler, and through the Lambda function-URL adapter with the request as a function-URL
 * event (the POST bodies base64-encoded, as function URLs deliver them).
 */

const SERVICE = 'registry.test';
const SETTINGS = { service: SERVICE, issuer: 'regtoken' };

let dir: string;
let root: TestCert;
let other: TestCert;
let verifier: TokenVerifier;
let NOW: Date;

beforeAll(async () => {
  dir = await makeTempDir('realm');
  root = await makeRoot(dir, 'root');
  other = await makeRoot(dir, 'other');
  verifier = new TokenVerifier(parseTrustBundle(root.pem, 'bundle.pem'));
  NOW = new Date();
}, 60_000);

afterAll(async () => {
  await removeTempDir(dir);
});

const seconds = () => Math.floor(NOW.getTime() / 1000);
const tokenBy = (cert: TestCert, overrides: Record<string, unknown> = {}) =>
  signJws(
    { alg: 'ES256', typ: 'JWT', kid: libtrustKeyId(createPublicKey(cert.privateKey)) },
    registryClaims(NOW, { aud: SERVICE, ...overrides }),
    cert.privateKey,
  );
const good = () => tokenBy(root);
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = 'application/x-www-form-urlencoded';

interface Case {
  readonly name: string;
  readonly request: () => Partial<RealmRequest>;
  readonly status: number;
  /** The error code, or the exact keys of a 200 body. */
  readonly expect: string | readonly string[];
}

const GET_KEYS = ['access_token', 'expires_in', 'issued_at', 'token'];
const POST_KEYS = ['access_token', 'expires_in', 'issued_at', 'scope'];

const cases: Case[] = [
  {
    name: 'GET with Basic and scopes (docker pull, skopeo --creds)',
    request: () => ({
      query: `service=${SERVICE}&scope=repository:team-a/app:pull&scope=repository:team-a/app:push`,
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 200,
    expect: GET_KEYS,
  },
  {
    name: 'GET with no scope (docker login)',
    request: () => ({
      query: `account=regtoken&client_id=docker&offline_token=true&service=${SERVICE}`,
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 200,
    expect: GET_KEYS,
  },
  {
    name: 'GET with any username',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('someone', good()) },
    }),
    status: 200,
    expect: GET_KEYS,
  },
  {
    name: 'POST grant_type=password (containerd, BuildKit)',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': `${FORM}; charset=utf-8` },
      body: form({
        grant_type: 'password',
        username: 'regtoken',
        password: good(),
        service: SERVICE,
        scope: 'repository:team-a/app:pull repository:other:pull',
        client_id: 'containerd-client',
      }),
    }),
    status: 200,
    expect: POST_KEYS,
  },
  {
    name: 'POST grant_type=refresh_token with access_type=offline (containers/image)',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: form({
        grant_type: 'refresh_token',
        refresh_token: good(),
        service: SERVICE,
        access_type: 'offline',
        client_id: 'containers/image',
      }),
    }),
    status: 200,
    expect: POST_KEYS,
  },
  {
    name: 'GET without credentials',
    request: () => ({ query: `service=${SERVICE}` }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'GET with a random password',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('regtoken', 'hunter2') },
    }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'GET with an expired token',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('regtoken', tokenBy(root, { exp: seconds() - 10 })) },
    }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'GET with a token of another key',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('regtoken', tokenBy(other)) },
    }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'GET with a token for another service',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('regtoken', tokenBy(root, { aud: 'other.test' })) },
    }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'POST password grant with an expired token',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: form({
        grant_type: 'password',
        username: 'x',
        password: tokenBy(root, { exp: seconds() - 10 }),
        service: SERVICE,
      }),
    }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'POST password grant without a password',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: form({ grant_type: 'password', username: 'regtoken', service: SERVICE }),
    }),
    status: 401,
    expect: 'UNAUTHORIZED',
  },
  {
    name: 'a Bearer Authorization header',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: `Bearer ${good()}` },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'Basic credentials that are not base64',
    request: () => ({ query: `service=${SERVICE}`, headers: { authorization: 'Basic ***' } }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'Basic credentials without a colon',
    request: () => ({
      query: `service=${SERVICE}`,
      headers: { authorization: `Basic ${Buffer.from('regtoken').toString('base64')}` },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'no service',
    request: () => ({
      query: 'scope=repository:a:pull',
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'another service',
    request: () => ({
      query: 'service=other.test',
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'two service parameters',
    request: () => ({
      query: `service=${SERVICE}&service=${SERVICE}`,
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'a malformed scope',
    request: () => ({
      query: `service=${SERVICE}&scope=repository`,
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'too many scopes',
    request: () => ({
      query: `service=${SERVICE}&${Array.from({ length: 65 }, (_, i) => `scope=repository:r${i}:pull`).join('&')}`,
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'bad percent-encoding in the query',
    request: () => ({
      query: `service=${SERVICE}&scope=%zz`,
      headers: { authorization: basic('regtoken', good()) },
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'POST with a JSON body',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', password: good(), service: SERVICE }),
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'POST with grant_type=client_credentials',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: form({ grant_type: 'client_credentials', service: SERVICE }),
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'POST without grant_type',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: form({ password: good(), service: SERVICE }),
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'POST with bad form encoding',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: 'grant_type=password&password=%E0%A4%A',
    }),
    status: 400,
    expect: 'INVALID_REQUEST',
  },
  {
    name: 'POST with a body over the limit',
    request: () => ({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: `a=${'x'.repeat(MAX_REQUEST_BYTES)}`,
    }),
    status: 413,
    expect: 'TOO_LARGE',
  },
  { name: 'PUT', request: () => ({ method: 'PUT' }), status: 405, expect: 'UNSUPPORTED' },
  { name: 'DELETE', request: () => ({ method: 'DELETE' }), status: 405, expect: 'UNSUPPORTED' },
  { name: 'another path', request: () => ({ path: '/v2/' }), status: 404, expect: 'NOT_FOUND' },
];

function request(partial: Partial<RealmRequest>): RealmRequest {
  return {
    method: 'GET',
    path: '/token',
    query: '',
    headers: {},
    body: '',
    client: '192.0.2.7',
    ...partial,
  };
}

function urlEvent(r: RealmRequest, base64: boolean): LambdaFunctionURLEvent {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: r.path,
    rawQueryString: r.query,
    headers: Object.fromEntries(
      Object.entries(r.headers).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    requestContext: {
      accountId: 'anonymous',
      apiId: 'realm',
      domainName: 'realm.lambda-url.eu-west-1.on.aws',
      domainPrefix: 'realm',
      http: {
        method: r.method,
        path: r.path,
        protocol: 'HTTP/1.1',
        sourceIp: r.client,
        userAgent: 'test',
      },
      requestId: 'id',
      routeKey: '$default',
      stage: '$default',
      time: '30/Nov/2026:00:00:00 +0000',
      timeEpoch: 0,
    },
    ...(r.body
      ? { body: base64 ? Buffer.from(r.body).toString('base64') : r.body, isBase64Encoded: base64 }
      : { isBase64Encoded: false }),
  } as LambdaFunctionURLEvent;
}

function memoryLogger(): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const push = (message: string, attributes?: Record<string, unknown>) =>
    lines.push({ message, ...attributes });
  return { lines, debug: push, info: push, warn: push, error: push };
}

function lambdaFor(pem: () => string) {
  const logger = memoryLogger();
  const source: TrustSource = {
    name: 'memory',
    read: async (since) => (since === 'v1' ? 'unchanged' : { text: pem(), version: 'v1' }),
  };
  const handler = createRealmHandler({
    settings: () => ({ ...SETTINGS, trust: source }),
    logger,
    clock: () => NOW,
  });
  return { handler, logger };
}

describe('the token endpoint', () => {
  it.each(cases)('$name → $status', async (c) => {
    const req = request(c.request());
    const { response, event } = handleRealmRequest(req, verifier, SETTINGS, NOW);
    expect(response.status).toBe(c.status);
    const body = JSON.parse(response.body) as Record<string, unknown>;
    if (typeof c.expect === 'string') {
      expect(body).toEqual({ errors: [{ code: c.expect, message: expect.any(String) }] });
    } else {
      expect(Object.keys(body).sort()).toEqual([...c.expect]);
    }
    expect(response.headers['cache-control']).toBe('no-store');
    expect(event.status).toBe(c.status);
    // A token, password or header value never reaches the log or an error message.
    const secrets = [req.headers.authorization, ...new URLSearchParams(req.body).values()].filter(
      (v): v is string => typeof v === 'string' && v.length > 20,
    );
    for (const secret of secrets) {
      expect(JSON.stringify(event)).not.toContain(secret);
      if (c.status !== 200) expect(response.body).not.toContain(secret);
    }

    // The same request through the Lambda function URL adapter, body base64-encoded.
    const { handler } = lambdaFor(() => root.pem);
    const result = await handler(urlEvent(req, true));
    expect(result.statusCode).toBe(c.status);
    expect(JSON.parse(result.body ?? '')).toEqual(
      typeof c.expect === 'string'
        ? { errors: [{ code: c.expect, message: expect.any(String) }] }
        : expect.objectContaining(Object.fromEntries(c.expect.map((k) => [k, expect.anything()]))),
    );
  });

  it('answers GET with the token unchanged and the time it has left', () => {
    const token = good();
    const { response } = handleRealmRequest(
      request({
        query: `service=${SERVICE}`,
        headers: { authorization: basic('regtoken', token) },
      }),
      verifier,
      SETTINGS,
      NOW,
    );
    expect(JSON.parse(response.body)).toEqual({
      token,
      access_token: token,
      expires_in: 3600,
      issued_at: new Date(seconds() * 1000).toISOString().replace('.000', ''),
    });
  });

  it('answers POST with the requested scopes the token allows, and never a refresh token', () => {
    const token = good();
    const { response, event } = handleRealmRequest(
      request({
        method: 'POST',
        headers: { 'content-type': FORM },
        body: form({
          grant_type: 'password',
          username: 'regtoken',
          password: token,
          service: SERVICE,
          access_type: 'offline',
          scope: 'repository:team-a/app:pull,push,delete repository:other:pull',
        }),
      }),
      verifier,
      SETTINGS,
      NOW,
    );
    const body = JSON.parse(response.body) as Record<string, unknown>;
    expect(body).toEqual({
      access_token: token,
      scope: 'repository:team-a/app:pull,push',
      expires_in: 3600,
      issued_at: expect.any(String),
    });
    expect(body).not.toHaveProperty('refresh_token');
    expect(event).toMatchObject({
      outcome: 'issued',
      sub: 'arn:aws:iam::111122223333:role/ci-runner',
      jti: 'jti-1',
      grantType: 'password',
      scopes: ['repository:team-a/app:pull,push,delete', 'repository:other:pull'],
      granted: ['repository:team-a/app:pull,push'],
      client: '192.0.2.7',
    });
  });

  it('tells the client what to do with a refused token, with a Basic challenge', () => {
    const { response, event } = handleRealmRequest(
      request({
        query: `service=${SERVICE}`,
        headers: { authorization: basic('regtoken', tokenBy(root, { exp: seconds() + 30 })) },
      }),
      verifier,
      SETTINGS,
      NOW,
    );
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Basic realm="regtoken", charset="UTF-8"');
    const message = (JSON.parse(response.body) as { errors: { message: string }[] }).errors[0]
      ?.message;
    expect(message).toMatch(
      /^the token expires at .*, in less than 60 seconds: fetch a fresh one \(regtoken token\) and log in again with username regtoken, or run regtoken login again$/,
    );
    expect(event).toMatchObject({
      outcome: 'refused',
      reason: 'expiring',
      sub: 'arn:aws:iam::111122223333:role/ci-runner',
    });
  });

  it('answers 503 with Retry-After until a trust bundle is loaded', () => {
    const { response, event } = handleRealmRequest(
      request({
        query: `service=${SERVICE}`,
        headers: { authorization: basic('regtoken', good()) },
      }),
      undefined,
      SETTINGS,
      NOW,
    );
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('10');
    expect(event.outcome).toBe('unavailable');
  });

  it('reports its health and trust bundle on /healthz', () => {
    const { response } = handleRealmRequest(request({ path: '/healthz' }), verifier, SETTINGS, NOW);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({
      status: 'ok',
      roots: 1,
      trust: verifier.trust.fingerprint,
    });
  });

  it('escapes control characters from the request in messages and logs', () => {
    const { response, event } = handleRealmRequest(
      request({
        query: `service=${SERVICE}&scope=%1B%5D0%3Bowned%07`,
        headers: { authorization: basic('regtoken', good()) },
      }),
      verifier,
      SETTINGS,
      NOW,
    );
    expect(response.status).toBe(400);
    expect(response.body).not.toContain('\u001b');
    expect(response.body).toContain('\\\\x1b]0;owned\\\\x07');
    expect(JSON.stringify(event)).not.toContain('\\u001b]');
  });
});

describe('the Lambda function URL adapter', () => {
  it('refuses headers over the limit with 431', async () => {
    const { handler, logger } = lambdaFor(() => root.pem);
    const req = request({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('regtoken', 'x'.repeat(MAX_REQUEST_BYTES)) },
    });
    const result = await handler(urlEvent(req, false));
    expect(result.statusCode).toBe(431);
    expect(logger.lines.at(-1)).toMatchObject({
      message: 'token request',
      status: 431,
      reason: 'size',
    });
  });

  it('reads plain (not base64) bodies too', async () => {
    const { handler } = lambdaFor(() => root.pem);
    const req = request({
      method: 'POST',
      headers: { 'content-type': FORM },
      body: form({
        grant_type: 'password',
        username: 'regtoken',
        password: good(),
        service: SERVICE,
      }),
    });
    expect((await handler(urlEvent(req, false))).statusCode).toBe(200);
  });

  it('logs one line per request with the principal and never the token', async () => {
    const { handler, logger } = lambdaFor(() => root.pem);
    const token = good();
    await handler(
      urlEvent(
        request({
          query: `service=${SERVICE}&scope=repository:team-a/app:pull`,
          headers: { authorization: basic('regtoken', token) },
        }),
        false,
      ),
    );
    const requests = logger.lines.filter((l) => l.message === 'token request');
    expect(requests).toEqual([
      expect.objectContaining({
        sub: 'arn:aws:iam::111122223333:role/ci-runner',
        jti: 'jti-1',
        client: '192.0.2.7',
        outcome: 'issued',
        scopes: ['repository:team-a/app:pull'],
      }),
    ]);
    expect(JSON.stringify(logger.lines)).not.toContain(token.split('.')[2]);
  });

  it('answers 503 while the trust bundle cannot be read, and recovers', async () => {
    let pem = '';
    const { handler, logger } = lambdaFor(() => pem);
    const req = request({
      query: `service=${SERVICE}`,
      headers: { authorization: basic('regtoken', good()) },
    });
    expect((await handler(urlEvent(req, false))).statusCode).toBe(503);
    expect(logger.lines).toContainEqual(
      expect.objectContaining({ message: 'trust bundle not loaded' }),
    );
    pem = root.pem;
    NOW = new Date(NOW.getTime() + 61_000); // past the refresh interval
    try {
      expect(
        (
          await handler(
            urlEvent(
              request({
                query: `service=${SERVICE}`,
                headers: { authorization: basic('regtoken', good()) },
              }),
              false,
            ),
          )
        ).statusCode,
      ).toBe(200);
    } finally {
      NOW = new Date(NOW.getTime() - 61_000);
    }
  });
});
