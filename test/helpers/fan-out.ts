/**
 * A fanned-out deployment of RegistryTokenMinter, as the tests run it against the AWS stand-in:
 * the construct synthesized with `fanOut`, its CloudFormation references resolved to the
 * stand-in's names, its state machine definition, and its three functions (handler, environment,
 * role statements) exactly as the template gives them. {@link fanOutRuntime} runs those
 * functions in this process with the real handlers (lambda/fan-out-handler.ts), each function
 * keeping its handler between invocations as a warm Lambda container does, or in a child process
 * that a test can kill mid-invocation (test/helpers/lambda-child.ts).
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, type MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Duration, aws_kms as kms, aws_s3 as s3 } from 'aws-cdk-lib';
import {
  type FanOutOptions,
  RegistryTokenMinter,
  type RegistryTokenMinterProps,
} from '../../infra/minter.js';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { createFanOutHandlers } from '../../lambda/fan-out-handler.js';
import { type CfnJson, ROOT, synth } from './cdk.js';
import { awsChildEnv } from './moto.js';
import { type LongRunningProcess, startProcess } from './process.js';
import { type References, type Runtime, resolveCfn } from './states.js';

/** moto's account, which the template's ARNs are resolved into. */
export const ACCOUNT = '123456789012';

/** One function of the workflow, as deployed. */
export interface DeployedFunction {
  readonly logicalId: string;
  readonly arn: string;
  /** `index.plan`, `index.shard` or `index.finish`: an export of lambda/fan-out-handler.ts. */
  readonly handler: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly roleArn: string;
}

/** The deployment: template, definition, functions and role policies, references resolved. */
export interface FanOutDeployment {
  readonly template: CfnJson;
  readonly definition: CfnJson;
  readonly stateMachineArn: string;
  readonly stateMachineRoleArn: string;
  /** By ARN. */
  readonly functions: ReadonlyMap<string, DeployedFunction>;
  /** The function whose handler is `index.NAME`. */
  fn(name: 'plan' | 'shard' | 'finish'): DeployedFunction;
  /** Every identity policy statement of a role, by the role's ARN. */
  policies(roleArn: string): unknown[];
}

/** The names the stand-in has for what the template creates or imports. */
export interface StandIn {
  readonly configBucket: string;
  readonly tokenBucket: string;
  readonly registryBucket: string;
  readonly kmsKeyArn: string;
}

/** Synthesizes the construct with `fanOut` and resolves it onto the stand-in's names. */
export function deployFanOut(
  standIn: StandIn,
  fanOut: FanOutOptions,
  props: Partial<RegistryTokenMinterProps> = {},
): FanOutDeployment {
  let minter: RegistryTokenMinter | undefined;
  const { stack, template } = synth((s) => {
    minter = new RegistryTokenMinter(s, 'Minter', {
      minTokenTtl: Duration.hours(12),
      ...props,
      signingKey: kms.Key.fromKeyArn(s, 'Key', standIn.kmsKeyArn),
      registryStorage: { bucket: s3.Bucket.fromBucketName(s, 'Registry', standIn.registryBucket) },
      fanOut,
    });
  });
  if (!minter) throw new Error('not built');
  const json = template.toJSON();
  const resources = json.Resources as Record<string, { Type: string; Properties: CfnJson }>;
  const id = (c: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(c.node.defaultChild as never);
  const buckets: Record<string, string> = {
    [id(minter.configBucket)]: standIn.configBucket,
    [id(minter.tokenBucket)]: standIn.tokenBucket,
  };
  const arnOf = (logicalId: string): string => {
    const type = resources[logicalId]?.Type;
    if (type === 'AWS::Lambda::Function')
      return `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${logicalId}`;
    if (type === 'AWS::IAM::Role') return `arn:aws:iam::${ACCOUNT}:role/${logicalId}`;
    if (type === 'AWS::StepFunctions::StateMachine')
      return `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:${logicalId}`;
    const bucket = buckets[logicalId];
    if (bucket) return `arn:aws:s3:::${bucket}`;
    if (type === 'AWS::Logs::LogGroup')
      return `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:${logicalId}:*`;
    if (type === 'AWS::SQS::Queue') return `arn:aws:sqs:us-east-1:${ACCOUNT}:${logicalId}`;
    throw new Error(`no ARN for ${logicalId} (${type})`);
  };
  const refs: References = {
    ref: (logicalId) => {
      const bucket = buckets[logicalId];
      if (bucket) return bucket;
      if (resources[logicalId]?.Type === 'AWS::StepFunctions::StateMachine')
        return arnOf(logicalId);
      throw new Error(`no name for Ref ${logicalId}`);
    },
    getAtt: (logicalId, attribute) => {
      if (attribute !== 'Arn') throw new Error(`not modelled: ${logicalId}.${attribute}`);
      return arnOf(logicalId);
    },
  };
  const [smId, sm] = Object.entries(resources).find(
    ([, r]) => r.Type === 'AWS::StepFunctions::StateMachine',
  ) as [string, { Properties: CfnJson }];
  const functions = new Map<string, DeployedFunction>();
  for (const [logicalId, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::Lambda::Function' || !String(r.Properties.Handler).startsWith('index.'))
      continue;
    if (!/^(plan|shard|finish)$/.test(String(r.Properties.Handler).slice(6))) continue;
    functions.set(arnOf(logicalId), {
      logicalId,
      arn: arnOf(logicalId),
      handler: r.Properties.Handler,
      environment: resolveCfn(r.Properties.Environment?.Variables ?? {}, refs),
      timeoutSeconds: r.Properties.Timeout,
      roleArn: resolveCfn(r.Properties.Role, refs),
    });
  }
  const statements = new Map<string, unknown[]>();
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const doc = resolveCfn(r.Properties.PolicyDocument, refs);
    for (const role of r.Properties.Roles as CfnJson[]) {
      const roleArn = arnOf(role.Ref);
      statements.set(roleArn, [...(statements.get(roleArn) ?? []), ...doc.Statement]);
    }
  }
  return {
    template: json,
    definition: JSON.parse(resolveCfn(sm.Properties.DefinitionString, refs)),
    stateMachineArn: arnOf(smId),
    stateMachineRoleArn: resolveCfn(sm.Properties.RoleArn, refs),
    functions,
    fn(name) {
      const found = [...functions.values()].find((f) => f.handler === `index.${name}`);
      if (!found) throw new Error(`no ${name} function`);
      return found;
    },
    policies: (roleArn) => statements.get(roleArn) ?? [],
  };
}

/** Metrics that keep every `name value` added, and publish nothing. */
export class RecordedMetrics extends Metrics {
  readonly added: string[] = [];
  constructor() {
    super({ namespace: 'regtoken', serviceName: 'regtoken-test' });
  }
  override addMetric(
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
  ): this {
    this.added.push(`${name} ${value}`);
    return super.addMetric(name, unit, value);
  }
  override publishStoredMetrics(): this {
    this.clearMetrics();
    return this;
  }
}

/** How one invocation runs: in this process (default), or in a child the test controls. */
export type InvokeMode =
  | 'in-process'
  | { readonly child: (process: LongRunningProcess) => Promise<void> };

/** A {@link Runtime} over the stand-in, with what it saw. */
export interface FanOutRuntime extends Runtime {
  /** Executions the workflow started (states:startExecution), in order. */
  readonly started: { readonly stateMachineArn: string; readonly input: unknown }[];
  /** Invocations as `plan`, `shard`, `finish` (with the shard's index and attempt). */
  readonly invocations: string[];
  /** The most shard invocations that ran at once. */
  maxShardsInFlight: number;
  /** Metrics each function added, by handler name. */
  readonly metrics: ReadonlyMap<string, RecordedMetrics>;
}

/**
 * The functions of `deployment` run with their template environment against the stand-in
 * (AWS_ENDPOINT_URL in this process's environment). `mode` picks, per invocation, where it
 * runs; `before` runs before each invocation (to change the world between steps).
 */
export function fanOutRuntime(
  deployment: FanOutDeployment,
  s3Client: S3Client,
  options: {
    readonly endpoint: string;
    readonly dir: string;
    readonly mode?: (fn: DeployedFunction, payload: unknown, attempt: number) => InvokeMode;
    readonly before?: (fn: DeployedFunction, payload: unknown) => Promise<void>;
    /** The SDK clients of each new (cold) function container; the benchmark counts their calls. */
    readonly clients?: (fn: DeployedFunction) => AwsClients;
  },
): FanOutRuntime {
  const warm = new Map<string, ReturnType<typeof createFanOutHandlers>>();
  const metrics = new Map<string, RecordedMetrics>();
  let inFlight = 0;
  let children = 0;
  const runtime: FanOutRuntime = {
    started: [],
    invocations: [],
    maxShardsInFlight: 0,
    metrics,
    async invoke(arn, payload, { attempt }) {
      const fn = deployment.functions.get(arn);
      if (!fn) throw new Error(`the workflow invokes ${arn}, which the template does not define`);
      const name = fn.handler.slice('index.'.length) as 'plan' | 'shard' | 'finish';
      const index = (payload as { item?: { index?: number } }).item?.index;
      runtime.invocations.push(`${name}${index === undefined ? '' : ` ${index}`}#${attempt}`);
      await options.before?.(fn, payload);
      const mode = options.mode?.(fn, payload, attempt) ?? 'in-process';
      if (name === 'shard')
        runtime.maxShardsInFlight = Math.max(runtime.maxShardsInFlight, ++inFlight);
      try {
        if (mode !== 'in-process')
          return await inChild(fn, name, payload, mode, options, ++children);
        let handlers = warm.get(arn);
        if (!handlers) {
          const recorded = new RecordedMetrics();
          metrics.set(name, recorded);
          handlers = createFanOutHandlers({
            env: { ...fn.environment },
            aws: options.clients?.(fn) ?? new AwsClients(),
            logger: new Logger({ serviceName: 'regtoken-test', logLevel: 'SILENT' }),
            metrics: recorded,
          });
          warm.set(arn, handlers);
        }
        return await (handlers[name] as (e: unknown) => Promise<unknown>)(payload);
      } finally {
        if (name === 'shard') inFlight -= 1;
      }
    },
    async getObject(bucket, key) {
      const r = await s3Client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await r.Body?.transformToString('utf8')) ?? '';
    },
    async startExecution(stateMachineArn, input) {
      runtime.started.push({ stateMachineArn, input });
    },
  };
  return runtime;
}

/** One invocation in a child process: what a Lambda sandbox that can die looks like. */
async function inChild(
  fn: DeployedFunction,
  name: string,
  payload: unknown,
  mode: Exclude<InvokeMode, 'in-process'>,
  options: { readonly endpoint: string; readonly dir: string },
  n: number,
): Promise<unknown> {
  const input = join(options.dir, `invoke-${n}.json`);
  const output = join(options.dir, `result-${n}.json`);
  writeFileSync(input, JSON.stringify(payload));
  const child = startProcess(
    process.execPath,
    ['--import', 'tsx', `${ROOT}test/helpers/lambda-child.ts`, name, input, output],
    {
      cwd: ROOT,
      env: {
        ...awsChildEnv(options.endpoint),
        ...fn.environment,
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        POWERTOOLS_METRICS_DISABLED: 'true',
      },
    },
  );
  await mode.child(child);
  const code = await child.exited;
  if (!existsSync(output)) {
    // What Lambda reports when the runtime process exits mid-invocation.
    const error = new Error(
      `RequestId: ${n} Error: Runtime exited with error: exit status ${code}`,
    );
    error.name = 'Runtime.ExitError';
    throw error;
  }
  const result = JSON.parse(readFileSync(output, 'utf8')) as
    | { ok: true; value: unknown }
    | { ok: false; name: string; message: string };
  if (result.ok) return result.value;
  const error = new Error(result.message);
  error.name = result.name;
  throw error;
}
