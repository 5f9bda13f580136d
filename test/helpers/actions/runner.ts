/**
 * Replays a GitHub Actions workflow on this machine the way a hosted runner runs it, so a test
 * can see whether it really works: the jobs the event selects (job `if:`, `needs:` order), every
 * `run:` step in bash (`bash --noprofile --norc -eo pipefail`, expressions substituted into the
 * script first, as the runner does), the runner's file protocol between steps (GITHUB_PATH,
 * GITHUB_ENV, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY), composite actions step by step (`inputs`,
 * `github.action_path`, their `outputs`), and status functions (`always()`, `failure()`): a
 * failing step fails its job and skips what follows unless a condition says otherwise.
 *
 * `uses:` steps of other actions run through stand-ins the test provides (test/helpers/actions/
 * stand-ins.ts): they do what the action does, with local parts. A `uses:` with neither a
 * stand-in nor a local composite action fails the replay.
 */

import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { run } from '../process.js';
import { conditionHolds, type ExpressionContext, interpolate } from './expressions.js';

/** A step of a job or of a composite action, as written in YAML. */
export interface StepSpec {
  readonly id?: string;
  readonly name?: string;
  readonly if?: string | boolean;
  readonly uses?: string;
  readonly run?: string;
  readonly shell?: string;
  readonly with?: Record<string, unknown>;
  readonly env?: Record<string, unknown>;
  readonly 'working-directory'?: string;
  readonly 'continue-on-error'?: boolean;
}

/** A job as written in YAML. */
export interface JobSpec {
  readonly if?: string | boolean;
  readonly needs?: string | string[];
  readonly permissions?: Record<string, string>;
  readonly env?: Record<string, unknown>;
  readonly steps: StepSpec[];
}

/** What a stand-in (or a step) can do to its job, as an action can through the runner. */
export interface StepIo {
  readonly job: string;
  readonly workspace: string;
  readonly runnerTemp: string;
  readonly permissions: Readonly<Record<string, string>>;
  /** The step's environment (job env + step env + runner variables). */
  readonly env: Readonly<Record<string, string>>;
  addPath(dir: string): void;
  exportVariable(name: string, value: string): void;
  setOutput(name: string, value: string): void;
  appendSummary(markdown: string): void;
  log(text: string): void;
}

/** A stand-in for one action: does what the action does, with `inputs` from `with:`. */
export type StandIn = (inputs: Readonly<Record<string, string>>, io: StepIo) => Promise<void>;

/** How one step ended. */
export interface StepRecord {
  readonly job: string;
  readonly name: string;
  readonly outcome: 'success' | 'failure' | 'skipped';
  readonly output: string;
}

/** How one job ended. */
export interface JobRecord {
  readonly result: 'success' | 'failure' | 'skipped';
  readonly summary: string;
  readonly steps: StepRecord[];
}

/** Everything about one replayed workflow run. */
export interface ReplayResult {
  readonly jobs: Record<string, JobRecord>;
  /** One line per step, for failure messages. */
  describe(): string;
}

/** What to replay, and on what. */
export interface ReplayOptions {
  /** The workflow file. */
  readonly workflow: string;
  readonly event: {
    readonly name: string;
    /** `refs/heads/main`, `refs/pull/7/merge`, … */
    readonly ref: string;
    readonly payload: Record<string, unknown>;
  };
  /** `OWNER/NAME` of the repository the workflow runs in. */
  readonly repository: string;
  readonly vars?: Readonly<Record<string, string>>;
  readonly secrets?: Readonly<Record<string, string>>;
  /** A fresh directory for this run (workspaces, runner temp folders, homes). */
  readonly dir: string;
  /** The runner machine's environment (PATH, tool settings); GITHUB_* and RUNNER_* are added. */
  readonly machineEnv: Readonly<Record<string, string>>;
  /** Stand-ins by action name (`owner/repo`, without `@ref`). */
  readonly standIns: Readonly<Record<string, StandIn>>;
  /** The folder of a composite action for `uses:` (name without `@ref`), if it is one. */
  readonly compositeAction?: (name: string) => string | undefined;
  /** Time limit for one `run:` step. */
  readonly stepTimeoutMs?: number;
}

/** Parses the runner's `NAME=value` / `NAME<<DELIMITER` file format (GITHUB_ENV, GITHUB_OUTPUT). */
export function parseKeyValueFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i] as string);
      if (i >= lines.length) throw new Error(`${name}: no closing delimiter ${delimiter}`);
      out.push([name, value.join('\n')]);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`invalid line in a runner file: ${line}`);
    out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

function sha256Files(root: string, patterns: string[]): string {
  // Enough for `hashFiles('file')` on plain paths (no globs needed by the workflows here).
  const hash = createHash('sha256');
  let any = false;
  for (const pattern of patterns) {
    if (/[*?[]/.test(pattern)) throw new Error(`hashFiles: globs are not supported: ${pattern}`);
    const file = join(root, pattern);
    try {
      if (statSync(file).isFile()) {
        hash.update(createHash('sha256').update(readFileSync(file)).digest());
        any = true;
      }
    } catch {
      // no such file: contributes nothing
    }
  }
  return any ? hash.digest('hex') : '';
}

function strings(record: Record<string, unknown> | undefined, ctx: ExpressionContext) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record ?? {}))
    out[k] = interpolate(typeof v === 'string' ? v : String(v), ctx);
  return out;
}

/** The state of one job while it runs. */
class JobRun {
  readonly env: Record<string, string> = {};
  readonly paths: string[] = [];
  summary = '';
  succeeded = true;
  readonly records: StepRecord[] = [];
  readonly workspace: string;
  readonly runnerTemp: string;
  readonly home: string;

  constructor(
    readonly name: string,
    readonly spec: JobSpec,
    readonly options: ReplayOptions,
    readonly contexts: Record<string, unknown>,
  ) {
    const root = join(options.dir, name);
    this.workspace = join(root, 'work');
    this.runnerTemp = join(root, 'temp');
    this.home = join(root, 'home');
    for (const d of [this.workspace, this.runnerTemp, this.home]) mkdirSync(d, { recursive: true });
  }

  expressionContext(extra: Record<string, unknown> = {}): ExpressionContext {
    return {
      contexts: {
        ...this.contexts,
        env: { ...this.env },
        runner: { temp: this.runnerTemp, os: 'Linux', arch: 'X64' },
        ...extra,
      },
      succeeded: this.succeeded,
      hashFiles: (patterns) => sha256Files(this.workspace, patterns),
    };
  }

  /** The environment of a step's process. */
  processEnv(stepEnv: Record<string, string>, files: Record<string, string>) {
    const machine = this.options.machineEnv;
    const github = this.contexts.github as Record<string, unknown>;
    const env: Record<string, string> = {
      ...machine,
      HOME: this.home,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.workspace,
      GITHUB_EVENT_NAME: String(github.event_name),
      GITHUB_EVENT_PATH: join(this.options.dir, 'event.json'),
      GITHUB_REF: String(github.ref),
      GITHUB_SHA: String(github.sha),
      GITHUB_REPOSITORY: String(github.repository),
      GITHUB_RUN_ID: String(github.run_id),
      GITHUB_JOB: this.name,
      RUNNER_TEMP: this.runnerTemp,
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      ...this.env,
      ...stepEnv,
      ...files,
    };
    // Only a job allowed to mint an OIDC token gets the runner's token request variables.
    if (this.spec.permissions?.['id-token'] === 'write') {
      env.ACTIONS_ID_TOKEN_REQUEST_URL = 'http://127.0.0.1:9/oidc-token-replay';
      env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = 'replay-request-token';
    }
    env.PATH = [...this.paths, machine.PATH ?? ''].join(':');
    return env;
  }
}

/** Replays the jobs of `options.workflow` that `options.event` starts, in `needs:` order. */
export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const workflow = parse(readFileSync(options.workflow, 'utf8')) as {
    env?: Record<string, unknown>;
    jobs: Record<string, JobSpec>;
  };
  mkdirSync(options.dir, { recursive: true });
  writeFileSync(join(options.dir, 'event.json'), JSON.stringify(options.event.payload));
  const github = {
    event_name: options.event.name,
    event: options.event.payload,
    ref: options.event.ref,
    sha: '0123456789abcdef0123456789abcdef01234567',
    repository: options.repository,
    repository_owner: options.repository.split('/')[0],
    run_id: '4242',
    run_attempt: '1',
    token: 'replay-github-token',
    workspace: '',
  };
  const jobs: Record<string, JobRecord> = {};
  const done = new Set<string>();
  const order = Object.keys(workflow.jobs);
  while (done.size < order.length) {
    const next = order.find((name) => {
      if (done.has(name)) return false;
      const needs = [(workflow.jobs[name] as JobSpec).needs ?? []].flat();
      return needs.every((n) => done.has(n));
    });
    if (next === undefined) throw new Error('jobs: a needs cycle or an unknown job in needs');
    const spec = workflow.jobs[next] as JobSpec;
    const needs = [spec.needs ?? []].flat();
    const needsContext = Object.fromEntries(
      needs.map((n) => [n, { result: jobs[n]?.result ?? 'skipped', outputs: {} }]),
    );
    const contexts = {
      github,
      vars: options.vars ?? {},
      secrets: { GITHUB_TOKEN: github.token, ...options.secrets },
      needs: needsContext,
    };
    const job = new JobRun(next, spec, options, contexts);
    (contexts.github as { workspace: string }).workspace = job.workspace;
    // A job whose needs did not all succeed is skipped unless its condition asks for it.
    job.succeeded = needs.every((n) => jobs[n]?.result === 'success');
    Object.assign(job.env, strings(workflow.env, job.expressionContext()));
    if (!conditionHolds(spec.if, job.expressionContext())) {
      jobs[next] = { result: 'skipped', summary: '', steps: [] };
    } else {
      job.succeeded = true;
      Object.assign(job.env, strings(spec.env, job.expressionContext()));
      await runSteps(job, spec.steps, { steps: {} });
      jobs[next] = {
        result: job.succeeded ? 'success' : 'failure',
        summary: job.summary,
        steps: job.records,
      };
    }
    done.add(next);
  }
  return {
    jobs,
    describe: () =>
      Object.entries(jobs)
        .map(([name, j]) =>
          [
            `job ${name}: ${j.result}`,
            ...j.steps.map(
              (s) =>
                `  ${s.outcome.padEnd(7)} ${s.name}${s.outcome === 'failure' ? `\n${s.output.trimEnd().split('\n').slice(-25).join('\n')}` : ''}`,
            ),
          ].join('\n'),
        )
        .join('\n'),
  };
}

/** The scope of a list of steps: the job's, or a composite action's. */
interface Scope {
  readonly steps: Record<string, { outputs: Record<string, string>; outcome: string }>;
  readonly inputs?: Record<string, string>;
  readonly actionPath?: string;
  /** Environment every step of this scope inherits (a composite action's caller's `env:`). */
  readonly env?: Record<string, string>;
  readonly prefix?: string;
}

async function runSteps(job: JobRun, steps: StepSpec[], scope: Scope): Promise<void> {
  for (const [index, step] of steps.entries()) {
    const name = `${scope.prefix ?? ''}${step.name ?? step.uses ?? step.run?.split('\n')[0] ?? `step ${index}`}`;
    const extra = {
      steps: scope.steps,
      ...(scope.inputs ? { inputs: scope.inputs } : {}),
      ...(scope.actionPath
        ? {
            github: {
              ...(job.contexts.github as object),
              action_path: scope.actionPath,
            },
          }
        : {}),
    };
    if (!conditionHolds(step.if, job.expressionContext(extra))) {
      job.records.push({ job: job.name, name, outcome: 'skipped', output: '' });
      if (step.id) scope.steps[step.id] = { outputs: {}, outcome: 'skipped' };
      continue;
    }
    const ctx = job.expressionContext(extra);
    const stepEnv = {
      ...scope.env,
      ...(scope.actionPath ? { GITHUB_ACTION_PATH: scope.actionPath } : {}),
      ...strings(step.env, ctx),
    };
    const outputs: Record<string, string> = {};
    let output = '';
    let ok: boolean;
    try {
      ok = await runOne(job, step, stepEnv, ctx, outputs, scope, (text) => {
        output += text;
      });
    } catch (err) {
      output += `replay: ${(err as Error).stack ?? err}\n`;
      ok = false;
    }
    job.records.push({ job: job.name, name, outcome: ok ? 'success' : 'failure', output });
    if (step.id) scope.steps[step.id] = { outputs, outcome: ok ? 'success' : 'failure' };
    if (!ok && !step['continue-on-error']) job.succeeded = false;
  }
}

/** Runs one step; returns whether it succeeded. */
async function runOne(
  job: JobRun,
  step: StepSpec,
  stepEnv: Record<string, string>,
  ctx: ExpressionContext,
  outputs: Record<string, string>,
  scope: Scope,
  log: (text: string) => void,
): Promise<boolean> {
  const id = randomUUID();
  const files = {
    GITHUB_ENV: join(job.runnerTemp, `env-${id}`),
    GITHUB_PATH: join(job.runnerTemp, `path-${id}`),
    GITHUB_OUTPUT: join(job.runnerTemp, `output-${id}`),
    GITHUB_STEP_SUMMARY: join(job.runnerTemp, `summary-${id}`),
  };
  for (const f of Object.values(files)) writeFileSync(f, '');
  const env = job.processEnv(stepEnv, files);
  let ok: boolean;
  if (step.run !== undefined) {
    if (scope.actionPath && !step.shell)
      throw new Error('a run step of a composite action must set shell');
    const shell = step.shell ?? 'bash';
    if (shell !== 'bash') throw new Error(`shell ${shell} is not supported by the replay`);
    const script = join(job.runnerTemp, `${id}.sh`);
    writeFileSync(script, interpolate(step.run, ctx));
    const cwd = step['working-directory']
      ? join(job.workspace, interpolate(step['working-directory'], ctx))
      : job.workspace;
    const r = await run('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
      env,
      cwd,
      timeoutMs: job.options.stepTimeoutMs ?? 300_000,
    });
    log(r.stdout + r.stderr + (r.code === 0 ? '' : `\n[exit ${r.code}]\n`));
    ok = r.code === 0;
  } else if (step.uses !== undefined) {
    ok = await runAction(job, step, env, ctx, outputs, log);
  } else {
    throw new Error('a step needs run or uses');
  }
  // The runner applies the files after the step, whatever its outcome.
  for (const [k, v] of parseKeyValueFile(readFileSync(files.GITHUB_ENV, 'utf8'))) job.env[k] = v;
  for (const line of readFileSync(files.GITHUB_PATH, 'utf8').split('\n'))
    if (line.trim()) job.paths.unshift(line.trim());
  for (const [k, v] of parseKeyValueFile(readFileSync(files.GITHUB_OUTPUT, 'utf8'))) outputs[k] = v;
  job.summary += readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8');
  return ok;
}

async function runAction(
  job: JobRun,
  step: StepSpec,
  env: Record<string, string>,
  ctx: ExpressionContext,
  outputs: Record<string, string>,
  log: (text: string) => void,
): Promise<boolean> {
  const uses = step.uses as string;
  const name = uses.replace(/@.*$/, '');
  const inputs = strings(step.with, ctx);
  const standIn = job.options.standIns[name];
  if (standIn) {
    const io: StepIo = {
      job: job.name,
      workspace: job.workspace,
      runnerTemp: job.runnerTemp,
      permissions: job.spec.permissions ?? {},
      env,
      addPath: (dir) => writeFileSync(env.GITHUB_PATH as string, `${dir}\n`, { flag: 'a' }),
      exportVariable: (k, v) =>
        writeFileSync(env.GITHUB_ENV as string, `${k}<<EOF_${k}\n${v}\nEOF_${k}\n`, { flag: 'a' }),
      setOutput: (k, v) => {
        outputs[k] = v;
      },
      appendSummary: (md) => writeFileSync(env.GITHUB_STEP_SUMMARY as string, md, { flag: 'a' }),
      log,
    };
    try {
      await standIn(inputs, io);
      return true;
    } catch (err) {
      log(`${uses}: ${(err as Error).message}\n`);
      return false;
    }
  }
  const dir = job.options.compositeAction?.(name);
  if (!dir) throw new Error(`no stand-in and no composite action for uses: ${uses}`);
  const action = parse(readFileSync(join(dir, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, { default?: string; required?: boolean }>;
    outputs?: Record<string, { value: string }>;
    runs: { using: string; steps: StepSpec[] };
  };
  if (action.runs.using !== 'composite') throw new Error(`${uses}: not a composite action`);
  const resolved: Record<string, string> = {};
  for (const [k, spec] of Object.entries(action.inputs ?? {})) {
    const given = inputs[k];
    if (spec.required && (given === undefined || given === ''))
      throw new Error(`${uses}: input ${k} is required`);
    resolved[k] = given ?? interpolate(spec.default ?? '', ctx);
  }
  for (const k of Object.keys(inputs))
    if (!(k in resolved)) throw new Error(`${uses}: unexpected input ${k}`);
  const scope: Scope = {
    steps: {},
    inputs: resolved,
    actionPath: dir,
    env: strings(step.env, ctx),
    prefix: `${step.name ?? name} › `,
  };
  const before = job.records.length;
  const wasSucceeded = job.succeeded;
  await runSteps(job, action.runs.steps, scope);
  const failed = job.records.slice(before).some((r) => r.outcome === 'failure');
  for (const [k, o] of Object.entries(action.outputs ?? {}))
    outputs[k] = interpolate(
      o.value,
      job.expressionContext({ steps: scope.steps, inputs: resolved }),
    );
  log(`composite ${uses}: ${failed ? 'failed' : 'succeeded'}\n`);
  job.succeeded = wasSucceeded;
  return !failed;
}

/** Every file under `dir`, relative to it (for assertions about a workspace). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
