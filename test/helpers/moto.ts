import { freePort, waitForHttp } from './net.js';
import { type LongRunningProcess, requireBinary, startProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

const MOTO_INSTALL = "pip install 'moto[server]'";

/** A moto server started by {@link startMoto}. */
export interface Moto {
  /** `http://127.0.0.1:PORT`; use it as AWS_ENDPOINT_URL (see {@link awsTestEnv}). */
  endpoint: string;
  /** Pid of the moto_server process (the bench reads its CPU time). */
  readonly pid: number;
  /** Everything moto_server wrote to stdout/stderr so far (werkzeug access log, tracebacks). */
  logs(): string;
  /** Stops the process group (SIGTERM, SIGKILL after 3 s) and removes its temp dir. */
  stop(): Promise<void>;
  /** Wipes all mocked AWS state (`POST /moto-api/reset`); throws unless moto answers 200. */
  reset(): Promise<void>;
}

/** moto must not inherit real AWS settings or proxies from the developer's shell. */
function motoEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_') && !/_proxy$/i.test(key)) env[key] = value;
  }
  return { ...env, HOME: home, PYTHONUNBUFFERED: '1' };
}

/**
 * Starts the real `moto_server -H 127.0.0.1 -p PORT` (the standalone AWS stand-in from
 * `pip install 'moto[server]'`) on a free loopback port in its own process group and waits until
 * it answers HTTP. Throws with the install command if moto_server is not on PATH, and with
 * moto's output if it exits before becoming ready.
 */
export async function startMoto(): Promise<Moto> {
  const binary = await requireBinary('moto_server', MOTO_INSTALL);
  const dir = await makeTempDir('moto');
  try {
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const proc: LongRunningProcess = startProcess(
        binary,
        ['-H', '127.0.0.1', '-p', String(port)],
        { env: motoEnv(dir), cwd: dir, installHint: MOTO_INSTALL },
      );
      const endpoint = `http://127.0.0.1:${port}`;
      try {
        await waitForHttp(`${endpoint}/moto-api/`, {
          timeoutMs: 30_000,
          giveUpIf: () => {
            const code = proc.exitCode();
            return code === undefined
              ? undefined
              : `moto_server exited with code ${code} (is moto installed? ${MOTO_INSTALL})`;
          },
        });
      } catch (err) {
        await proc.stop();
        lastError = new Error(
          `${(err as Error).message}\n--- moto_server output ---\n${proc.output()}`,
        );
        if (/address already in use/i.test(proc.output())) continue;
        throw lastError;
      }
      let stopped: Promise<void> | undefined;
      return {
        endpoint,
        pid: proc.pid,
        logs: () => proc.output(),
        stop: () => {
          stopped ??= proc.stop().finally(() => removeTempDir(dir));
          return stopped;
        },
        reset: async () => {
          const res = await fetch(`${endpoint}/moto-api/reset`, {
            method: 'POST',
            signal: AbortSignal.timeout(10_000),
          });
          const body = await res.text();
          if (res.status !== 200) throw new Error(`moto reset failed: HTTP ${res.status} ${body}`);
        },
      };
    }
    throw lastError ?? new Error('startMoto: could not start moto_server');
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

/** A path that does not exist, so no SDK reads ~/.aws/config or ~/.aws/credentials. */
const NO_AWS_FILE = '/nonexistent/regtoken-test/aws';

/**
 * Variables that select a profile or another credential source; they must be absent (not
 * empty: boto3 treats `AWS_PROFILE=` as a profile named "" and fails) for the test values in
 * {@link awsTestEnv} to be used.
 */
export const AWS_VARIABLES_TO_UNSET = [
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS',
  'AWS_CA_BUNDLE',
] as const;

/**
 * Environment variables that point any AWS SDK (JS v3, boto3, aws CLI) at `endpoint` with fake
 * static credentials: AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION = us-east-1, test
 * access key and secret, AWS_EC2_METADATA_DISABLED=true, and config/credentials files pointing
 * to a nonexistent path. It cannot express "unset", so merge it with {@link awsChildEnv} (child
 * processes) or {@link applyAwsTestEnv} (process.env), which also remove AWS_PROFILE & co.
 */
export function awsTestEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: `${NO_AWS_FILE}/config`,
    AWS_SHARED_CREDENTIALS_FILE: `${NO_AWS_FILE}/credentials`,
  };
}

/**
 * A complete environment for a child process: a copy of process.env without
 * {@link AWS_VARIABLES_TO_UNSET} and proxy variables, plus {@link awsTestEnv}(endpoint).
 */
export function awsChildEnv(endpoint: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of AWS_VARIABLES_TO_UNSET) delete env[key];
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key)) delete env[key];
  return { ...env, ...awsTestEnv(endpoint) };
}

/**
 * Applies {@link awsTestEnv}(endpoint) to process.env (deleting {@link AWS_VARIABLES_TO_UNSET})
 * so in-process AWS SDK clients created afterwards talk to moto; returns a function restoring
 * the previous values (call it in afterAll). Clients created before keep their old settings.
 */
export function applyAwsTestEnv(endpoint: string): () => void {
  const values = awsTestEnv(endpoint);
  const touched = [...AWS_VARIABLES_TO_UNSET, ...Object.keys(values)];
  const saved = new Map<string, string | undefined>(touched.map((k) => [k, process.env[k]]));
  for (const key of AWS_VARIABLES_TO_UNSET) delete process.env[key];
  Object.assign(process.env, values);
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}
