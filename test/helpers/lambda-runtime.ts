/**
 * Runs a bundled Lambda handler the way the Node.js Lambda runtime does: the Node.js of the
 * runtime's major (the npm package `node-<platform>-<arch>`, which scripts/test.sh installs into
 * node_modules/.cache/lambda-node; Lambda itself runs the linux-arm64 build of the same major),
 * the handler named by the function's `Handler` (`index.handler` → export `handler` of
 * index.mjs in the asset folder), the function's environment plus what Lambda sets
 * (AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, the role's session credentials, LAMBDA_TASK_ROOT, …),
 * and a context object. Several events in one call are invocations of one warm container.
 */

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cdk.js';
import { run } from './process.js';

/** Where scripts/test.sh installs the Lambda runtime's Node.js. */
export const LAMBDA_NODE_DIR = `${ROOT}node_modules/.cache/lambda-node`;

/**
 * The path of the Lambda runtime's node binary and its version (`v22.…`); fails with what to
 * run when it is not installed.
 */
export async function lambdaNode(): Promise<{ path: string; version: string }> {
  const path = `${LAMBDA_NODE_DIR}/node_modules/node-${process.platform}-${process.arch}/bin/node`;
  if (!existsSync(path))
    throw new Error(
      `the Lambda runtime's Node.js is not installed at ${path}: run the tests with npm test (scripts/test.sh installs it)`,
    );
  const r = await run(path, ['--version']);
  if (r.code !== 0) throw new Error(`${path} --version failed: ${r.stderr}`);
  return { path, version: r.stdout.trim() };
}

/** What one container did. */
export interface Invocations {
  readonly code: number;
  /** Each invocation's result, or its error as `{ errorType, errorMessage }`. */
  readonly results: unknown[];
  /** Every JSON line the function printed (Powertools logs, EMF metrics): stdout's, then stderr's. */
  readonly lines: Record<string, unknown>[];
  readonly stdout: string;
  readonly stderr: string;
}

// Prints each result as a RESULT line, as the runtime hands it back to the Lambda service.
const BOOTSTRAP = `
import { pathToFileURL } from 'node:url';
const [file, name] = process.env.RUNTIME_HANDLER.split('.');
const mod = await import(pathToFileURL(process.env.LAMBDA_TASK_ROOT + '/' + file + '.mjs').href);
const events = JSON.parse(process.env.RUNTIME_EVENTS);
let n = 0;
for (const event of events) {
  n += 1;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: '$LATEST',
    invokedFunctionArn: process.env.RUNTIME_FUNCTION_ARN,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: '00000000-0000-4000-8000-00000000000' + n,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => 300000,
    callbackWaitsForEmptyEventLoop: true,
  };
  try {
    const result = await mod[name](event, context);
    process.stdout.write('RESULT ' + JSON.stringify(result ?? null) + '\\n');
  } catch (err) {
    process.stdout.write('RESULT ' + JSON.stringify({ errorType: err.name, errorMessage: err.message }) + '\\n');
  }
}
`;

/**
 * Invokes the handler `handler` (`index.handler`) of the asset folder `taskRoot` with `events`,
 * one after another in one process, on `node` with `env` (the function's variables, the
 * session credentials and any endpoint settings).
 */
export async function invoke(options: {
  readonly node: string;
  readonly taskRoot: string;
  readonly handler: string;
  readonly functionName: string;
  readonly functionArn: string;
  readonly memorySize: number;
  readonly env: Readonly<Record<string, string>>;
  readonly events: readonly unknown[];
  /** A folder for the bootstrap script. */
  readonly workDir: string;
}): Promise<Invocations> {
  const bootstrap = join(options.workDir, 'bootstrap.mjs');
  writeFileSync(bootstrap, BOOTSTRAP);
  const r = await run(options.node, [bootstrap], {
    cwd: options.taskRoot,
    env: {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      LAMBDA_TASK_ROOT: options.taskRoot,
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      AWS_LAMBDA_FUNCTION_NAME: options.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(options.memorySize),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${options.functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: '2026/11/30/[$LATEST]0123456789abcdef',
      RUNTIME_HANDLER: options.handler,
      RUNTIME_FUNCTION_ARN: options.functionArn,
      RUNTIME_EVENTS: JSON.stringify(options.events),
      ...options.env,
    },
    timeoutMs: 120_000,
  });
  const results: unknown[] = [];
  const lines: Record<string, unknown>[] = [];
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) {
    if (line.startsWith('RESULT ')) results.push(JSON.parse(line.slice('RESULT '.length)));
    else if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
  }
  return { code: r.code, results, lines, stdout: r.stdout, stderr: r.stderr };
}
