import { type ChildProcess, spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';

/** Process groups (= leader pids) started by this module in the current module registry. */
const startedGroups = new Set<number>();

/** Grace period between SIGTERM and SIGKILL in {@link LongRunningProcess.stop}. */
const STOP_GRACE_MS = 3_000;

/**
 * Finds `cmd` on PATH (or checks it directly if it contains a slash) and returns its absolute
 * path; throws an Error naming the missing binary and the exact install command (`installHint`,
 * e.g. `apt-get install -y docker-registry skopeo`) otherwise. Use it before spawning anything a
 * test depends on, so a missing tool fails loudly instead of the test being skipped.
 */
export async function requireBinary(cmd: string, installHint: string): Promise<string> {
  const candidates = cmd.includes('/')
    ? [cmd]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => path.join(dir, cmd));
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return path.resolve(candidate);
    } catch {
      // not here, keep looking
    }
  }
  throw new Error(`required binary '${cmd}' not found on PATH; install it with: ${installHint}`);
}

/**
 * Throws unless this process runs as root, naming `daemon` (dockerd and containerd need root to
 * start at all); better than a failure buried in the daemon's log.
 */
export function requireRoot(daemon: string): void {
  const uid = process.getuid?.();
  if (uid !== 0) throw new Error(`${daemon} must run as root for these tests (uid ${uid})`);
}

/** Sends `signal` to the whole process group led by `pgid`; returns false if it no longer exists. */
function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0);
  return -1;
}

function spawnError(cmd: string, err: Error, installHint: string | undefined): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' && installHint !== undefined) {
    return new Error(`required binary '${cmd}' not found; install it with: ${installHint}`);
  }
  return new Error(`failed to spawn '${cmd}': ${err.message}`, { cause: err });
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Complete environment for the child (default: a copy of process.env). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the whole process group with SIGKILL after this many milliseconds (default 60000). */
  timeoutMs?: number;
  /** Written to the child's stdin, which is then closed (stdin is /dev/null otherwise). */
  input?: string | Buffer;
  /** Install command quoted in the error if the binary does not exist. */
  installHint?: string;
}

/** Result of {@link run}. */
export interface RunResult {
  /** Exit code; 128 + signal number if the child died from a signal (137 after a timeout). */
  code: number;
  stdout: string;
  stderr: string;
  /** True if the child was killed because `timeoutMs` elapsed. */
  timedOut: boolean;
}

/**
 * Runs a short command to completion in its own process group and resolves with its exit code,
 * stdout and stderr. It never rejects because of a non-zero exit or a timeout (after `timeoutMs`,
 * default 60 s, the whole group gets SIGKILL and `timedOut` is set); it only rejects if the
 * process cannot be spawned at all (e.g. the binary is missing, reported with `installHint`).
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise<RunResult>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        env: opts.env ?? { ...process.env },
        cwd: opts.cwd,
        detached: true,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      reject(spawnError(cmd, err as Error, opts.installHint));
      return;
    }
    const pgid = child.pid;
    if (pgid !== undefined) startedGroups.add(pgid);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input);
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pgid !== undefined) killGroup(pgid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(spawnError(cmd, err, opts.installHint));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      // Reap anything the command left behind in its group.
      if (pgid !== undefined) killGroup(pgid, 'SIGKILL');
      resolve({
        code: exitCodeOf(code, signal),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
      });
    });
  });
}

/** Options for {@link startProcess}. */
export interface StartProcessOptions {
  /** Complete environment for the child (default: a copy of process.env). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Install command quoted in the error if the binary does not exist. */
  installHint?: string;
  /** Keep at most this many bytes of combined output (the newest are kept; default 4 MiB). */
  maxOutputBytes?: number;
}

/** A long-running child started by {@link startProcess}. */
export interface LongRunningProcess {
  /** Pid of the child, which is also the id of its own process group. */
  readonly pid: number;
  /** Combined stdout + stderr captured so far (interleaved in arrival order). */
  output(): string;
  /** Undefined while running; the exit code (128 + signal number for signals) after exit. */
  exitCode(): number | undefined;
  /** Resolves with the exit code once the child has exited. */
  readonly exited: Promise<number>;
  /** SIGTERM to the whole group, SIGKILL after 3 s if still alive; resolves once it is gone. */
  stop(): Promise<void>;
}

/**
 * Spawns a long-running child (a server) in its own process group with stdin closed and
 * stdout/stderr captured into one bounded in-memory buffer. `stop()` sends SIGTERM to the whole
 * group, escalates to SIGKILL after 3 s, and always finishes with a SIGKILL to the group so no
 * grandchild survives; it is idempotent. A missing binary does not throw here: the spawn error
 * is appended to `output()` and `exited` resolves with -1 (call {@link requireBinary} first).
 */
export function startProcess(
  cmd: string,
  args: string[],
  opts: StartProcessOptions = {},
): LongRunningProcess {
  const maxOutputBytes = opts.maxOutputBytes ?? 4 * 1024 * 1024;
  const child = spawn(cmd, args, {
    env: opts.env ?? { ...process.env },
    cwd: opts.cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid ?? -1;
  if (pid > 0) startedGroups.add(pid);

  let chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > maxOutputBytes * 2) {
      const all = Buffer.concat(chunks);
      const kept = all.subarray(all.length - maxOutputBytes);
      chunks = [kept];
      size = kept.length;
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  let code: number | undefined;
  let spawnFailure: Error | undefined;
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      spawnFailure = spawnError(cmd, err, opts.installHint);
      onData(Buffer.from(`\n[${spawnFailure.message}]\n`));
      if (pid <= 0) {
        code = -1;
        resolve(code);
      }
    });
    child.once('exit', (exitCode, signal) => {
      code = exitCodeOf(exitCode, signal);
      resolve(code);
    });
  });
  // Streams may stay open a little longer than the process (grandchildren); that is fine.

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (pid <= 0) return;
      if (code === undefined) {
        killGroup(pid, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const escalate = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            killGroup(pid, 'SIGKILL');
            resolve();
          }, STOP_GRACE_MS);
        });
        await Promise.race([exited, escalate]);
        clearTimeout(timer);
        await exited;
      }
      // Whatever is left in the group (e.g. a shim's grandchild) goes too.
      killGroup(pid, 'SIGKILL');
    })();
    return stopping;
  };

  return {
    pid,
    output: () => Buffer.concat(chunks).toString('utf8'),
    exitCode: () => code,
    exited,
    stop,
  };
}

/**
 * Returns the process-group ids (leader pids) of every child that {@link run} or
 * {@link startProcess} spawned in this module instance (i.e. in the current Jest test file).
 * Combine with {@link livingProcessesInGroups} to assert that a test leaked nothing.
 */
export function startedProcessGroups(): number[] {
  return [...startedGroups];
}

/** A process as listed by `ps`. */
export interface PsEntry {
  pid: number;
  pgid: number;
  args: string;
}

/**
 * Lists the processes (via `ps -eo pid=,pgid=,stat=,args=`) that still belong to one of the given
 * process groups, ignoring zombies. An empty result means everything those groups contained has
 * exited, i.e. nothing leaked.
 */
export async function livingProcessesInGroups(pgids: readonly number[]): Promise<PsEntry[]> {
  const wanted = new Set(pgids);
  const res = await run('ps', ['-eo', 'pid=,pgid=,stat=,args='], { timeoutMs: 10_000 });
  if (res.code !== 0) throw new Error(`ps failed (${res.code}): ${res.stderr}`);
  const entries: PsEntry[] = [];
  for (const line of res.stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pidText, pgidText, stat, args] = m;
    const pgid = Number(pgidText);
    if (!wanted.has(pgid) || stat?.startsWith('Z')) continue;
    entries.push({ pid: Number(pidText), pgid, args: args ?? '' });
  }
  return entries;
}
