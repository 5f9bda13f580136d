/**
 * The token endpoint as an HTTP server (`regtoken realm`), to run next to the registry behind
 * the same TLS front end. A thin adapter: it turns node:http requests into
 * {@link handleRealmRequest} calls, enforces the size limits before reading anything large,
 * writes one JSON audit line per request, reloads the trust bundle in the background and
 * shuts down cleanly (in-flight requests finish, idle connections close).
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TrustCache } from './adapters/trust-source.js';
import type { Logger } from './core/ports.js';
import {
  handleRealmRequest,
  MAX_REQUEST_BYTES,
  type RealmEvent,
  type RealmResponse,
  type RealmSettings,
} from './core/realm.js';

export interface RealmServerOptions {
  readonly host: string;
  readonly port: number;
  readonly settings: RealmSettings;
  /** A loaded trust cache ({@link TrustCache.load} succeeded). */
  readonly trust: TrustCache;
  readonly logger: Logger;
  /** How often to look for a new trust bundle, in milliseconds. */
  readonly refreshMs: number;
  readonly clock?: () => Date;
}

export interface RunningRealm {
  /** `http://HOST:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish (at most `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

const JSON_TYPE = { 'content-type': 'application/json' };

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

/** Reads the body, refusing more than MAX_REQUEST_BYTES; undefined when it was too large. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_REQUEST_BYTES) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function flatHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers))
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function send(res: ServerResponse, response: RealmResponse, close = false): void {
  res.writeHead(response.status, {
    ...response.headers,
    'content-length': Buffer.byteLength(response.body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(response.body);
}

type Audit = (event: RealmEvent) => void;

/** Answers one request: reads the body within the limit, then the core decides. */
async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  options: RealmServerOptions,
  now: Date,
  audit: Audit,
): Promise<void> {
  const client = req.socket.remoteAddress ?? 'unknown';
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const method = req.method ?? '';
  const path = q < 0 ? url : url.slice(0, q);
  const body = await readBody(req);
  if (body === undefined) {
    audit({ method, path, status: 413, outcome: 'invalid', reason: 'size', client });
    const message = `the body is larger than ${MAX_REQUEST_BYTES} bytes`;
    send(res, { status: 413, headers: JSON_TYPE, body: errorBody('TOO_LARGE', message) }, true);
    return;
  }
  const request = {
    method,
    path,
    query: q < 0 ? '' : url.slice(q + 1),
    headers: flatHeaders(req),
    body,
    client,
  };
  const { response, event } = handleRealmRequest(
    request,
    options.trust.current,
    options.settings,
    now,
  );
  audit(event);
  send(res, response);
}

/** Answers what node:http refuses before the handler sees it: oversized headers, bad syntax. */
function refuseMalformed(err: NodeJS.ErrnoException, socket: Socket, audit: Audit): void {
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = tooLarge
    ? errorBody('TOO_LARGE', `request headers are larger than ${MAX_REQUEST_BYTES} bytes`)
    : errorBody('INVALID_REQUEST', 'malformed HTTP request');
  const reason = tooLarge ? 'Request Header Fields Too Large' : 'Bad Request';
  if (socket.writable)
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  else socket.destroy();
  if (err.code !== 'ECONNRESET')
    audit({
      method: '',
      path: '',
      status,
      outcome: 'invalid',
      reason: tooLarge ? 'size' : 'http',
      client: socket.remoteAddress ?? 'unknown',
    });
}

/** Starts the server; resolves once it listens. */
export async function startRealmServer(options: RealmServerOptions): Promise<RunningRealm> {
  const clock = options.clock ?? (() => new Date());
  const audit: Audit = (event) => options.logger.info('token request', { ...event });

  const server: Server = createServer(
    {
      maxHeaderSize: MAX_REQUEST_BYTES,
      headersTimeout: 10_000,
      requestTimeout: 15_000,
      keepAliveTimeout: 5_000,
    },
    (req, res) => {
      answer(req, res, options, clock(), audit).catch((err: unknown) => {
        options.logger.error('token request failed', { error: (err as Error).message });
        if (res.headersSent) res.destroy();
        else
          send(res, {
            status: 500,
            headers: JSON_TYPE,
            body: errorBody('INTERNAL', 'internal error'),
          });
      });
    },
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) =>
    refuseMalformed(err, socket, audit),
  );

  const refresh = setInterval(() => void options.trust.refreshIfStale(), options.refreshMs);
  refresh.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    close(graceMs = 10_000) {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(refresh);
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
