import { fileURLToPath } from 'node:url';
import { freePort, waitForHttp } from './net.js';
import { type LongRunningProcess, startProcess } from './process.js';

const ENTRY = fileURLToPath(new URL('./regtoken-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Options for {@link startRealm}. */
export interface RealmOptions {
  /** `--trust`: a PEM file or `s3://TOKEN_BUCKET[/PREFIX]`. */
  readonly trust: string;
  readonly service: string;
  readonly issuer: string;
  /** Extra environment (AWS settings for an s3:// trust); nothing else is inherited but PATH. */
  readonly env?: NodeJS.ProcessEnv;
}

/** A `regtoken realm` server started by {@link startRealm}. */
export interface RunningRealm {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** `http://127.0.0.1:PORT/token`: the registry's `auth.token.realm`. */
  readonly tokenUrl: string;
  readonly process: LongRunningProcess;
  /** The JSON log lines written so far. */
  logLines(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * Starts `regtoken realm` from source in its own process on a free loopback port and waits
 * until `/healthz` answers 200 (the trust bundle is loaded). Throws with the server's output if
 * it exits or never becomes healthy.
 */
export async function startRealm(options: RealmOptions): Promise<RunningRealm> {
  const port = await freePort();
  const proc = startProcess(
    process.execPath,
    [
      '--import',
      'tsx',
      ENTRY,
      'realm',
      '--trust',
      options.trust,
      '--service',
      options.service,
      '--issuer',
      options.issuer,
      '--listen',
      `127.0.0.1:${port}`,
    ],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env }, cwd: ROOT },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`, {
      okStatuses: [200],
      timeoutMs: 30_000,
      giveUpIf: () => {
        const code = proc.exitCode();
        return code === undefined ? undefined : `regtoken realm exited with code ${code}`;
      },
    });
  } catch (err) {
    await proc.stop();
    throw new Error(`${(err as Error).message}\n--- regtoken realm output ---\n${proc.output()}`);
  }
  return {
    url,
    tokenUrl: `${url}/token`,
    process: proc,
    logLines: () =>
      proc
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: () => proc.stop(),
  };
}
