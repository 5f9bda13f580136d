/**
 * The token endpoint (the registry's `auth.token.realm`), as a pure function from a request to
 * a response and one audit-log event. The password a client presents *is* a regtoken token: the
 * endpoint verifies it exactly as the registry would ({@link TokenVerifier}) and hands it back
 * unchanged, in the shape the client asked for. It holds no signing key and no user database.
 *
 * Protocol (distribution docs/spec/auth/token.md and oauth.md, as the real clients speak it):
 * - `GET /token?service=…&scope=…` with `Authorization: Basic` (docker login and pull, skopeo,
 *   containerd's fallback) → `{token, access_token, expires_in, issued_at}`;
 * - `POST /token` with a form: `grant_type=password` (containerd, BuildKit) or
 *   `grant_type=refresh_token` (containers/image and Docker with an identity token) →
 *   `{access_token, scope, expires_in, issued_at}`. A `refresh_token` is never returned: Docker
 *   would store an expiring token as a long-lived identity token.
 *
 * The node:http server and the Lambda function URL are thin adapters over {@link handleRealmRequest}.
 */

import { excerpt } from './text.js';
import type { TokenVerifier, VerifiedClaims } from './verify.js';

/** Requests and bodies larger than this are refused (431 / 413). A Basic header is 4/3 of the token. */
export const MAX_REQUEST_BYTES = 32 * 1024;
/** At most this many scopes in one request. */
const MAX_SCOPES = 64;
/** The conventional username; any username is accepted. */
export const REALM_USERNAME = 'regtoken';

/**
 * Bytes of the `Authorization: Basic …` header value a client sends to the token endpoint with
 * `token` as the password: `Basic ` and base64 of `USERNAME:TOKEN`, about 4/3 of the token.
 */
export function basicHeaderBytes(token: string, username = REALM_USERNAME): number {
  return 'Basic '.length + 4 * Math.ceil((username.length + 1 + token.length) / 3);
}

/** A request, as the adapters hand it over. Header names in lower case. */
export interface RealmRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The raw query string, without `?`. */
  readonly query: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The body as text (the adapters decode base64 bodies). */
  readonly body: string;
  /** The client's address, for the audit log. */
  readonly client: string;
}

export interface RealmResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** One audit-log line per request. Never a token, password or header value. */
export interface RealmEvent {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly outcome: 'issued' | 'refused' | 'invalid' | 'unavailable' | 'health';
  readonly reason?: string;
  readonly grantType?: 'basic' | 'password' | 'refresh_token';
  readonly sub?: string;
  readonly jti?: string;
  readonly scopes?: readonly string[];
  /** The requested scopes as far as the token allows them. */
  readonly granted?: readonly string[];
  readonly clientId?: string;
  readonly client: string;
  readonly expiresIn?: number;
}

export interface RealmSettings {
  /** The registry's `auth.token.service`: the token's `aud` and the `service` parameter. */
  readonly service: string;
  /** The registry's `auth.token.issuer`: the token's `iss`. */
  readonly issuer: string;
  /** Refuse tokens with less than this many seconds left (default 60). */
  readonly minRemainingSeconds?: number;
}

export interface RealmResult {
  readonly response: RealmResponse;
  readonly event: RealmEvent;
}

/** A request that cannot be answered with a token; becomes the spec's error JSON. */
class Refusal {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
    readonly reason: string,
    readonly extra: Partial<RealmEvent> = {},
  ) {}
}

const JSON_HEADERS = {
  'content-type': 'application/json',
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-content-type-options': 'nosniff',
};

const RELOGIN = `fetch a fresh one (regtoken token) and log in again with username ${REALM_USERNAME}, or run regtoken login again`;

/**
 * Parses `application/x-www-form-urlencoded` text strictly: a malformed percent-escape is an
 * error (URLSearchParams would pass it through silently).
 */
export function parseForm(text: string, where: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (text === '') return out;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        throw new Refusal(400, 'INVALID_REQUEST', `bad percent-encoding in the ${where}`, 'form');
      }
    };
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = decode(eq < 0 ? '' : pair.slice(eq + 1));
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** `type[(class)]:name:action[,action]`, per the token spec's scope grammar. */
const SCOPE = /^([a-z0-9]+(?:\([a-z0-9]+\))?):([^\s:][^\s]*?):([a-z*]*(?:,[a-z*]*)*)$/;

interface Scope {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

function parseScopes(values: readonly string[]): Scope[] {
  const scopes = values.flatMap((v) => v.split(' ')).filter((s) => s !== '');
  if (scopes.length > MAX_SCOPES)
    throw new Refusal(400, 'INVALID_REQUEST', `more than ${MAX_SCOPES} scopes`, 'scope');
  return scopes.map((s) => {
    const m = s.length <= 512 ? SCOPE.exec(s) : null;
    if (!m)
      throw new Refusal(
        400,
        'INVALID_REQUEST',
        `"${excerpt(s, 80)}" is not a valid scope`,
        'scope',
      );
    const type = (m[1] ?? '').replace(/\(.*\)$/, '');
    return { type, name: m[2] ?? '', actions: (m[3] ?? '').split(',').filter(Boolean) };
  });
}

const scopeText = (s: Scope) => `${s.type}:${s.name}:${s.actions.join(',')}`;

/** The requested scopes reduced to what the token's `access` claim allows. */
export function grantedScopes(requested: readonly Scope[], claims: VerifiedClaims): string[] {
  const out: string[] = [];
  for (const scope of requested) {
    const allowed = new Set(
      claims.access
        .filter((a) => a.type === scope.type && a.name === scope.name)
        .flatMap((a) => a.actions),
    );
    const actions = allowed.has('*') ? scope.actions : scope.actions.filter((a) => allowed.has(a));
    if (actions.length) out.push(scopeText({ ...scope, actions }));
  }
  return out;
}

function single(
  params: Map<string, string[]>,
  name: string,
  required: boolean,
): string | undefined {
  const values = params.get(name) ?? [];
  if (values.length > 1)
    throw new Refusal(400, 'INVALID_REQUEST', `more than one "${name}" parameter`, name);
  const value = values[0];
  if (required && !value)
    throw new Refusal(400, 'INVALID_REQUEST', `missing the "${name}" parameter`, name);
  return value || undefined;
}

/** The password of `Authorization: Basic …`; undefined when there is no Authorization header. */
function basicPassword(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  const malformed = new Refusal(
    400,
    'INVALID_REQUEST',
    'malformed Authorization header: expected Basic credentials (username and password)',
    'authorization',
  );
  if (!m?.[1] || m[1].length % 4 !== 0) throw malformed;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw malformed;
  return text.slice(colon + 1);
}

interface TokenAsk {
  readonly grantType: 'basic' | 'password' | 'refresh_token';
  readonly password: string | undefined;
  readonly params: Map<string, string[]>;
  readonly oauth: boolean;
}

function readGet(req: RealmRequest): TokenAsk {
  return {
    grantType: 'basic',
    password: basicPassword(req.headers.authorization),
    params: parseForm(req.query, 'query string'),
    oauth: false,
  };
}

function readPost(req: RealmRequest): TokenAsk {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    throw new Refusal(
      400,
      'INVALID_REQUEST',
      'the body must be a form (application/x-www-form-urlencoded)',
      'content-type',
    );
  const params = parseForm(req.body, 'form');
  // OAuth clients send everything in the form; a query string adds nothing and is ignored.
  const grant = single(params, 'grant_type', true);
  if (grant === 'password')
    return {
      grantType: 'password',
      password: single(params, 'password', false),
      params,
      oauth: true,
    };
  if (grant === 'refresh_token')
    return {
      grantType: 'refresh_token',
      password: single(params, 'refresh_token', false),
      params,
      oauth: true,
    };
  throw new Refusal(
    400,
    'INVALID_REQUEST',
    `unsupported grant_type "${excerpt(grant ?? '', 40)}": use password or refresh_token`,
    'grant_type',
  );
}

function errorResponse(r: Refusal): RealmResponse {
  const headers: Record<string, string> = { ...JSON_HEADERS };
  if (r.status === 401)
    headers['www-authenticate'] = `Basic realm="${REALM_USERNAME}", charset="UTF-8"`;
  if (r.status === 405) headers.allow = 'GET, POST';
  if (r.status === 503) headers['retry-after'] = '10';
  return {
    status: r.status,
    headers,
    body: JSON.stringify({ errors: [{ code: r.code, message: r.message }] }),
  };
}

function issue(
  ask: TokenAsk,
  token: string,
  verifier: TokenVerifier,
  settings: RealmSettings,
  now: Date,
): { response: RealmResponse; event: Partial<RealmEvent> } {
  const service = single(ask.params, 'service', true) ?? '';
  const scopes = parseScopes(ask.params.get('scope') ?? []);
  const clientId = single(ask.params, 'client_id', false);
  const base: Partial<RealmEvent> = {
    grantType: ask.grantType,
    scopes: scopes.map((s) => excerpt(scopeText(s))),
    ...(clientId ? { clientId: excerpt(clientId, 64) } : {}),
  };
  if (service !== settings.service)
    throw new Refusal(
      400,
      'INVALID_REQUEST',
      `this endpoint serves tokens for service "${settings.service}", not "${excerpt(service, 80)}"`,
      'service',
      base,
    );
  const result = verifier.verify(token, {
    issuer: settings.issuer,
    service: settings.service,
    now,
    ...(settings.minRemainingSeconds === undefined
      ? {}
      : { minRemainingSeconds: settings.minRemainingSeconds }),
  });
  const who = (c: VerifiedClaims | undefined): Partial<RealmEvent> =>
    c
      ? { ...(c.sub ? { sub: excerpt(c.sub) } : {}), ...(c.jti ? { jti: excerpt(c.jti, 64) } : {}) }
      : {};
  if (!result.ok)
    throw new Refusal(401, 'UNAUTHORIZED', `${result.message}: ${RELOGIN}`, result.reason, {
      ...base,
      ...who(result.claims),
    });
  const { claims } = result;
  const seconds = Math.floor(now.getTime() / 1000);
  const expiresIn = claims.exp - seconds;
  // issued_at is the time of this answer: clients compute expiry as issued_at + expires_in.
  const issuedAt = new Date(seconds * 1000).toISOString().replace('.000', '');
  const granted = grantedScopes(scopes, claims);
  const body = ask.oauth
    ? { access_token: token, scope: granted.join(' '), expires_in: expiresIn, issued_at: issuedAt }
    : { token, access_token: token, expires_in: expiresIn, issued_at: issuedAt };
  return {
    response: { status: 200, headers: JSON_HEADERS, body: JSON.stringify(body) },
    event: { ...base, ...who(claims), granted, expiresIn },
  };
}

/**
 * Answers one request. `verifier` is undefined while no trust bundle could be loaded (503).
 * Never throws: every failure becomes a 4xx/5xx answer and an audit event.
 */
export function handleRealmRequest(
  req: RealmRequest,
  verifier: TokenVerifier | undefined,
  settings: RealmSettings,
  now: Date,
): RealmResult {
  const base = {
    method: excerpt(req.method, 16),
    path: excerpt(req.path, 128),
    client: req.client,
  };
  try {
    if (req.path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      const status = verifier ? 200 : 503;
      const body = verifier
        ? { status: 'ok', roots: verifier.trust.roots.length, trust: verifier.trust.fingerprint }
        : { status: 'no trust bundle loaded' };
      return {
        response: { status, headers: JSON_HEADERS, body: JSON.stringify(body) },
        event: { ...base, status, outcome: 'health' },
      };
    }
    if (req.path !== '/token')
      throw new Refusal(404, 'NOT_FOUND', 'not found: the token endpoint is /token', 'path');
    if (req.method !== 'GET' && req.method !== 'POST')
      throw new Refusal(
        405,
        'UNSUPPORTED',
        `method ${base.method} not allowed: use GET or POST`,
        'method',
      );
    if (Buffer.byteLength(req.body) > MAX_REQUEST_BYTES)
      throw new Refusal(
        413,
        'TOO_LARGE',
        `the body is larger than ${MAX_REQUEST_BYTES} bytes`,
        'size',
      );
    const ask = req.method === 'GET' ? readGet(req) : readPost(req);
    if (!verifier)
      throw new Refusal(
        503,
        'UNAVAILABLE',
        'the trust bundle is not loaded yet; retry shortly',
        'trust',
      );
    if (!ask.password)
      throw new Refusal(
        401,
        'UNAUTHORIZED',
        `no credentials: log in with username ${REALM_USERNAME} and your regtoken token as the password (docker login -u ${REALM_USERNAME} --password-stdin HOST, fed by regtoken token)`,
        'no-credentials',
        { grantType: ask.grantType },
      );
    const { response, event } = issue(ask, ask.password, verifier, settings, now);
    return { response, event: { ...base, ...event, status: 200, outcome: 'issued' } };
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    const outcome = err.status === 401 ? 'refused' : err.status === 503 ? 'unavailable' : 'invalid';
    return {
      response: errorResponse(err),
      event: { ...base, ...err.extra, status: err.status, outcome, reason: err.reason },
    };
  }
}
