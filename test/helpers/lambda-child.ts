/**
 * One invocation of a handler of lambda/fan-out-handler.ts in a process of its own, so a test
 * can kill it mid-invocation as Lambda kills a sandbox (test/helpers/fan-out.ts). Arguments: the
 * handler's name, a file holding the event, a file for the outcome
 * (`{ok: true, value}` or `{ok: false, name, message}`). Settings come from the environment, as
 * in a Lambda function.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { createFanOutHandlers } from '../../lambda/fan-out-handler.js';

const [name = '', input = '', output = ''] = process.argv.slice(2);
const handlers = createFanOutHandlers();
const handler = (handlers as Record<string, (e: unknown) => Promise<unknown>>)[name];
if (!handler) throw new Error(`no handler ${name}`);
try {
  const value = await handler(JSON.parse(readFileSync(input, 'utf8')));
  writeFileSync(output, JSON.stringify({ ok: true, value }));
} catch (err) {
  const e = err as Error;
  writeFileSync(output, JSON.stringify({ ok: false, name: e.name, message: e.message }));
}
