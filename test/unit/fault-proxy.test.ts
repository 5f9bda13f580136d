/**
 * The loopback fault proxy in front of moto (test/helpers/fault-proxy.ts) passes a request and
 * its answer through, except the headers of the connection itself: moto closes every
 * connection, while the client's connection to the proxy stays open, as S3 keeps it. The bench
 * measures the run and its floor through this proxy (docs/performance.md).
 */

import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';

let upstream: Server;
let proxy: FaultProxy;
const upstreamConnections: number[] = [];

beforeAll(async () => {
  // An upstream like moto_server: it answers each request and closes the connection.
  upstream = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`${req.method} ${req.url}`);
  });
  upstream.on('connection', () => upstreamConnections.push(1));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const { port } = upstream.address() as AddressInfo;
  proxy = await startFaultProxy(`http://127.0.0.1:${port}`);
});

afterAll(async () => {
  await proxy.stop();
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

/** One GET through the proxy: the status, the body, and whether it went over a used socket. */
function get(agent: Agent, path: string) {
  return new Promise<{ status?: number; body: string; reused: boolean; connection?: string }>(
    (resolve, reject) => {
      const req = request(`${proxy.endpoint}${path}`, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            body,
            reused: req.reusedSocket,
            connection: res.headers.connection,
          }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('fault proxy', () => {
  it("keeps the client's connection open though the upstream closes each of its own", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(agent, '/bucket/a');
      const second = await get(agent, '/bucket/b');
      expect(first).toEqual({
        status: 200,
        body: 'GET /bucket/a',
        reused: false,
        connection: 'keep-alive',
      });
      expect(second).toEqual({
        status: 200,
        body: 'GET /bucket/b',
        reused: true,
        connection: 'keep-alive',
      });
      // Upstream, each request had its own connection, as moto closes them.
      expect(upstreamConnections).toHaveLength(2);
    } finally {
      agent.destroy();
    }
  });
});
