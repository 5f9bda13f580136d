/**
 * A loopback HTTP proxy in front of moto_server that injects faults a real server cannot be
 * made to produce on demand: throttling (503 SlowDown), server errors (500), policy refusals
 * (403 AccessDenied), slow answers, and requests held until the test lets them through.
 * The AWS SDK talks to it through AWS_ENDPOINT_URL exactly as it would talk to S3, so retries,
 * backoff and error handling run for real; only the failing answers are made up.
 *
 * It also keeps S3 bucket policies itself (PUT/GET/DELETE `?policy`, refusing those that name an
 * account marked invalid, as S3 refuses a principal it cannot resolve) instead of passing them
 * to moto: moto 5.2 half-enforces a stored bucket policy on object reads and writes, treating
 * every statement with a condition it cannot check (such as `aws:SecureTransport`) as a Deny,
 * which would make every request after the first policy write fail with 403. Real S3 evaluates
 * policies; here their meaning is checked with an independent evaluator (test/helpers/iam-eval.ts).
 */

import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One fault rule: requests it matches get `status` (or a delay) while `times` lasts. */
export interface FaultRule {
  readonly method?: string;
  /** Matched against the request path (with query string). */
  readonly path: RegExp;
  /**
   * HTTP status to answer with instead of forwarding; omit to only delay. 403 answers
   * `AccessDenied`, what S3 says when a bucket policy refuses a request (moto never does).
   */
  readonly status?: 403 | 500 | 503;
  /** How many matching requests to hit; Infinity for all. */
  times: number;
  /** Milliseconds to wait before forwarding (or failing). */
  readonly delayMs?: number;
  /**
   * Holds each matching request until this promise settles, then forwards (or fails) it: a
   * test decides exactly when a request goes through, instead of guessing with a delay.
   */
  readonly hold?: Promise<unknown>;
}

export interface FaultProxy {
  readonly endpoint: string;
  /** Bucket policies written through the proxy, by bucket name. */
  readonly policies: Map<string, string>;
  /**
   * Accounts S3 cannot resolve: a policy naming one's root is refused with 400
   * `MalformedPolicy: Invalid principal in policy`, as S3 answers for an unknown principal
   * (moto accepts any).
   */
  readonly invalidAccounts: Set<string>;
  /** Requests seen, as "METHOD path", in order. */
  readonly seen: string[];
  /**
   * AWS API calls seen, in order, as `SERVICE OPERATION`: `S3 GET /bucket/key`,
   * `STS GetCallerIdentity`, `KMS Sign` (a form-encoded call is recorded once its body is
   * read). How the tests count the AWS calls other processes make.
   */
  readonly calls: string[];
  /** How many requests each rule hit. */
  readonly hits: Map<FaultRule, number>;
  setRules(rules: FaultRule[]): void;
  stop(): Promise<void>;
}

const BODIES = {
  403: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
  500: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>',
  503: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
};

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

/** Starts a proxy on 127.0.0.1 forwarding to `target` (e.g. moto's endpoint). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  let rules: FaultRule[] = [];
  const seen: string[] = [];
  const hits = new Map<FaultRule, number>();
  const policies = new Map<string, string>();
  const invalidAccounts = new Set<string>();

  /** Answers bucket-policy requests from `policies`; true when it did. */
  const policyRequest = (
    req: IncomingMessage,
    res: import('node:http').ServerResponse,
  ): boolean => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const parts = url.pathname.split('/').filter(Boolean);
    const bucket = parts[0] ?? '';
    if (!url.searchParams.has('policy') || parts.length !== 1) return false;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'PUT' && [...invalidAccounts].some((a) => body.includes(`::${a}:root`))) {
        res.writeHead(400, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>MalformedPolicy</Code><Message>Invalid principal in policy</Message></Error>',
        );
      } else if (req.method === 'PUT') {
        policies.set(bucket, body);
        res.writeHead(204);
        res.end();
      } else if (req.method === 'DELETE') {
        policies.delete(bucket);
        res.writeHead(204);
        res.end();
      } else if (policies.has(bucket)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(policies.get(bucket));
      } else {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucketPolicy</Code><Message>The bucket policy does not exist</Message><BucketName>${bucket}</BucketName></Error>`,
        );
      }
    });
    return true;
  };

  const forward = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: `${upstream.hostname}:${upstream.port}` },
      },
      (upRes) => {
        // Connection-specific headers stay on their hop (RFC 9110, 7.6.1): moto closes each
        // connection, while the client's connection to the proxy is kept alive, as S3's are.
        const headers = { ...upRes.headers };
        for (const h of HOP_BY_HOP) delete headers[h];
        res.writeHead(upRes.statusCode ?? 502, headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  };

  const calls: string[] = [];
  /**
   * Notes the AWS call: the service from the signature's credential scope
   * (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), then the operation: the X-Amz-Target
   * of a JSON call, the Action of a form-encoded (query) call, else method and path (S3).
   */
  const noteCall = (req: IncomingMessage) => {
    const service = /\/([a-z0-9-]+)\/aws4_request/.exec(req.headers.authorization ?? '')?.[1];
    const label = (service ?? 'unsigned').toUpperCase();
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string') {
      calls.push(`${label} ${target.split('.').pop()}`);
      return;
    }
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      calls.push(`${label} ${req.method} ${(req.url ?? '').split('?')[0]}`);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const action = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('Action');
      calls.push(`${label} ${action ?? '?'}`);
    });
  };

  const server: Server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    seen.push(line);
    noteCall(req);
    const rule = rules.find(
      (r) => r.times > 0 && (!r.method || r.method === req.method) && r.path.test(req.url ?? ''),
    );
    const act = () => {
      if (rule?.status) {
        // Drain the request body first, as a server would, then answer with the fault.
        req.resume();
        req.on('end', () => {
          res.writeHead(rule.status as number, { 'content-type': 'application/xml' });
          res.end(BODIES[rule.status as 403 | 500 | 503]);
        });
        return;
      }
      if (!policyRequest(req, res)) forward(req, res);
    };
    if (rule) {
      rule.times -= 1;
      hits.set(rule, (hits.get(rule) ?? 0) + 1);
      if (rule.hold) {
        req.pause();
        const go = () => {
          req.resume();
          act();
        };
        rule.hold.then(go, go);
        return;
      }
      if (rule.delayMs) {
        req.pause();
        setTimeout(() => {
          req.resume();
          act();
        }, rule.delayMs);
        return;
      }
    }
    act();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    policies,
    invalidAccounts,
    seen,
    calls,
    hits,
    setRules(next) {
      rules = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
