/**
 * Runs a Step Functions state machine definition from a synthesized template, in-process, the
 * way Step Functions would run it: states in order, JSONPath input and output processing,
 * Retry (with the definition's intervals and backoff, recorded instead of slept) and Catch,
 * Choice, Succeed and Fail (with ErrorPath / CausePath), Lambda tasks, the
 * `states:startExecution` task, and a Distributed Map reading its items from S3 (ItemReader),
 * shaping each one (ItemSelector), running its item processor with at most MaxConcurrency items
 * at once and failing past ToleratedFailurePercentage.
 *
 * It models only what regtoken's workflow uses: a field it does not know fails the run with
 * "not modelled", so a definition that changes beyond this model is noticed, never half-run.
 * Lambda tasks and S3 reads go to a {@link Runtime} the test provides (the real handlers against
 * the AWS stand-in), so what runs is the definition as synthesized, with the real code.
 *
 * Also here: resolving the CloudFormation references of a template (Ref, Fn::GetAtt, Fn::Join,
 * Fn::Select, Fn::Split) to the names the test gave its resources.
 */

// biome-ignore lint/suspicious/noExplicitAny: Amazon States Language JSON, read field by field
type Json = any;

/** How the test names what the template references. */
export interface References {
  ref(logicalId: string): string;
  getAtt(logicalId: string, attribute: string): string;
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
  'AWS::URLSuffix': 'amazonaws.com',
};

/** Resolves the intrinsic functions in `value`; any other intrinsic throws. */
export function resolveCfn(value: Json, refs: References): Json {
  if (Array.isArray(value)) return value.map((v) => resolveCfn(v, refs));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const [key] = keys as [string];
    const arg = value[key];
    if (key === 'Ref') return PSEUDO[arg] ?? refs.ref(arg);
    if (key === 'Fn::GetAtt') return refs.getAtt(arg[0], arg[1]);
    if (key === 'Fn::Join')
      return (resolveCfn(arg[1], refs) as string[]).join(resolveCfn(arg[0], refs));
    if (key === 'Fn::Select') return resolveCfn(arg[1], refs)[Number(resolveCfn(arg[0], refs))];
    if (key === 'Fn::Split') return String(resolveCfn(arg[1], refs)).split(arg[0]);
    if (key.startsWith('Fn::') || key === 'Condition') throw new Error(`not modelled: ${key}`);
  }
  return Object.fromEntries(keys.map((k) => [k, resolveCfn(value[k], refs)]));
}

/** An error as Step Functions sees it: a name and a cause. */
export class StatesError extends Error {
  constructor(
    readonly error: string,
    override readonly cause: string,
  ) {
    super(`${error}: ${cause}`);
  }
}

/**
 * Thrown by a {@link Runtime} to end the execution where it stands, as if it had been stopped
 * or lost: no retry, no catch, no further state.
 */
export class ExecutionAborted extends Error {
  override readonly name = 'ExecutionAborted';
}

/** What the definition's tasks reach. */
export interface Runtime {
  /** Invokes a Lambda function (payload and result as JSON); throws with the function's error. */
  invoke(
    functionArn: string,
    payload: Json,
    context: { state: string; attempt: number },
  ): Promise<Json>;
  /** The ItemReader's s3:getObject. */
  getObject(bucket: string, key: string): Promise<string>;
  /** The states:startExecution task (recorded by the test). */
  startExecution(stateMachineArn: string, input: Json): Promise<void>;
}

/** What happened, in order: `enter STATE`, `retry STATE ERROR wait=S`, `catch STATE ERROR`. */
export type History = string[];

/** The end of an execution. */
export type Outcome =
  | { readonly status: 'SUCCEEDED'; readonly output: Json; readonly history: History }
  | { readonly status: 'ABORTED'; readonly history: History }
  | {
      readonly status: 'FAILED';
      readonly error: string;
      readonly cause: string;
      readonly history: History;
    };

/** A state's input and output may hold at most 256 KiB (Step Functions' payload limit). */
const MAX_PAYLOAD = 256 * 1024;

interface Context {
  readonly Execution: { Id: string; Name: string; Input: Json; StartTime: string };
  readonly StateMachine: { Id: string };
  readonly Map?: { Item: { Index: number; Value: Json } };
}

/** Runs one execution of `definition` with `input` to its end. */
export async function runExecution(
  definition: Json,
  input: Json,
  runtime: Runtime,
  ids: { readonly execution: string; readonly name: string; readonly stateMachine: string },
): Promise<Outcome> {
  const history: History = [];
  const context: Context = {
    Execution: {
      Id: ids.execution,
      Name: ids.name,
      Input: input,
      StartTime: new Date().toISOString(),
    },
    StateMachine: { Id: ids.stateMachine },
  };
  known(definition, ['StartAt', 'States', 'TimeoutSeconds', 'Comment'], 'state machine');
  try {
    const output = await runStates(definition, input, runtime, context, history);
    return { status: 'SUCCEEDED', output, history };
  } catch (err) {
    if (err instanceof ExecutionAborted) return { status: 'ABORTED', history };
    if (!(err instanceof StatesError)) throw err;
    return { status: 'FAILED', error: err.error, cause: err.cause, history };
  }
}

function known(obj: Json, fields: readonly string[], where: string): void {
  for (const k of Object.keys(obj))
    if (!fields.includes(k)) throw new Error(`not modelled: ${where}.${k}`);
}

async function runStates(
  machine: Json,
  input: Json,
  runtime: Runtime,
  context: Context,
  history: History,
): Promise<Json> {
  let name: string | undefined = machine.StartAt;
  let data = input;
  while (name !== undefined) {
    const state = machine.States[name];
    if (!state) throw new Error(`no state ${name}`);
    history.push(`enter ${name}`);
    checkSize(data, name);
    const step = await runState(name, state, data, runtime, context, history);
    data = step.output;
    checkSize(data, name);
    name = step.next;
  }
  return data;
}

function checkSize(data: Json, state: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(data ?? null));
  if (bytes > MAX_PAYLOAD)
    throw new StatesError('States.DataLimitExceeded', `${state}: ${bytes} bytes of state data`);
}

const TASK_FIELDS = [
  'Type',
  'Resource',
  'Parameters',
  'ResultPath',
  'Retry',
  'Catch',
  'Next',
  'End',
];
const MAP_FIELDS = [
  'Type',
  'ItemReader',
  'ItemSelector',
  'ItemProcessor',
  'MaxConcurrency',
  'ToleratedFailurePercentage',
  'ResultPath',
  'Catch',
  'Retry',
  'Next',
  'End',
];

async function runState(
  name: string,
  state: Json,
  data: Json,
  runtime: Runtime,
  context: Context,
  history: History,
): Promise<{ output: Json; next: string | undefined }> {
  const next = state.End ? undefined : state.Next;
  switch (state.Type) {
    case 'Succeed':
      known(state, ['Type'], name);
      return { output: data, next: undefined };
    case 'Fail': {
      known(state, ['Type', 'Error', 'ErrorPath', 'Cause', 'CausePath'], name);
      const error = state.ErrorPath ? path(state.ErrorPath, data, context) : state.Error;
      const cause = state.CausePath ? path(state.CausePath, data, context) : state.Cause;
      throw new StatesError(String(error ?? 'States.Fail'), String(cause ?? ''));
    }
    case 'Choice': {
      known(state, ['Type', 'Choices', 'Default'], name);
      for (const rule of state.Choices)
        if (matches(rule, data, context)) return { output: data, next: rule.Next };
      if (state.Default === undefined) throw new StatesError('States.NoChoiceMatched', name);
      return { output: data, next: state.Default };
    }
    case 'Task':
      known(state, TASK_FIELDS, name);
      return withCatch(name, state, data, history, async () => {
        const effective = state.Parameters ? shape(state.Parameters, data, context) : data;
        const result = await withRetry(name, state, history, (attempt) =>
          task(state.Resource, effective, runtime, { state: name, attempt }),
        );
        return { output: place(data, state.ResultPath, result), next };
      });
    case 'Map':
      known(state, MAP_FIELDS, name);
      return withCatch(name, state, data, history, async () => {
        const result = await withRetry(name, state, history, () =>
          distributedMap(name, state, data, runtime, context, history),
        );
        return { output: place(data, state.ResultPath, result), next };
      });
    default:
      throw new Error(`not modelled: ${name}.Type ${state.Type}`);
  }
}

async function task(
  resource: string,
  payload: Json,
  runtime: Runtime,
  at: { state: string; attempt: number },
): Promise<Json> {
  if (/^arn:[^:]+:lambda:[^:]+:\d{12}:function:/.test(resource)) {
    const result = await runtime.invoke(resource, JSON.parse(JSON.stringify(payload)), at);
    return result === undefined ? null : JSON.parse(JSON.stringify(result));
  }
  if (/^arn:[^:]+:states:::states:startExecution$/.test(resource)) {
    known(payload, ['StateMachineArn', 'Input'], `${at.state}.Parameters`);
    await runtime.startExecution(payload.StateMachineArn, payload.Input);
    return {};
  }
  throw new Error(`not modelled: task resource ${resource}`);
}

/** The Distributed Map: items from S3, each through the item processor, MaxConcurrency at once. */
async function distributedMap(
  name: string,
  state: Json,
  data: Json,
  runtime: Runtime,
  context: Context,
  history: History,
): Promise<Json[]> {
  const processor = state.ItemProcessor;
  known(processor, ['ProcessorConfig', 'StartAt', 'States'], `${name}.ItemProcessor`);
  if (processor.ProcessorConfig?.Mode !== 'DISTRIBUTED')
    throw new Error(`not modelled: ${name} inline Map`);
  const reader = state.ItemReader;
  known(reader, ['Resource', 'ReaderConfig', 'Parameters'], `${name}.ItemReader`);
  if (
    !/^arn:[^:]+:states:::s3:getObject$/.test(reader.Resource) ||
    reader.ReaderConfig?.InputType !== 'JSON'
  )
    throw new Error(`not modelled: ${name}.ItemReader ${reader.Resource}`);
  const where = shape(reader.Parameters, data, context);
  known(where, ['Bucket', 'Key'], `${name}.ItemReader.Parameters`);
  const items = JSON.parse(await runtime.getObject(where.Bucket, where.Key));
  if (!Array.isArray(items))
    throw new StatesError('States.ItemReaderFailed', `${where.Key}: not a JSON array`);
  const limit = state.MaxConcurrency || items.length || 1;
  const tolerated = state.ToleratedFailurePercentage ?? 0;
  const results: Json[] = [];
  let failures = 0;
  let firstFailure: StatesError | undefined;
  let aborted: unknown;
  let next = 0;
  const worker = async () => {
    while (next < items.length && !firstFailure) {
      const index = next++;
      const itemContext: Context = {
        ...context,
        Map: { Item: { Index: index, Value: items[index] } },
      };
      const itemInput = state.ItemSelector
        ? shape(state.ItemSelector, data, itemContext)
        : items[index];
      const itemHistory: History = [];
      try {
        results[index] = await runStates(processor, itemInput, runtime, itemContext, itemHistory);
      } catch (err) {
        if (!(err instanceof StatesError)) {
          firstFailure ??= new StatesError('States.Runtime', String(err));
          aborted ??= err;
          continue;
        }
        failures += 1;
        if ((failures / items.length) * 100 > tolerated) firstFailure ??= err;
      } finally {
        history.push(...itemHistory.map((h) => `${name}[${index}] ${h}`));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, Math.max(1, items.length)) }, worker));
  if (aborted !== undefined) throw aborted;
  if (firstFailure)
    throw new StatesError(
      'States.ExceedToleratedFailureThreshold',
      `${failures} of ${items.length} items failed (tolerated: ${tolerated} %); first: ${firstFailure.message}`,
    );
  return results;
}

async function withCatch(
  name: string,
  state: Json,
  data: Json,
  history: History,
  run: () => Promise<{ output: Json; next: string | undefined }>,
): Promise<{ output: Json; next: string | undefined }> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof StatesError)) throw err;
    for (const c of state.Catch ?? []) {
      known(c, ['ErrorEquals', 'ResultPath', 'Next'], `${name}.Catch`);
      if (!errorMatches(c.ErrorEquals, err.error)) continue;
      history.push(`catch ${name} ${err.error}`);
      return {
        output: place(data, c.ResultPath, { Error: err.error, Cause: err.cause }),
        next: c.Next,
      };
    }
    throw err;
  }
}

async function withRetry<T>(
  name: string,
  state: Json,
  history: History,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  const used = new Map<Json, number>();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (err instanceof ExecutionAborted) throw err;
      const e = err instanceof StatesError ? err : lambdaError(err);
      const retrier = (state.Retry ?? []).find((r: Json) => errorMatches(r.ErrorEquals, e.error));
      if (!retrier) throw e;
      known(
        retrier,
        [
          'ErrorEquals',
          'IntervalSeconds',
          'MaxAttempts',
          'BackoffRate',
          'JitterStrategy',
          'MaxDelaySeconds',
        ],
        `${name}.Retry`,
      );
      const count = used.get(retrier) ?? 0;
      if (count >= (retrier.MaxAttempts ?? 3)) throw e;
      used.set(retrier, count + 1);
      const wait = Math.min(
        (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** count,
        retrier.MaxDelaySeconds ?? Number.POSITIVE_INFINITY,
      );
      // Recorded, not slept: the test asserts the backoff, and runs in seconds.
      history.push(
        `retry ${name} ${e.error} wait<=${wait}${retrier.JitterStrategy === 'FULL' ? ' (full jitter)' : ''}`,
      );
    }
  }
}

/** A function's error as Step Functions names it: the error's name (the Lambda errorType). */
function lambdaError(err: unknown): StatesError {
  const e = err as { name?: string; message?: string };
  return new StatesError(e?.name ?? 'Error', e?.message ?? String(err));
}

function errorMatches(errors: readonly string[], error: string): boolean {
  return (
    errors.includes(error) || (errors.includes('States.ALL') && !error.startsWith('States.Runtime'))
  );
}

function matches(rule: Json, data: Json, context: Context): boolean {
  known(rule, ['Variable', 'BooleanEquals', 'StringEquals', 'Next'], 'Choice rule');
  const value = path(rule.Variable, data, context);
  if ('BooleanEquals' in rule) return value === rule.BooleanEquals;
  if ('StringEquals' in rule) return value === rule.StringEquals;
  throw new Error(`not modelled: Choice rule ${JSON.stringify(rule)}`);
}

/** A JSONPath of the forms the definition uses: `$`, `$.a.b`, `$$.A.B`. */
function path(p: string, data: Json, context: Context): Json {
  const m = /^(\$\$?)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$/.exec(p);
  if (!m) throw new Error(`not modelled: path ${p}`);
  let v: Json = m[1] === '$$' ? context : data;
  for (const part of (m[2] ?? '').split('.').slice(1)) {
    if (v === null || typeof v !== 'object' || !(part in v))
      throw new StatesError('States.Runtime', `path ${p} not found in the input`);
    v = v[part];
  }
  return v;
}

/** Parameters / ItemSelector: keys ending in `.$` take a path's value; others are literal. */
function shape(template: Json, data: Json, context: Context): Json {
  if (template === null || typeof template !== 'object' || Array.isArray(template)) return template;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(template))
    if (k.endsWith('.$')) out[k.slice(0, -2)] = path(v as string, data, context);
    else out[k] = shape(v, data, context);
  return out;
}

/** ResultPath: null keeps the input, `$` replaces it, `$.a` sets a field of a copy. */
function place(data: Json, resultPath: string | null | undefined, result: Json): Json {
  if (resultPath === null) return data;
  if (resultPath === undefined || resultPath === '$') return result;
  const m = /^\$\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(resultPath);
  if (!m) throw new Error(`not modelled: ResultPath ${resultPath}`);
  return { ...data, [m[1] as string]: result };
}
