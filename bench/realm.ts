/**
 * The token endpoint under load: `regtoken realm` (the built CLI, in its own process) answering
 * `GET /token` with a per-run `x5c` token — the AWS default, whose certificate chain the
 * endpoint verifies once and then caches, so a request costs about one ECDSA verification —
 * against its floor, a bare node:http server in its own process that answers the same JSON
 * without verifying anything. Both are driven from this process over loopback with keep-alive
 * connections at 1, 16 and 64 concurrent clients.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { registryClaims, signJws } from '../test/helpers/jws.js';
import { freePort, waitForHttp } from '../test/helpers/net.js';
import { makeIssued, makeRoot } from '../test/helpers/pki.js';
import { table } from './report.js';

const SERVICE = 'registry.example.com';

/** One concurrency level against one server. */
export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** What {@link benchRealm} measures. */
export interface RealmBenchResult {
  readonly seconds: number;
  readonly tokenBytes: number;
  readonly levels: readonly {
    readonly concurrency: number;
    readonly endpoint: LoadResult;
    readonly floor: LoadResult;
  }[];
}

const FLOOR_SERVER = `
const http = require('node:http');
const body = process.env.BODY;
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** `concurrency` clients, each sending one request after another for `seconds`. */
async function load(
  url: string,
  headers: Record<string, string>,
  concurrency: number,
  seconds: number,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  const target = new URL(url);
  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path: `${target.pathname}${target.search}`,
          headers,
          agent,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - t0);
            else errors += 1;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors += 1;
        resolve();
      });
      req.end();
    });
  // Warm up connections (and the endpoint's chain cache) before measuring.
  await Promise.all(Array.from({ length: concurrency }, once));
  latencies.length = 0;
  errors = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await once();
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('close', () => resolve());
    proc.kill('SIGTERM');
  });
}

/**
 * Runs the endpoint and its floor at each concurrency for `seconds` each. `root` is the
 * repository (the built CLI is `bin/regtoken.js`), `work` a scratch folder.
 */
export async function benchRealm(
  root: string,
  work: string,
  seconds: number,
  concurrencies: readonly number[] = [1, 16, 64],
): Promise<RealmBenchResult> {
  // A KMS-shaped chain: a root CA in the bundle, a per-run leaf certificate in the token.
  const ca = await makeRoot(work, 'bench-root');
  const leaf = await makeIssued(work, 'bench-leaf', ca);
  const bundle = join(work, 'realm-bundle.pem');
  writeFileSync(bundle, ca.pem);
  const token = signJws(
    { alg: 'ES256', typ: 'JWT', x5c: [leaf.x5c] },
    registryClaims(new Date(), { aud: SERVICE, sub: 'arn:aws:iam::111122223333:role/bench' }, 3600),
    leaf.privateKey,
  );
  const headers = {
    authorization: `Basic ${Buffer.from(`regtoken:${token}`).toString('base64')}`,
  };
  const query = `service=${SERVICE}&scope=repository:team-a/app:pull`;

  const realmPort = await freePort();
  const realm = spawn(
    process.execPath,
    [
      join(root, 'bin/regtoken.js'),
      'realm',
      '--trust',
      bundle,
      '--service',
      SERVICE,
      '--issuer',
      'regtoken',
      '--listen',
      `127.0.0.1:${realmPort}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH ?? '' } },
  );
  const floorPort = await freePort();
  const issuedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const floor = spawn(process.execPath, ['-e', FLOOR_SERVER], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PORT: String(floorPort),
      BODY: JSON.stringify({ token, access_token: token, expires_in: 3599, issued_at: issuedAt }),
    },
  });
  try {
    await waitForHttp(`http://127.0.0.1:${realmPort}/healthz`, {
      okStatuses: [200],
      timeoutMs: 30_000,
    });
    await waitForHttp(`http://127.0.0.1:${floorPort}/`, { okStatuses: [200], timeoutMs: 30_000 });
    const levels = [];
    for (const concurrency of concurrencies) {
      const endpoint = await load(
        `http://127.0.0.1:${realmPort}/token?${query}`,
        headers,
        concurrency,
        seconds,
      );
      const floorResult = await load(
        `http://127.0.0.1:${floorPort}/token?${query}`,
        headers,
        concurrency,
        seconds,
      );
      levels.push({ concurrency, endpoint, floor: floorResult });
    }
    return { seconds, tokenBytes: token.length, levels };
  } finally {
    await Promise.all([stop(realm), stop(floor)]);
  }
}

const fixed = (n: number, digits: number) => n.toFixed(digits);

/** The results as a Markdown table for docs/performance.md. */
export function renderRealm(r: RealmBenchResult): string {
  const rows = r.levels.map((l) => [
    String(l.concurrency),
    fixed(l.endpoint.rps, 0),
    fixed(l.endpoint.p50Ms, 2),
    fixed(l.endpoint.p99Ms, 2),
    fixed(l.floor.rps, 0),
    fixed(l.floor.p50Ms, 2),
    fixed(l.floor.p99Ms, 2),
    `${fixed(l.floor.rps / Math.max(l.endpoint.rps, 1e-9), 2)}×`,
    String(l.endpoint.errors + l.floor.errors),
  ]);
  const head = [
    'clients',
    'endpoint req/s',
    'p50 ms',
    'p99 ms',
    'floor req/s',
    'p50 ms',
    'p99 ms',
    'floor/endpoint',
    'errors',
  ];
  return [
    `**Token endpoint** (\`regtoken realm\`, GET /token with an x5c token of ${r.tokenBytes} bytes as the Basic password, ${r.seconds} s per level, keep-alive, loopback; floor: a bare node:http server answering the same JSON without verifying)`,
    '',
    table(
      head,
      rows,
      head.map((_, i) => i),
    ),
  ].join('\n');
}
