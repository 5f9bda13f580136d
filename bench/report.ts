/**
 * The benchmark's result, the targets of issue 6 checked against it, and its tables (Markdown,
 * printed as they are and written into docs/performance.md).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import type { BundleResult } from './bundle.js';
import { type CallCounts, serviceTotal } from './counter.js';
import type { AwsSetup, E2EResult } from './e2e.js';
import type { EngineResult } from './engine.js';
import type { HostileCase } from './hostile.js';
import type { LocalResult } from './local.js';
import { median } from './stats.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly node: string;
  readonly os: string;
  readonly moto: string;
  /** 1-minute load average before and after the bench: other work on the machine skews timings. */
  readonly loadBefore: number;
  readonly loadAfter: number;
}

export interface SizeResult {
  readonly n: number;
  readonly workload: {
    readonly accounts: number;
    readonly grants: number;
    readonly repositories: number;
    readonly configBytes: number;
    readonly localPrincipals: number;
    readonly deletedPrincipals: number;
  };
  readonly engine: EngineResult;
  /**
   * The engine when the grants text is the one last parsed (a warm container's scheduled run:
   * GrantsCache keeps the validated model, so only resolve, claims and signing remain).
   */
  readonly engineUnchanged: EngineResult;
  /** `regtoken mint` into a folder against its floor (bench/local.ts). */
  readonly local: LocalResult;
  readonly setup: AwsSetup;
  readonly e2e: E2EResult;
}

export interface BenchResult {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly sizes: readonly SizeResult[];
  readonly bundle: BundleResult;
  /** The size at which KMS direct mode was measured. */
  readonly directAt: number;
  /** Inputs built to be slow (bench/hostile.ts). */
  readonly hostile: readonly HostileCase[];
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  /** Undefined when this run cannot tell (a comparison across sizes, with one size). */
  readonly met: boolean | undefined;
}

const IAM_PAGE = 1000;
export const LIMITS = {
  engineRatio: 1.3,
  localRatio: 1.5,
  e2eRatio: 1.2,
  policyBytes: 20 * 1024,
  rssMiB: 256,
  bundleBytes: 1024 * 1024,
  coldLoadMs: 200,
  hostileMs: 1000,
} as const;

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${int(n)} ms`);
const ratio = (a: number, b: number): number => a / b;
/** Milliseconds with a precision that suits them, down to microseconds. */
const time = (n: number): string =>
  n >= 10 ? ms(n) : n >= 0.1 ? `${n.toFixed(2)} ms` : `${(n * 1000).toFixed(1)} µs`;
const x = (r: number): string => `${r.toFixed(2)}×`;

/** moto's CPU time in a steady run and in its floor (medians), and their ratio. */
function serverCpu(e: E2EResult): string {
  if (!e.serverCpu?.runs.length || !e.serverCpu.floors.length) return '—';
  const run = median(e.serverCpu.runs);
  const floor = median(e.serverCpu.floors);
  return `${ms(run)} / ${ms(floor)} (${x(ratio(run, floor))})`;
}
const mib = (kib: number): string => `${int(kib / 1024)} MiB`;
const bytes = (n: number): string => (n >= 10_240 ? `${(n / 1024).toFixed(1)} KiB` : `${int(n)} B`);

/** `PutObject 10,000 · ListObjectsV2 11` for one service. */
function ops(calls: CallCounts, service: string): string {
  const entries = Object.entries(calls[service] ?? {});
  return entries.length ? entries.map(([op, n]) => `${op} ${int(n)}`).join(' · ') : '—';
}

/** The most IAM + STS calls the run may make: pages of ListRoles and ListUsers, plus one STS call for the one account IAM can check. */
export function iamBound(setup: AwsSetup): number {
  return Math.ceil(setup.iamRoles / IAM_PAGE) + Math.ceil(setup.iamUsers / IAM_PAGE) + 1;
}

/** The steady-state run with the median time (the upper middle one for an even count). */
function steady(e: E2EResult) {
  const sorted = [...e.runs].sort((a, b) => a.ms - b.ms);
  return sorted[Math.floor(sorted.length / 2)] ?? e.first;
}

/** Each target of issue 6, measured. */
export function checkTargets(r: BenchResult): TargetCheck[] {
  const largest = r.sizes.at(-1);
  const per = (f: (s: SizeResult) => number, fmt: (v: number) => string) =>
    r.sizes.map((s) => `${int(s.n)}: ${fmt(f(s))}`).join(', ');
  const engine = (s: SizeResult) => ratio(s.engine.engineMs, s.engine.floorMs);
  const engineUnchanged = (s: SizeResult) =>
    ratio(s.engineUnchanged.engineMs, s.engineUnchanged.floorMs);
  const e2e = (s: SizeResult) => ratio(s.e2e.runMs, s.e2e.floorMs);
  const local = (s: SizeResult) => ratio(s.local.mintMs, s.local.floorMs);
  const kms = r.sizes.map((s) => serviceTotal(steady(s.e2e).calls, 'KMS'));
  const iamOk = r.sizes.every(
    (s) =>
      serviceTotal(steady(s.e2e).calls, 'IAM') + serviceTotal(steady(s.e2e).calls, 'STS') <=
      iamBound(s.setup),
  );
  const at = largest ? `at ${int(largest.n)}` : '';
  const slowest = [...r.hostile].sort(
    (a, b) => (b.ms ?? Number.POSITIVE_INFINITY) - (a.ms ?? Number.POSITIVE_INFINITY),
  )[0];
  return [
    {
      // Issue 12 allows a scheduled run the model of grants unchanged since the last run (a warm
      // container's GrantsCache): that is the run made every period.
      target: `engine ≤ ${LIMITS.engineRatio}× its floor ${at}, scheduled run (grants unchanged)`,
      measured: per(engineUnchanged, x),
      met: !!largest && engineUnchanged(largest) <= LIMITS.engineRatio,
    },
    {
      target: `engine ${at}, grants changed (parsed and validated, for comparison)`,
      measured: per(engine, x),
      met: undefined,
    },
    {
      target: `local mint ≤ ${LIMITS.localRatio}× its floor ${at}`,
      measured: per(local, x),
      met: !!largest && local(largest) <= LIMITS.localRatio,
    },
    {
      target: `end to end ≤ ${LIMITS.e2eRatio}× its floor`,
      measured: per(e2e, x),
      met: r.sizes.every((s) => e2e(s) <= LIMITS.e2eRatio),
    },
    {
      target: 'KMS calls per run constant',
      measured: `${per((s) => serviceTotal(steady(s.e2e).calls, 'KMS'), int)} (first run: ${per((s) => serviceTotal(s.e2e.first.calls, 'KMS'), int)})${kms.length < 2 ? '; constant across sizes needs two sizes' : ''}`,
      met: kms.length < 2 ? undefined : kms.every((k) => k === kms[0]),
    },
    {
      target: 'IAM calls ≤ pages of ListRoles/ListUsers + one per account',
      measured: r.sizes
        .map((s) => {
          const c = steady(s.e2e).calls;
          const calls = serviceTotal(c, 'IAM') + serviceTotal(c, 'STS');
          return `${int(s.n)}: ${int(calls)} (bound ${int(iamBound(s.setup))})`;
        })
        .join(', '),
      met: iamOk,
    },
    {
      target: `bucket policy ≤ 20 KB ${at}`,
      measured: largest ? bytes(largest.e2e.policyBytes) : '—',
      met: !!largest && largest.e2e.policyBytes <= LIMITS.policyBytes,
    },
    {
      target: `peak RSS of the run ≤ ${LIMITS.rssMiB} MB ${at}`,
      measured: largest ? mib(largest.e2e.maxRssKiB) : '—',
      met: !!largest && largest.e2e.maxRssKiB / 1024 <= LIMITS.rssMiB,
    },
    {
      target: 'Lambda bundle ≤ 1 MB',
      measured: bytes(r.bundle.bytes),
      met: r.bundle.bytes <= LIMITS.bundleBytes,
    },
    {
      target: `each hostile input refused or matched in ≤ ${ms(LIMITS.hostileMs)}`,
      measured: `slowest: ${slowest ? `${slowest.name}, ${slowest.ms === undefined ? `over the ${ms(slowest.deadlineMs)} deadline` : ms(slowest.ms)}` : '—'}`,
      met:
        r.hostile.length > 0 &&
        r.hostile.every((h) => h.ms !== undefined && h.ms <= LIMITS.hostileMs),
    },
    {
      target: `cold load ≤ ${LIMITS.coldLoadMs} ms`,
      measured: `${ms(r.bundle.coldLoadMs)} (without --enable-source-maps: ${ms(r.bundle.coldLoadNoSourceMapsMs)})`,
      met: r.bundle.coldLoadMs <= LIMITS.coldLoadMs,
    },
  ];
}

/**
 * A Markdown table with padded columns, as the repository's formatter (biome) writes them; the
 * columns `right` names are right-aligned (`---:`).
 */
export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly number[] = [],
): string {
  const widths = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (c: string, i: number) =>
    right.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0);
  const line = (cells: readonly string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = widths.map((w, i) => (right.includes(i) ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(head), `| ${rule.join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** The result as Markdown: machine, tables, targets. */
export function renderMarkdown(r: BenchResult): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(
    `Measured ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC in ${int(r.durationSeconds)} s on: ${m.cpu}, ${m.cores} cores, ${m.ramGiB.toFixed(0)} GiB RAM, Node ${m.node}, ${m.os}, moto ${m.moto}. Load average (1 min) ${m.loadBefore.toFixed(2)} before, ${m.loadAfter.toFixed(2)} after.`,
  );
  out.push('');
  out.push('**Workloads** (bench/generate.ts)');
  out.push('');
  out.push(
    table(
      [
        'principals',
        'accounts',
        'grants',
        'repositories',
        'grants file',
        'in minter account',
        'deleted from IAM',
      ],
      r.sizes.map((s) => [
        int(s.n),
        int(s.workload.accounts),
        int(s.workload.grants),
        int(s.workload.repositories),
        bytes(s.workload.configBytes),
        int(s.workload.localPrincipals),
        int(s.workload.deletedPrincipals),
      ]),
    ),
  );
  out.push('');
  out.push(
    '**Engine only** (config text → every token signed in memory; median of the repetitions; CPU ratio: user + system time of the process, which the load of other processes does not inflate; unchanged grants: the text last parsed, as a warm container re-minting an unchanged object)',
  );
  out.push('');
  out.push(
    table(
      [
        'principals',
        'tokens',
        'engine',
        'tokens/s',
        'floor (raw ES256)',
        'ratio',
        'CPU ratio',
        'ratio without parse',
        'unchanged grants: ratio (CPU)',
        'parse',
        'resolve',
        'claims + sign',
        'reps',
        'peak RSS',
      ],
      r.sizes.map((s) => {
        const e = s.engine;
        return [
          int(s.n),
          int(e.tokens),
          ms(e.engineMs),
          int(e.tokens / (e.engineMs / 1000)),
          ms(e.floorMs),
          x(ratio(e.engineMs, e.floorMs)),
          x(ratio(e.engineCpuMs, e.floorCpuMs)),
          x(ratio(e.engineMs - e.phases.parse, e.floorMs)),
          `${x(ratio(s.engineUnchanged.engineMs, s.engineUnchanged.floorMs))} (${x(ratio(s.engineUnchanged.engineCpuMs, s.engineUnchanged.floorCpuMs))})`,
          ms(e.phases.parse),
          ms(e.phases.resolve),
          ms(e.phases.claimsAndSign),
          int(e.reps),
          mib(e.maxRssKiB),
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    '**Local mint** (`regtoken mint` into an empty folder, the whole process; floor: one process signing and atomically writing the same tokens; median of the repetitions; user CPU: the work of the process itself, every thread, without the system time of the file system)',
  );
  out.push('');
  out.push(
    table(
      [
        'principals',
        'tokens',
        'regtoken mint',
        'floor',
        'ratio',
        'user CPU: mint / floor',
        'user CPU ratio',
        'reps',
      ],
      r.sizes.map((s) => [
        int(s.n),
        int(s.local.tokens),
        ms(s.local.mintMs),
        ms(s.local.floorMs),
        x(ratio(s.local.mintMs, s.local.floorMs)),
        `${ms(s.local.mintUserMs)} / ${ms(s.local.floorUserMs)}`,
        x(ratio(s.local.mintUserMs, s.local.floorUserMs)),
        int(s.local.reps),
      ]),
    ),
  );
  out.push('');
  out.push(
    '**End to end against moto_server** (the Lambda handler; steady-state run = median of the repetitions; moto CPU: the user + system time of moto_server during a steady run and during its floor, medians, in 10 ms ticks)',
  );
  out.push('');
  out.push(
    table(
      [
        'principals',
        'minted',
        'unknown',
        'removed',
        'first run',
        'steady run',
        'floor (bare PutObject)',
        'ratio',
        'moto CPU: run / floor',
        'tokens/s',
        'token p50 / max',
        'document p50',
        'policy',
        'peak RSS',
        'reps',
      ],
      r.sizes.map((s) => {
        const e = s.e2e;
        const res = steady(e).result;
        return [
          int(s.n),
          int(res.minted ?? 0),
          int(res.unknown ?? 0),
          int(res.removed ?? 0),
          ms(e.first.ms),
          ms(e.runMs),
          ms(e.floorMs),
          x(ratio(e.runMs, e.floorMs)),
          serverCpu(e),
          int((res.minted ?? 0) / (e.runMs / 1000)),
          `${bytes(e.tokenBytes.p50)} / ${bytes(e.tokenBytes.max)}`,
          bytes(e.documentBytes.p50),
          bytes(e.policyBytes),
          mib(e.maxRssKiB),
          int(e.runs.length),
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    '**AWS API calls per steady-state run** (SDK middleware at the initialize step: retries not counted)',
  );
  out.push('');
  out.push(
    table(
      ['principals', 'S3', 'IAM', 'STS', 'KMS', 'IAM + STS bound'],
      r.sizes.map((s) => {
        const c = steady(s.e2e).calls;
        return [
          int(s.n),
          ops(c, 'S3'),
          ops(c, 'IAM'),
          ops(c, 'STS'),
          ops(c, 'KMS'),
          int(iamBound(s.setup)),
        ];
      }),
    ),
  );
  out.push('');
  out.push('First run (policy written, root certificate made, no token yet):');
  out.push('');
  out.push(
    table(
      ['principals', 'S3', 'IAM', 'STS', 'KMS'],
      r.sizes.map((s) => {
        const c = s.e2e.first.calls;
        return [int(s.n), ops(c, 'S3'), ops(c, 'IAM'), ops(c, 'STS'), ops(c, 'KMS')];
      }),
    ),
  );
  const direct = r.sizes.find((s) => s.n === r.directAt);
  if (direct?.e2e.direct) {
    const cert = steady(direct.e2e);
    const d = direct.e2e.direct;
    out.push('');
    out.push(`**KMS signing modes at ${int(direct.n)} principals** (same run, same moto)`);
    out.push('');
    out.push(
      table(
        ['mode', 'KMS calls', 'KMS operations', 'run'],
        [
          [
            'certificate (default)',
            int(serviceTotal(cert.calls, 'KMS')),
            ops(cert.calls, 'KMS'),
            ms(cert.ms),
          ],
          ['direct', int(serviceTotal(d.calls, 'KMS')), ops(d.calls, 'KMS'), ms(d.ms)],
        ],
      ),
    );
  }
  const b = r.bundle;
  out.push('');
  out.push('**Lambda bundle**');
  out.push('');
  out.push(
    table(
      [
        'made by',
        'code (files)',
        'gzip',
        'source maps',
        'cold load (NODE_OPTIONS=--enable-source-maps, as deployed)',
        'cold load without source maps',
        'processes',
      ],
      [
        [
          b.method,
          `${bytes(b.bytes)} (${int(b.files)})`,
          bytes(b.gzipBytes),
          bytes(b.mapBytes),
          ms(b.coldLoadMs),
          ms(b.coldLoadNoSourceMapsMs),
          int(b.samples.length),
        ],
      ],
    ),
  );
  out.push('');
  out.push(`Bundle: ${b.note}.`);
  out.push('');
  out.push(
    '**Hostile inputs** (bench/hostile.ts; each in its own process, stopped at its deadline)',
  );
  out.push('');
  out.push(
    table(
      ['input', 'time per repetition'],
      r.hostile.map((h) => [
        h.name,
        h.ms === undefined ? `over the ${ms(h.deadlineMs)} deadline` : time(h.ms),
      ]),
    ),
  );
  out.push('');
  out.push('**Targets** (issues 6 and 12; hostile inputs: issue 14)');
  out.push('');
  out.push(
    table(
      ['target', 'measured', 'met'],
      checkTargets(r).map((t) => [
        t.target,
        t.measured,
        t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**',
      ]),
    ),
  );
  return out.join('\n');
}

export const BEGIN = '<!-- bench:results:begin (written by npm run bench; do not edit by hand) -->';
export const END = '<!-- bench:results:end -->';

/**
 * Replaces the section of `file` between `markers` (default: the mint results'), or appends
 * it; creates the file when there is none.
 */
export function writeResults(
  file: string,
  markdown: string,
  markers: { begin: string; end: string } = { begin: BEGIN, end: END },
): void {
  const { begin, end: finish } = markers;
  const section = `${begin}\n\n${markdown}\n\n${finish}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = `# Performance\n\n${begin}\n${finish}\n`;
  }
  const start = text.indexOf(begin);
  const end = text.indexOf(finish);
  const next =
    start >= 0 && end > start
      ? `${text.slice(0, start)}${section}${text.slice(end + finish.length)}`
      : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}
