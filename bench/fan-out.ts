/**
 * The fan-out mode of `npm run bench`: a fanned-out mint run (the construct's `fanOut` option)
 * against moto, driven by the state machine definition as synthesized, with the three handlers
 * in this process (test/helpers/fan-out.ts, test/helpers/states.ts), as the integration test
 * drives them. Measured per execution: wall time and this process's CPU time, the time of each
 * state (plan, the Map, each shard, finish), and every AWS call by operation, from which the
 * KMS calls (1 GetPublicKey + 1 Sign per shard once the root certificate exists) and the S3
 * requests per token follow.
 *
 * Runs in a process of its own (`node --import tsx bench/fan-out.ts N OUT.json OPTIONS_JSON`,
 * started by bench/run.ts after it prepared AWS with setupAws), so its CPU time is the run's
 * and not the parent's fault proxy's. Shards run side by side in one process on a shared
 * machine here, where Lambda would give each its own; the per-shard times are what the model
 * in docs/performance.md scales.
 */

import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { AwsClients } from '../lambda/adapters/aws.js';
import { ACCOUNT, deployFanOut, fanOutRuntime } from '../test/helpers/fan-out.js';
import { runExecution } from '../test/helpers/states.js';
import { CallCounter, type CallCounts, serviceTotal } from './counter.js';
import { type AwsSetup, CONFIG_BUCKET, REGISTRY_BUCKET, TOKEN_BUCKET } from './e2e.js';
import { generateWorkload } from './generate.js';
import { table } from './report.js';
import { median } from './stats.js';

/** The deployment's settings for the measurement. */
export interface FanOutBenchOptions {
  readonly shardSize: number;
  readonly maxConcurrency: number;
}

/** One execution, measured. */
export interface FanOutSample {
  readonly status: string;
  readonly wallMs: number;
  /** This process's user + system CPU time over the execution. */
  readonly cpuMs: number;
  readonly planMs: number;
  /** The Distributed Map, first item started to last item ended. */
  readonly mapMs: number;
  readonly finishMs: number;
  /** Each shard invocation's time, in the manifest's order. */
  readonly shardMs: readonly number[];
  /** Principals of each shard. */
  readonly shardSizes: readonly number[];
  readonly maxShardsInFlight: number;
  readonly calls: CallCounts;
  readonly tokens: number;
  /** One-minute load average at the end. */
  readonly load: number;
}

export interface FanOutResult {
  readonly n: number;
  readonly accounts: number;
  readonly shardSize: number;
  readonly maxConcurrency: number;
  readonly shards: number;
  /** The first run: root certificate made (one more KMS Sign), every token new. */
  readonly first: FanOutSample;
  /** A second run in new (cold) containers: the steady state the schedule repeats. */
  readonly steady: FanOutSample;
}

/** Runs two executions (first, then steady) of a fanned-out deployment on prepared AWS. */
export async function measureFanOut(
  n: number,
  setup: AwsSetup,
  options: FanOutBenchOptions,
): Promise<FanOutResult> {
  const w = generateWorkload(n);
  const deployment = deployFanOut(
    {
      configBucket: CONFIG_BUCKET,
      tokenBucket: TOKEN_BUCKET,
      registryBucket: REGISTRY_BUCKET,
      kmsKeyArn: setup.kmsKeyArn,
    },
    options,
  );
  let executions = 0;
  const execute = async (): Promise<FanOutSample> => {
    const counter = new CallCounter();
    const timings = new Map<string, { start: number; end: number }>();
    const shardSizes: number[] = [];
    const rt = fanOutRuntime(deployment, new AwsClients().s3, {
      endpoint: process.env.AWS_ENDPOINT_URL ?? '',
      dir: '',
      clients: () => {
        const aws = new AwsClients();
        counter.attach(aws);
        return aws;
      },
    });
    // Times each invocation by its state and item.
    const invoke = rt.invoke.bind(rt);
    rt.invoke = async (arn, payload, at) => {
      const item = (payload as { item?: { index: number; principals: number } }).item;
      const key = item ? `shard ${item.index}` : at.state;
      if (item) shardSizes[item.index - 1] = item.principals;
      const start = performance.now();
      try {
        return await invoke(arn, payload, at);
      } finally {
        timings.set(key, { start, end: performance.now() });
      }
    };
    const name = `bench-${++executions}`;
    const machine = deployment.stateMachineArn.split(':').pop();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const outcome = await runExecution(deployment.definition, { source: 'regtoken.schedule' }, rt, {
      execution: `arn:aws:states:us-east-1:${ACCOUNT}:execution:${machine}:${name}`,
      name,
      stateMachine: deployment.stateMachineArn,
    });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (outcome.status !== 'SUCCEEDED')
      throw new Error(
        `bench fan-out: the execution ended ${outcome.status}${outcome.status === 'FAILED' ? `: ${outcome.error}: ${outcome.cause}` : ''}\n${outcome.history.slice(-8).join('\n')}`,
      );
    const shards = [...timings].filter(([k]) => k.startsWith('shard '));
    const span = (k: string) => {
      const t = timings.get(k);
      return t ? t.end - t.start : 0;
    };
    const calls = counter.snapshot();
    return {
      status: outcome.status,
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      planMs: span('Plan'),
      mapMs:
        Math.max(...shards.map(([, t]) => t.end)) - Math.min(...shards.map(([, t]) => t.start)),
      finishMs: span('Finish'),
      shardMs: shards
        .sort(([a], [b]) => Number(a.slice(6)) - Number(b.slice(6)))
        .map(([, t]) => t.end - t.start),
      shardSizes,
      maxShardsInFlight: rt.maxShardsInFlight,
      calls,
      tokens: counter.documentBytes.length,
      load: loadavg()[0] ?? 0,
    };
  };
  const first = await execute();
  const steady = await execute();
  return {
    n,
    accounts: w.accounts.length,
    shardSize: options.shardSize,
    maxConcurrency: options.maxConcurrency,
    shards: steady.shardMs.length,
    first,
    steady,
  };
}

/** KMS calls of a sample (every operation). */
export function kmsCalls(s: FanOutSample): number {
  return serviceTotal(s.calls, 'KMS');
}

/** S3 requests per token written. */
export function s3PerToken(s: FanOutSample): number {
  return s.tokens === 0 ? 0 : serviceTotal(s.calls, 'S3') / s.tokens;
}

/** The Markdown section of the report. */
export function renderFanOut(r: FanOutResult): string {
  const row = (label: string, s: FanOutSample) => [
    label,
    `${(s.wallMs / 1000).toFixed(1)} s`,
    `${(s.cpuMs / 1000).toFixed(1)} s`,
    `${(s.planMs / 1000).toFixed(1)} s`,
    `${(s.mapMs / 1000).toFixed(1)} s`,
    `${(median(s.shardMs) / 1000).toFixed(2)} s`,
    `${(s.finishMs / 1000).toFixed(1)} s`,
    `${kmsCalls(s)} (${Object.entries(s.calls.KMS ?? {})
      .map(([op, c]) => `${op} ${c}`)
      .join(', ')})`,
    String(s.tokens),
    s3PerToken(s).toFixed(3),
    s.load.toFixed(1),
  ];
  return [
    `### Fan-out at ${r.n.toLocaleString('en-US')} principals`,
    '',
    `${r.accounts} accounts, shard size ${r.shardSize}, MaxConcurrency ${r.maxConcurrency}: ${r.shards} shards (one per account, split at the size). The three handlers run in one process against moto, driven by the synthesized definition; shards ran ${r.steady.maxShardsInFlight} at a time. CPU is this process's (handlers and SDK), not moto's.`,
    '',
    table(
      [
        'run',
        'wall',
        'CPU',
        'plan',
        'map',
        'shard (median)',
        'finish',
        'KMS calls',
        'tokens',
        'S3 requests per token',
        'load',
      ],
      [row('first (root certificate made)', r.first), row('steady, cold containers', r.steady)],
      [1, 2, 3, 4, 5, 6, 8, 9, 10],
    ),
    '',
    `KMS calls = 1 + shards in the steady run: ${kmsCalls(r.steady) === 1 + r.shards ? 'yes' : 'NO'} (${kmsCalls(r.steady)} = 1 + ${r.shards}).`,
  ].join('\n');
}

async function main(argv: readonly string[]): Promise<void> {
  const [size, out, extra] = argv;
  const n = Number(size);
  if (!out || !Number.isInteger(n)) throw new Error('usage: fan-out.ts N OUT.json OPTIONS_JSON');
  const { setup, ...options } = JSON.parse(extra ?? '{}') as FanOutBenchOptions & {
    setup: AwsSetup;
  };
  writeFileSync(out, JSON.stringify(await measureFanOut(n, setup, options)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  await main(process.argv.slice(2));
