import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Asks the OS for a free TCP port on 127.0.0.1: listens on port 0, reads the port the kernel
 * picked and closes the socket again. There is an unavoidable (tiny) window in which another
 * process could grab the port before the caller binds it; callers that start a server on the
 * port should treat an early "address already in use" exit as a retryable failure.
 */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected server address ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Options for {@link waitForHttp}. */
export interface WaitForHttpOptions {
  /** Give up after this many milliseconds (default 15000). */
  timeoutMs?: number;
  /** HTTP statuses that count as "ready"; default: any HTTP response at all. */
  okStatuses?: number[];
  /** Pause between attempts in milliseconds (default 100). */
  intervalMs?: number;
  /**
   * Called before every attempt; return a reason string to stop waiting immediately (e.g. the
   * server process already exited), which makes waitForHttp reject with that reason.
   */
  giveUpIf?: () => string | undefined;
}

/**
 * Polls `url` with GET until it answers (with one of `okStatuses`, if given) and resolves;
 * rejects with the last status or network error once `timeoutMs` (default 15 s) has passed,
 * or as soon as `giveUpIf` returns a reason. Each attempt is bounded by a short per-request
 * timeout so a half-open socket cannot stall the loop.
 */
export async function waitForHttp(url: string, opts: WaitForHttpOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt made';
  for (;;) {
    const reason = opts.giveUpIf?.();
    if (reason !== undefined) {
      throw new Error(`waitForHttp(${url}): gave up: ${reason} (last result: ${last})`);
    }
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(Math.max(200, Math.min(2_000, deadline - Date.now()))),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (opts.okStatuses === undefined || opts.okStatuses.includes(res.status)) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      last = cause?.code ?? (err instanceof Error ? err.message : String(err));
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `waitForHttp(${url}): not ready after ${timeoutMs} ms (last result: ${last})`,
      );
    }
    await sleep(intervalMs);
  }
}
