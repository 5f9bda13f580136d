import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, waitForHttp } from './net.js';
import { type LongRunningProcess, requireBinary, startProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

const REGISTRY_INSTALL = 'apt-get install -y docker-registry skopeo';

/** Options for {@link startRegistry}. */
export interface RegistryOptions {
  /** `auth.token.service`: the audience the registry expects in `aud`. */
  service: string;
  /** `auth.token.issuer`: the value the registry expects in `iss`. */
  issuer: string;
  /** PEM bundle of certificates whose public keys may sign tokens (`auth.token.rootcertbundle`). */
  rootCertBundlePath: string;
  /** `auth.token.realm`; default `http://127.0.0.1:1/token` (never called by our clients). */
  realm?: string;
  /** `log.level`; default `info`. `debug` logs every auth decision in more detail. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
}

/** A registry started by {@link startRegistry}. */
export interface RunningRegistry {
  /** `127.0.0.1:PORT`, as used in `docker://HOST/REPO:TAG` references. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The filesystem storage driver's `rootdirectory` (blobs live under docker/registry/v2). */
  storageDir: string;
  /** Path of the generated config.yml. */
  configPath: string;
  /** Everything the registry wrote to stdout/stderr so far (logrus text lines). */
  logs(): string;
  /** Stops the process group (SIGTERM, SIGKILL after 3 s) and removes the temp dir. */
  stop(): Promise<void>;
}

/** JSON strings are valid YAML double-quoted scalars, so this quotes any value safely. */
const q = (value: string): string => JSON.stringify(value);

function renderConfig(opts: RegistryOptions, storageDir: string, port: number): string {
  return [
    'version: 0.1',
    'log:',
    `  level: ${opts.logLevel ?? 'info'}`,
    '  formatter: text',
    '  fields:',
    '    service: registry',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    `  secret: ${q(randomBytes(16).toString('hex'))}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    'auth:',
    '  token:',
    `    realm: ${q(opts.realm ?? 'http://127.0.0.1:1/token')}`,
    `    service: ${q(opts.service)}`,
    `    issuer: ${q(opts.issuer)}`,
    `    rootcertbundle: ${q(path.resolve(opts.rootCertBundlePath))}`,
    '',
  ].join('\n');
}

/** The registry reads REGISTRY_* variables as config overrides: never let them leak in. */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('REGISTRY_') && !/_proxy$/i.test(key)) env[key] = value;
  }
  return env;
}

/**
 * Starts the real Docker Distribution registry (`docker-registry serve config.yml`, Debian
 * package docker-registry 2.8) on a free 127.0.0.1 port with filesystem storage in a fresh temp
 * dir, deletes enabled and `auth.token` configured from `opts`, then waits until `GET /v2/`
 * answers 401 (the token challenge). Throws with the install command if the binary is missing
 * and with the registry's own log if it exits early (e.g. an unreadable rootcertbundle).
 */
export async function startRegistry(opts: RegistryOptions): Promise<RunningRegistry> {
  const binary = await requireBinary('docker-registry', REGISTRY_INSTALL);
  const dir = await makeTempDir('registry');
  const storageDir = path.join(dir, 'storage');
  const configPath = path.join(dir, 'config.yml');
  try {
    await mkdir(storageDir);
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      await writeFile(configPath, renderConfig(opts, storageDir, port));
      const proc: LongRunningProcess = startProcess(binary, ['serve', configPath], {
        env: registryEnv(),
        cwd: dir,
        installHint: REGISTRY_INSTALL,
      });
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitForHttp(`${url}/v2/`, {
          okStatuses: [401],
          timeoutMs: 15_000,
          giveUpIf: () => {
            const code = proc.exitCode();
            return code === undefined ? undefined : `docker-registry exited with code ${code}`;
          },
        });
      } catch (err) {
        await proc.stop();
        lastError = new Error(
          `${(err as Error).message}\n--- docker-registry log ---\n${proc.output()}`,
        );
        // Lost the race for the port to another process: try another one.
        if (/address already in use/.test(proc.output())) continue;
        throw lastError;
      }
      let stopped: Promise<void> | undefined;
      return {
        host: `127.0.0.1:${port}`,
        url,
        storageDir,
        configPath,
        logs: () => proc.output(),
        stop: () => {
          stopped ??= proc.stop().finally(() => removeTempDir(dir));
          return stopped;
        },
      };
    }
    throw lastError ?? new Error('startRegistry: could not start docker-registry');
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}
