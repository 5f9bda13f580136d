/**
 * `npm run bench -- --helper`: how long `docker-credential-regtoken get` and the kubelet
 * provider take, cold and warm, and how many AWS calls each answer costs (issue 10,
 * docs/performance.md "Credential helper").
 *
 * Every answer is a new process of the built bin (`node bin/docker-credential-regtoken.js`,
 * built first, into .bench/helper-build), as Docker starts one per pull, timed from spawn to exit, with its CPU time
 * from GNU time. AWS is moto_server behind the loopback fault proxy, which counts the calls each
 * process makes. The floor is a Node.js process that does nothing (`node -e ""`): what any
 * helper written for Node.js pays.
 */

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARN, type Creds, FROM, startMintedWorld } from '../test/helpers/minted-world.js';
import { table } from './report.js';
import { median, percentile } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOST = 'registry.bench';
/**
 * The package as installed, built here rather than in dist/ (which tests may be reading):
 * `BUILD/bin/*.js` run `BUILD/dist/…` exactly as `bin/` runs `dist/`; node_modules is found
 * up the tree, in the repository (for what the bundles leave out: nothing but Node's own).
 */
const BUILD = join(ROOT, '.bench', 'helper-build');
const HELPER = join(BUILD, 'bin/docker-credential-regtoken.js');
const PROVIDER = join(BUILD, 'bin/regtoken-credential-provider.js');

/** One way of answering, measured. */
export interface HelperPath {
  readonly name: string;
  /** AWS calls of the first answer (`STS GetCallerIdentity`, `S3 GET /bucket/key`). */
  readonly calls: readonly string[];
  /** AWS calls of every answer. */
  readonly callCounts: readonly number[];
  /** Milliseconds from spawn to exit, per answer. */
  readonly samples: readonly number[];
  /** CPU milliseconds (user + system) of each answer's process, when /usr/bin/time is there. */
  readonly cpuSamples: readonly number[];
}

/** What {@link benchHelper} measured. */
export interface HelperBenchResult {
  readonly startedAt: string;
  readonly paths: readonly HelperPath[];
}

interface Run {
  readonly ms: number;
  readonly cpuMs: number | undefined;
  readonly calls: string[];
}

/** GNU time reports a process's CPU time; wall time on a busy machine says more about the load. */
const TIME = '/usr/bin/time';

/** Builds the code the bins run (as `npm run build` does) into {@link BUILD}. */
function build(): void {
  rmSync(BUILD, { recursive: true, force: true });
  execFileSync(process.execPath, [join(ROOT, 'scripts/bundle-bins.mjs'), join(BUILD, 'dist/bin')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  cpSync(join(ROOT, 'bin'), join(BUILD, 'bin'), { recursive: true });
}

/** Measures the helpers; `log` reports progress. */
export async function benchHelper(
  log: (message: string) => void,
  options: { warmRuns?: number; coldRuns?: number } = {},
): Promise<HelperBenchResult> {
  const warmRuns = options.warmRuns ?? 21;
  const coldRuns = options.coldRuns ?? 9;
  const startedAt = new Date().toISOString();
  log('helper: building the bins');
  build();
  const world = await startMintedWorld(HOST);
  const work = join(ROOT, '.bench', 'helper');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    let homes = 0;
    const home = () => {
      homes += 1;
      const dir = join(work, `home-${homes}`);
      mkdirSync(dir, { recursive: true });
      return dir;
    };
    const env = (creds: Creds, dir: string): NodeJS.ProcessEnv => ({
      ...world.childEnv(),
      ...creds,
      HOME: dir,
      REGTOKEN_FROM: FROM,
      REGTOKEN_REGISTRY: HOST,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    const timeFile = join(work, 'time.txt');
    const timed = existsSync(TIME);
    const once = async (args: string[], input: string, e: NodeJS.ProcessEnv): Promise<Run> => {
      const before = world.proxy.calls.length;
      const [cmd, cmdArgs] = timed
        ? [TIME, ['-f', '%U %S', '-o', timeFile, process.execPath, ...args]]
        : [process.execPath, args];
      const t0 = performance.now();
      const proc = spawn(cmd, cmdArgs, { env: e, stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      proc.stdin.end(input);
      const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
      const ms = performance.now() - t0;
      if (code !== 0) throw new Error(`${args.join(' ')} failed (exit ${code}): ${stderr}`);
      const cpu = timed ? readFileSync(timeFile, 'utf8').trim().split(/\s+/).map(Number) : [];
      const cpuMs = cpu.length === 2 ? ((cpu[0] ?? 0) + (cpu[1] ?? 0)) * 1000 : undefined;
      return { ms, cpuMs, calls: world.proxy.calls.slice(before) };
    };
    const measure = async (
      name: string,
      runs: number,
      one: (i: number) => Promise<Run>,
    ): Promise<HelperPath> => {
      log(`helper: ${name}`);
      const results: Run[] = [];
      for (let i = 0; i < runs; i++) results.push(await one(i));
      return {
        name,
        calls: results[0]?.calls ?? [],
        callCounts: results.map((r) => r.calls.length),
        samples: results.map((r) => r.ms),
        cpuSamples: results.flatMap((r) => (r.cpuMs === undefined ? [] : [r.cpuMs])),
      };
    };
    const get = (e: NodeJS.ProcessEnv) => once([HELPER, 'get'], HOST, e);
    const request = JSON.stringify({
      apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      kind: 'CredentialProviderRequest',
      image: `${HOST}/team-a/app:1`,
    });

    const alice = await world.userCreds('alice');
    const ci = await world.roleSession(ARN.ci, 'bench');
    const aliceHome = home();
    const ciHome = home();
    const sessions = await Promise.all(
      Array.from({ length: coldRuns }, (_, i) => world.roleSession(ARN.ci, `job-${i}`)),
    );
    // Warm up the file system cache and the proxy; not measured.
    await get(env(alice, aliceHome));
    await get(env(ci, ciHome));

    const paths = [
      await measure('Node.js doing nothing (`node -e ""`, the floor)', warmRuns, () =>
        once(['-e', ''], '', env(alice, aliceHome)),
      ),
      await measure('get, cold: empty cache (IAM user, access keys)', coldRuns, () =>
        get(env(alice, home())),
      ),
      await measure('get, cold: empty cache (assumed-role session)', coldRuns, () =>
        get(env(ci, home())),
      ),
      await measure('get, new session of a role whose token is cached', coldRuns, (i) =>
        get(env(sessions[i] as Creds, ciHome)),
      ),
      await measure('get, warm (IAM user, access keys)', warmRuns, () =>
        get(env(alice, aliceHome)),
      ),
      await measure('get, warm (assumed-role session)', warmRuns, () => get(env(ci, ciHome))),
      await measure('kubelet provider, warm (instance-role session)', warmRuns, () =>
        once([PROVIDER], request, env(ci, ciHome)),
      ),
    ];
    return { startedAt, paths };
  } finally {
    await world.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const ms = (n: number) => `${Math.round(n)} ms`;

/** The results as Markdown: one row per path. */
export function renderHelperMarkdown(r: HelperBenchResult, machine: string): string {
  const rows = r.paths.map((p) => {
    const calls = [...new Set(p.callCounts)];
    return [
      p.name,
      calls.length === 1 ? String(calls[0]) : calls.join('–'),
      p.calls.length ? p.calls.map((c) => c.replace(/ \/.*$/, '')).join(' + ') : '—',
      ms(median(p.samples)),
      ms(percentile(p.samples, 90)),
      ms(Math.min(...p.samples)),
      p.cpuSamples.length ? ms(median(p.cpuSamples)) : '—',
      String(p.samples.length),
    ];
  });
  return [
    `Measured ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC on ${machine}.`,
    '',
    table(
      ['answer', 'AWS calls', 'which', 'wall median', 'wall p90', 'wall min', 'CPU median', 'runs'],
      rows,
    ),
    '',
    'Wall: spawn to exit. CPU: user + system time of the process (GNU time), which the load of',
    'other work on the machine changes far less than wall time.',
  ].join('\n');
}

export const HELPER_BEGIN =
  '<!-- bench:helper:begin (written by npm run bench -- --helper; do not edit by hand) -->';
export const HELPER_END = '<!-- bench:helper:end -->';
