/**
 * CPU time of another process, read from `/proc/PID/stat` (Linux): the bench reads moto_server's
 * around each end-to-end run and each floor. moto is one Python process whose cost per request
 * is its own CPU, so its CPU time per run says what the run asked of the AWS stand-in, whatever
 * else the machine was doing (docs/performance.md, "End to end at 100 principals").
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Milliseconds per clock tick of `/proc/PID/stat` (`getconf CLK_TCK`); undefined off Linux. */
export function msPerTick(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(hz) && hz > 0 ? 1000 / hz : undefined;
  } catch {
    return undefined;
  }
}

/** A reader of one process's CPU time. */
export interface ServerCpu {
  readonly pid: number;
  readonly msPerTick: number;
}

/**
 * User plus system CPU time of the process so far (ms), in whole clock ticks (10 ms on most
 * Linux systems); undefined when the process or `/proc` is gone.
 */
export function cpuMs(server: ServerCpu): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${server.pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces), from field 3: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks * server.msPerTick : undefined;
}
