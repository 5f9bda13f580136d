/**
 * The Lambda functions of a fanned-out run (the CDK construct's `fanOut` option): one bundle,
 * three exports, one per state of the workflow (infra/minter/fan-out.ts). Each only translates:
 * it reads its settings from the environment (once per container), wires the same adapters as
 * the scheduled function (lambda/run.ts) and calls its step in lambda/fan-out.ts, logging and
 * counting through Powertools as lambda/handler.ts does.
 *
 * - `plan` is given the execution's input (the schedule's or the grants upload's event), its ID
 *   and name; it returns what the workflow passes on (the manifest's key, the lock's holding).
 * - `shard` is given one item of the manifest; it throws only when the shard must be retried.
 * - `finish` is given the plan step's output (and the Map's error, when a shard failed); it
 *   returns the run's outcome, which the workflow turns into success, a new pass, or failure.
 */

import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { AwsClients } from './adapters/aws.js';
import { powertoolsPorts } from './adapters/powertools.js';
import { S3RunFiles } from './adapters/s3/run-files.js';
import { isS3Url, parseS3Url } from './adapters/s3/shared.js';
import { LeaseFence } from './core/lease.js';
import type { RootedSigner, Signer } from './core/ports.js';
import { DEFAULT_SHARD_SIZE, isRunId, MAX_SHARD_SIZE } from './core/shards.js';
import { quote } from './core/text.js';
import { type EnvSettings, readEnv, required } from './env.js';
import { ConfigError, EnvError, InputError } from './errors.js';
import {
  type FinishInput,
  type FinishOutput,
  finishRun,
  type HeldLock,
  mintShard,
  type PlanOutput,
  planRun,
  type ShardItem,
  type ShardOutput,
} from './fan-out.js';
import { describeTrigger, lambdaSettings } from './lambda-env.js';
import { MAX_PASSES } from './mint.js';
import { configSource, type RunContext, signer, wire } from './run.js';
import { awsSide, runLock, s3Store } from './run-aws.js';
import { GrantsCache } from './steps/plan.js';

/** What the workflow gives the plan step. */
export interface PlanEvent {
  /** The execution's input: the trigger's event, or `{source, pass}` for a further pass. */
  readonly input?: unknown;
  /** The execution's ARN. */
  readonly execution: string;
  /** The execution's name. */
  readonly name: string;
}

/** What the workflow gives a worker: the run's ID, its lock and one item of the manifest. */
export interface ShardEvent {
  readonly run: string;
  readonly lock: HeldLock;
  readonly item: ShardItem;
}

/** The three handlers, built around the environment (Lambda) or injected settings (tests). */
export function createFanOutHandlers(
  options: { env?: NodeJS.ProcessEnv; aws?: AwsClients; logger?: Logger; metrics?: Metrics } = {},
) {
  const defaults = readEnv(options.env);
  const logger = options.logger ?? new Logger({ serviceName: defaults.serviceName });
  const metrics =
    options.metrics ??
    new Metrics({ namespace: defaults.metricsNamespace, serviceName: defaults.serviceName });
  const aws = options.aws ?? new AwsClients();
  const side = awsSide(aws);
  const ports = powertoolsPorts(logger, metrics);
  const ctx: RunContext = {
    aws: side,
    logger: ports.log,
    metrics: ports.metrics,
    // One per container: the scheduled runs of an unchanged grants object parse it once.
    grantsCache: new GrantsCache(),
  };
  let env: EnvSettings | undefined;
  const settings = () => {
    env ??= readEnv(options.env);
    return env;
  };

  const step = stepRunner(logger, metrics);

  const plan = step('plan', async (event: PlanEvent): Promise<PlanOutput> => {
    logger.info('run started', { trigger: describeTrigger(event?.input) });
    const s = lambdaSettings(settings());
    const out = s3Out(s.out);
    // The execution owns the lock: a plan step invoked again for it takes the lock again.
    const { deps, lock } = wire(s, { ...ctx, lockOwner: executionOf(event) });
    if (!lock) throw new EnvError('a fanned-out run needs the run lock of an S3 token store');
    const output = await planRun(
      {
        ...deps,
        signer: rooted(deps.signer),
        files: new S3RunFiles(aws.s3, out),
      },
      lock,
      { run: runId(event), pass: passOf(event?.input), shardSize: shardSize(settings()) },
    );
    if (output.skipped) metrics.addMetric('RunsSkipped', MetricUnit.Count, 1);
    return output;
  });

  const shard = step('shard', async (event: ShardEvent): Promise<ShardOutput> => {
    const e = settings();
    const s = {
      out: required(e.out, 'REGTOKEN_OUT'),
      signingKey: required(e.signingKey, 'REGTOKEN_SIGNING_KEY'),
      signingMode: e.signingMode,
      trustedKeys: e.trustedKeys,
      minterArns: e.minterArns,
    };
    if (!isRunId(event?.run) || !Number.isInteger(event?.item?.index) || !heldLock(event?.lock))
      throw new InputError('shard: expected {run, lock, item: {index, …}} from the workflow');
    const fence = new LeaseFence();
    const out = { out: s3Url(s.out), lockLease: undefined };
    return mintShard(
      event,
      {
        store: s3Store({ ...s, ...out }, aws, fence),
        signer: rooted(signer(s, ctx)),
        files: new S3RunFiles(aws.s3, s3Out(s.out)),
        logger: ports.log,
      },
      runLock(out, aws, fence),
    );
  });

  const finish = step('finish', async (event: FinishInput): Promise<FinishOutput> => {
    const e = settings();
    const s = {
      config: required(e.config, 'REGTOKEN_CONFIG'),
      out: s3Url(required(e.out, 'REGTOKEN_OUT')),
      minterArns: e.minterArns,
      lockLease: e.lockLease,
    };
    if (!isRunId(event?.run) || !heldLock(event?.lock))
      throw new InputError("finish: expected the plan step's output from the workflow");
    const fence = new LeaseFence();
    const { output } = await finishRun(
      event,
      {
        config: configSource(s.config, side),
        store: s3Store(s, aws, fence),
        files: new S3RunFiles(aws.s3, s3Out(s.out)),
        logger: ports.log,
        metrics: ports.metrics,
      },
      runLock(s, aws, fence),
    );
    metrics.addMetric(
      output.status === 'succeeded' ? 'RunsSucceeded' : 'RunsFailed',
      MetricUnit.Count,
      1,
    );
    if (output.status === 'failed')
      logger.error('run failed', { error: output.error, cause: output.cause });
    return output;
  });

  return { plan, shard, finish };
}

/** Runs a step with the handler's logging, metric publishing and error reporting. */
function stepRunner(logger: Logger, metrics: Metrics) {
  return <E, R>(name: string, run: (event: E) => Promise<R>) =>
    async (event: E, context?: Context): Promise<R> => {
      if (context) logger.addContext(context);
      try {
        return await run(event);
      } catch (err) {
        metrics.addMetric('RunsFailed', MetricUnit.Count, 1);
        if (err instanceof ConfigError)
          logger.error('grants file invalid; nothing written', { issues: err.message.split('\n') });
        else
          logger.error(`${name} step failed`, {
            error: (err as Error).message,
            code: (err as { code?: string }).code,
          });
        throw err;
      } finally {
        metrics.publishStoredMetrics();
      }
    };
}

/** A fanned-out run writes to S3: its files live in the token bucket. */
function s3Url(out: string): string {
  if (!isS3Url(out))
    throw new EnvError(
      `REGTOKEN_OUT is ${quote(out)}: a fanned-out run mints into a token bucket (s3://BUCKET[/PREFIX])`,
    );
  return out;
}

function s3Out(out: string) {
  return parseS3Url(s3Url(out), 'prefix');
}

/** A fanned-out run certifies one key per shard under a KMS root. */
function rooted(s: Signer): RootedSigner {
  const r = s as Partial<RootedSigner>;
  if (typeof r.prepareRoot !== 'function' || typeof r.certify !== 'function')
    throw new EnvError(
      'REGTOKEN_SIGNING_KEY: a fanned-out run signs under a KMS key (kms:KEY_ID_OR_ALIAS): each shard certifies its own key under it',
    );
  return s as RootedSigner;
}

function heldLock(lock: unknown): lock is HeldLock {
  const l = lock as Partial<HeldLock> | undefined;
  return typeof l?.tag === 'string' && typeof l.writesEndAt === 'number';
}

/** The execution's ARN: the run lock's owner. */
function executionOf(event: PlanEvent): string {
  if (typeof event?.execution !== 'string' || event.execution === '')
    throw new InputError('plan: expected {input, execution, name} from the workflow');
  return event.execution;
}

/** REGTOKEN_SHARD_SIZE, or the default. */
function shardSize(env: EnvSettings): number {
  if (env.shardSize === undefined) return DEFAULT_SHARD_SIZE;
  const n = Number(env.shardSize);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARD_SIZE)
    throw new EnvError(
      `REGTOKEN_SHARD_SIZE is ${quote(env.shardSize)}: a whole number from 1 to ${MAX_SHARD_SIZE}`,
    );
  return n;
}

/** The run's ID: the execution's name, or a digest of its ARN when the name will not do. */
function runId(event: PlanEvent): string {
  if (typeof event?.name === 'string' && isRunId(event.name)) return event.name;
  return createHash('sha256').update(executionOf(event)).digest('hex').slice(0, 32);
}

/** Which pass this execution is: the finish step of the previous one starts pass 2, 3, … */
function passOf(input: unknown): number {
  const pass = (input as { pass?: unknown } | undefined)?.pass;
  return typeof pass === 'number' && Number.isInteger(pass) && pass >= 1 && pass <= MAX_PASSES
    ? pass
    : 1;
}

const handlers = createFanOutHandlers();

/** The workflow's plan state. */
export const plan = handlers.plan;
/** The workflow's shard worker (the Distributed Map's state). */
export const shard = handlers.shard;
/** The workflow's finish state. */
export const finish = handlers.finish;
