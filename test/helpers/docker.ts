import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RunningContainerd, startContainerd } from './containerd.js';
import { buildTestImage, type TestImageOptions } from './oci.js';
import {
  type LongRunningProcess,
  type RunResult,
  requireBinary,
  requireRoot,
  run,
  startProcess,
} from './process.js';
import { skopeo } from './skopeo.js';
import { makeTempDir, removeMountedTempDir, removeTempDir } from './tmp.js';

const DOCKER_INSTALL = 'apt-get install -y docker.io';

/**
 * The Docker CLI of the Debian package sits in /usr/bin. Some machines put another (newer,
 * statically linked) `docker` earlier on PATH; the engine under test is Debian's, so its own
 * CLI is preferred and PATH is only the fallback.
 */
const DEBIAN_DOCKER_CLI = '/usr/bin/docker';

/** Options of a single {@link DockerEngine.docker} call. */
export interface DockerRunOptions {
  /** DOCKER_CONFIG for this call: a directory made by {@link DockerEngine.clientConfig}. */
  config: string;
  /** Written to the CLI's stdin (e.g. the password for `login --password-stdin`). */
  input?: string;
  /** Extra environment for the CLI (e.g. PATH with a credential helper). */
  env?: NodeJS.ProcessEnv;
  /** Default 60 s; the whole process group is killed after it. */
  timeoutMs?: number;
}

/** A Docker engine started by {@link startDockerEngine}. */
export interface DockerEngine {
  /** The API socket (`-H unix://…`); there is no /var/run/docker.sock. */
  socket: string;
  /** `unix://` + socket, as DOCKER_HOST. */
  host: string;
  /** The private temp dir (data root `d`, exec root `e`, pid file, client configs). */
  dir: string;
  /** The absolute path of the docker CLI used (Debian's, see above). */
  cli: string;
  /** The containerd this engine runs on (its own, CRI disabled). */
  containerd: RunningContainerd;
  /**
   * Makes a fresh DOCKER_CONFIG directory inside the engine's dir, holding `config.json` =
   * `config` (default `{"auths":{}}`), and returns its path. Removed by `stop()`.
   */
  clientConfig(config?: unknown): Promise<string>;
  /**
   * Runs `docker ARGS` against this engine (DOCKER_HOST set, DOCKER_CONFIG = `opts.config`, no
   * proxy variables, hints off). Never throws on a non-zero exit; resolves with code and output.
   */
  docker(args: string[], opts: DockerRunOptions): Promise<RunResult>;
  /** `docker login -u USER --password-stdin HOST`: the daemon asks the registry's realm. */
  login(config: string, host: string, username: string, password: string): Promise<RunResult>;
  /** `docker logout HOST`. */
  logout(config: string, host: string): Promise<RunResult>;
  /** `docker pull REF`. */
  pull(config: string, ref: string): Promise<RunResult>;
  /** `docker push REF`. */
  push(config: string, ref: string): Promise<RunResult>;
  /** `docker tag SRC DST`. */
  tag(source: string, target: string): Promise<RunResult>;
  /** `docker rmi REF` (the local copy only). */
  removeImage(ref: string): Promise<RunResult>;
  /** `docker load -i ARCHIVE` (a docker-archive tarball). */
  load(archive: string): Promise<RunResult>;
  /**
   * Loads the deterministic test image of {@link buildTestImage} (with `image` options) as
   * `ref`: the OCI layout is converted to a docker-archive by skopeo and `docker load`ed, so
   * there is something to push without any network. Throws if a step fails.
   */
  loadTestImage(ref: string, image?: TestImageOptions): Promise<void>;
  /** Everything dockerd wrote so far. */
  logs(): string;
  /** Stops dockerd, then its containerd; unmounts leftovers; removes the temp dir. */
  stop(): Promise<void>;
}

/** The engine must not inherit proxies, DOCKER_* settings or a systemd notify socket. */
function daemonEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: home };
}

/** GET /_ping on the API socket; true on 200. */
function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Starts the Docker engine of the Debian package `docker.io` as root, without containers:
 * `dockerd --storage-driver vfs --iptables=false --ip6tables=false --bridge=none
 * -H unix://DIR/docker.sock --data-root DIR/d --exec-root DIR/e --pidfile DIR/pid`, plus
 * `--config-file` (an empty daemon.json, so /etc/docker/daemon.json is not read) and
 * `--containerd` on a containerd of its own (without it dockerd would join a system containerd
 * at /run/containerd/containerd.sock if one runs). Registries on 127.0.0.0/8 are insecure by
 * default, so plain HTTP on loopback works. Waits until `GET /_ping` answers (30 s at most);
 * throws with the install command if dockerd is missing, unless run as root, and with its log if
 * it fails.
 */
export async function startDockerEngine(): Promise<DockerEngine> {
  const dockerd = await requireBinary('dockerd', DOCKER_INSTALL);
  const cli = existsSync(DEBIAN_DOCKER_CLI)
    ? DEBIAN_DOCKER_CLI
    : await requireBinary('docker', DOCKER_INSTALL);
  requireRoot('dockerd');
  const dir = await makeTempDir('docker');
  const socket = path.join(dir, 'docker.sock');
  const configFile = path.join(dir, 'daemon.json');
  let containerd: RunningContainerd | undefined;
  let proc: LongRunningProcess | undefined;
  try {
    await writeFile(configFile, '{}\n');
    containerd = await startContainerd({ cri: false });
    proc = startProcess(
      dockerd,
      [
        '--config-file',
        configFile,
        '--storage-driver',
        'vfs',
        '--iptables=false',
        '--ip6tables=false',
        '--bridge=none',
        '-H',
        `unix://${socket}`,
        '--data-root',
        path.join(dir, 'd'),
        '--exec-root',
        path.join(dir, 'e'),
        '--pidfile',
        path.join(dir, 'pid'),
        '--containerd',
        containerd.socket,
      ],
      { env: daemonEnv(dir), cwd: dir, installHint: DOCKER_INSTALL },
    );
    const started = proc;
    const deadline = Date.now() + 30_000;
    while (!(await ping(socket))) {
      const code = started.exitCode();
      if (code !== undefined) throw new Error(`dockerd exited with code ${code}`);
      if (Date.now() > deadline) throw new Error('dockerd did not answer /_ping within 30 s');
      await sleep(100);
    }
    return engineHandle(dir, socket, cli, started, containerd);
  } catch (err) {
    const log = proc?.output() ?? '';
    await proc?.stop();
    await containerd?.stop();
    await removeMountedTempDir(dir);
    throw new Error(`${(err as Error).message}\n--- dockerd log ---\n${log}`, { cause: err });
  }
}

function engineHandle(
  dir: string,
  socket: string,
  cli: string,
  proc: LongRunningProcess,
  containerd: RunningContainerd,
): DockerEngine {
  const host = `unix://${socket}`;
  let configs = 0;
  // A config dir only for the commands that never touch a registry (tag, rmi, load).
  const localConfig = path.join(dir, 'local-config');

  const docker = async (args: string[], opts: DockerRunOptions): Promise<RunResult> =>
    run(cli, args, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LANG: 'C.UTF-8',
        HOME: opts.config,
        DOCKER_HOST: host,
        DOCKER_CONFIG: opts.config,
        DOCKER_CLI_HINTS: 'false',
        ...opts.env,
      },
      cwd: dir,
      timeoutMs: opts.timeoutMs ?? 60_000,
      installHint: DOCKER_INSTALL,
      ...(opts.input === undefined ? {} : { input: opts.input }),
    });

  const clientConfig = async (config: unknown = { auths: {} }): Promise<string> => {
    configs += 1;
    const configDir = path.join(dir, `config-${configs}`);
    await mkdir(configDir, { mode: 0o700 });
    await writeFile(path.join(configDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    return configDir;
  };
  const local = async (args: string[]): Promise<RunResult> => {
    if (!existsSync(localConfig)) {
      await mkdir(localConfig, { mode: 0o700 });
      await writeFile(path.join(localConfig, 'config.json'), '{"auths":{}}\n');
    }
    return docker(args, { config: localConfig });
  };
  const load = (archive: string) => local(['load', '-i', archive]);

  let stopped: Promise<void> | undefined;
  return {
    socket,
    host,
    dir,
    cli,
    containerd,
    clientConfig,
    docker,
    login: (config, registry, username, password) =>
      docker(['login', '-u', username, '--password-stdin', registry], { config, input: password }),
    logout: (config, registry) => docker(['logout', registry], { config }),
    pull: (config, ref) => docker(['pull', ref], { config }),
    push: (config, ref) => docker(['push', ref], { config }),
    tag: (source, target) => local(['tag', source, target]),
    removeImage: (ref) => local(['rmi', ref]),
    load,
    loadTestImage: async (ref, image = {}) => {
      const work = await makeTempDir('docker-image');
      try {
        const layout = await buildTestImage(path.join(work, 'oci'), image);
        const archive = path.join(work, 'image.tar');
        const converted = await skopeo([
          'copy',
          `oci:${layout}:${image.tag ?? 'latest'}`,
          `docker-archive:${archive}:${ref}`,
        ]);
        if (!converted.ok) throw new Error(`skopeo docker-archive failed: ${converted.stderr}`);
        const loaded = await load(archive);
        if (loaded.code !== 0) throw new Error(`docker load failed: ${loaded.stderr}`);
      } finally {
        await removeTempDir(work);
      }
    },
    logs: () => proc.output(),
    stop: () => {
      stopped ??= proc
        .stop()
        .then(() => containerd.stop())
        .finally(() => removeMountedTempDir(dir));
      return stopped;
    },
  };
}
