/**
 * Counts AWS API calls by service and operation with an SDK middleware at the `initialize` step,
 * which runs once per command (not per HTTP attempt: retries are not counted twice). While it
 * is there it also notes the size of every token document the run writes, and of the token in
 * it, so the floor can write bodies of exactly the same sizes without reading them back.
 */

import type { AwsClients } from '../lambda/adapters/aws.js';

/** Calls per service, then per operation: `{ S3: { PutObject: 10000 }, KMS: { Sign: 1 } }`. */
export type CallCounts = Record<string, Record<string, number>>;

interface Stackable {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<unknown>,
        context: { clientName?: string; commandName?: string },
      ) => (args: { input: object }) => Promise<unknown>,
      options: { step: 'initialize'; name: string },
    ): void;
  };
}

export class CallCounter {
  #counts = new Map<string, number>();
  /** Body length of each token document written (PutObject under `tokens/`). */
  documentBytes: number[] = [];
  /** Length of the token inside each of those documents. */
  tokenBytes: number[] = [];

  /** Instruments every client of `aws` (creating them: AwsClients creates clients lazily). */
  attach(aws: AwsClients): void {
    for (const client of [aws.s3, aws.kms, aws.iam, aws.sts]) this.attachClient(client);
  }

  attachClient(client: unknown): void {
    (client as Stackable).middlewareStack.add(
      (next, context) => async (args) => {
        const service = (context.clientName ?? '?').replace(/Client$/, '');
        const operation = (context.commandName ?? '?').replace(/Command$/, '');
        const key = `${service} ${operation}`;
        this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
        if (operation === 'PutObject')
          this.noteDocument(args.input as { Key?: string; Body?: unknown });
        return next(args);
      },
      { step: 'initialize', name: 'regtokenBenchCallCounter' },
    );
  }

  private noteDocument(input: { Key?: string; Body?: unknown }): void {
    if (!/(^|\/)tokens\//.test(input.Key ?? '') || typeof input.Body !== 'string') return;
    const body = input.Body;
    this.documentBytes.push(Buffer.byteLength(body));
    // The document is `JSON.stringify(doc, null, 2)`: the token is the value of "token".
    const start = body.indexOf('"token": "');
    const end = start < 0 ? -1 : body.indexOf('"', start + 10);
    if (end > 0) this.tokenBytes.push(end - start - 10);
  }

  reset(): void {
    this.#counts.clear();
    this.documentBytes = [];
    this.tokenBytes = [];
  }

  snapshot(): CallCounts {
    const out: CallCounts = {};
    for (const [key, count] of [...this.#counts].sort(([a], [b]) => a.localeCompare(b))) {
      const [service = '?', operation = '?'] = key.split(' ');
      out[service] ??= {};
      (out[service] as Record<string, number>)[operation] = count;
    }
    return out;
  }
}

/** Total calls of one service (all operations). */
export function serviceTotal(counts: CallCounts, service: string): number {
  return Object.values(counts[service] ?? {}).reduce((a, b) => a + b, 0);
}
