import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type LongRunningProcess,
  type RunResult,
  requireBinary,
  requireRoot,
  run,
  startProcess,
} from './process.js';
import { makeTempDir, removeMountedTempDir } from './tmp.js';

const CONTAINERD_INSTALL = 'apt-get install -y containerd';

/** The containerd namespace the CRI plugin (and so every kubelet) keeps its images in. */
export const CRI_NAMESPACE = 'k8s.io';

/** Options for {@link startContainerd}. */
export interface ContainerdOptions {
  /**
   * Keep the CRI plugin (`io.containerd.grpc.v1.cri`, the kubelet's image and runtime service)
   * enabled; default true. The Docker engine's containerd turns it off, as Docker's own does.
   */
  cri?: boolean;
}

/** A containerd started by {@link startContainerd}. */
export interface RunningContainerd {
  /** The gRPC socket (`--address`): for `ctr --address`, `dockerd --containerd` and CRI clients. */
  socket: string;
  /** The private temp dir holding the config, root, state and socket. */
  dir: string;
  /** The generated config.toml. */
  configPath: string;
  /**
   * The CRI plugin's `registry.config_path` (containerd's hosts.d: `HOST[:PORT]/hosts.toml`,
   * read on every pull), empty and private so /etc/containerd/certs.d is not consulted. No
   * entry is needed for the test registry: the CRI of containerd 1.6 talks plain HTTP to
   * registries on loopback addresses by default.
   */
  hostsDir: string;
  /**
   * Runs `ctr --address SOCKET --namespace NS ...args` (namespace default `default`, ctr's
   * own default) with no proxy variables; resolves with exit code and output, never throws on a
   * non-zero exit.
   */
  ctr(args: string[], opts?: { namespace?: string; timeoutMs?: number }): Promise<RunResult>;
  /**
   * `ctr images pull --plain-http [--user USER:PASS | --refresh TOKEN] REF`: ctr itself (not
   * the daemon) talks to the registry and its token endpoint with containerd's docker
   * authorizer, then unpacks into the `native` snapshotter. Never throws on refusal.
   */
  pull(ref: string, auth?: CtrAuth, opts?: { namespace?: string }): Promise<RunResult>;
  /** Image names in a namespace (`ctr images ls -q`); throws if ctr fails. */
  images(namespace?: string): Promise<string[]>;
  /** Everything containerd wrote to stdout/stderr so far. */
  logs(): string;
  /** SIGTERM (SIGKILL after 3 s) to its process group; unmounts leftovers; removes the dir. */
  stop(): Promise<void>;
}

/** Credentials for {@link RunningContainerd.pull}: a username and password, or a refresh token. */
export type CtrAuth = { user: string; password: string } | { refreshToken: string };

/** TOML basic strings share JSON's escapes for everything a path can hold. */
const q = (value: string): string => JSON.stringify(value);

/**
 * Every path containerd would otherwise share with another instance on the machine (root,
 * state, sockets, the `opt` plugin's /opt/containerd, CNI config) points into `dir`. The
 * snapshotter is `native` (plain copies): overlayfs is Debian's default but is unavailable in
 * some nested sandboxes, and the auth flow under test does not depend on it.
 */
function renderConfig(dir: string, cri: boolean): string {
  const p = (name: string): string => q(path.join(dir, name));
  const lines = [
    'version = 2',
    `root = ${p('root')}`,
    `state = ${p('state')}`,
    `disabled_plugins = ${cri ? '[]' : '["io.containerd.grpc.v1.cri"]'}`,
    '',
    '[grpc]',
    `  address = ${p('containerd.sock')}`,
    '[ttrpc]',
    `  address = ${p('containerd.sock.ttrpc')}`,
    '[debug]',
    '  address = ""',
    '  level = "info"',
    '[metrics]',
    '  address = ""',
    '',
    '[plugins]',
    '  [plugins."io.containerd.internal.v1.opt"]',
    `    path = ${p('opt')}`,
  ];
  if (cri) {
    lines.push(
      '  [plugins."io.containerd.grpc.v1.cri"]',
      '    disable_tcp_service = true',
      '    stream_server_address = "127.0.0.1"',
      '    stream_server_port = "0"',
      '    [plugins."io.containerd.grpc.v1.cri".containerd]',
      '      snapshotter = "native"',
      '    [plugins."io.containerd.grpc.v1.cri".cni]',
      `      bin_dir = ${p('cni/bin')}`,
      `      conf_dir = ${p('cni/net.d')}`,
      '    [plugins."io.containerd.grpc.v1.cri".registry]',
      `      config_path = ${p('certs.d')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A minimal environment: PATH (runc, shims) and no proxy or CONTAINERD_* variables. */
function containerdEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: home };
}

/**
 * Starts the real containerd (Debian package `containerd`, 1.6) as root on its own socket in a
 * fresh temp dir, with a generated config (see {@link ContainerdOptions}), and waits until
 * `ctr version` answers. Throws with the install command if containerd or ctr is missing, and
 * with containerd's log if it exits or does not answer within 20 s; throws unless run as root.
 */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<RunningContainerd> {
  const containerd = await requireBinary('containerd', CONTAINERD_INSTALL);
  const ctrBin = await requireBinary('ctr', CONTAINERD_INSTALL);
  requireRoot('containerd');
  const cri = opts.cri ?? true;
  const dir = await makeTempDir('containerd');
  const socket = path.join(dir, 'containerd.sock');
  const configPath = path.join(dir, 'config.toml');
  const hostsDir = path.join(dir, 'certs.d');
  const env = containerdEnv(dir);
  let proc: LongRunningProcess | undefined;
  try {
    for (const sub of ['certs.d', 'cni/bin', 'cni/net.d', 'opt']) {
      await mkdir(path.join(dir, sub), { recursive: true });
    }
    await writeFile(configPath, renderConfig(dir, cri));
    proc = startProcess(containerd, ['--config', configPath], {
      env,
      cwd: dir,
      installHint: CONTAINERD_INSTALL,
    });
    const started = proc;

    const ctr = (args: string[], o: { namespace?: string; timeoutMs?: number } = {}) =>
      run(ctrBin, ['--address', socket, '--namespace', o.namespace ?? 'default', ...args], {
        env,
        cwd: dir,
        timeoutMs: o.timeoutMs ?? 60_000,
        installHint: CONTAINERD_INSTALL,
      });

    const deadline = Date.now() + 20_000;
    for (;;) {
      const code = started.exitCode();
      if (code !== undefined) throw new Error(`containerd exited with code ${code}`);
      if (existsSync(socket) && (await ctr(['version'], { timeoutMs: 5_000 })).code === 0) break;
      if (Date.now() > deadline) throw new Error('containerd did not answer within 20 s');
      await sleep(100);
    }

    let stopped: Promise<void> | undefined;
    return {
      socket,
      dir,
      configPath,
      hostsDir,
      ctr,
      pull: (ref, auth, o = {}) => {
        const authArgs =
          auth === undefined
            ? []
            : 'refreshToken' in auth
              ? ['--refresh', auth.refreshToken]
              : ['--user', `${auth.user}:${auth.password}`];
        return ctr(
          ['images', 'pull', '--plain-http', '--snapshotter', 'native', ...authArgs, ref],
          o.namespace === undefined ? {} : { namespace: o.namespace },
        );
      },
      images: async (namespace) => {
        const res = await ctr(['images', 'ls', '-q'], namespace === undefined ? {} : { namespace });
        if (res.code !== 0) throw new Error(`ctr images ls failed (${res.code}): ${res.stderr}`);
        return res.stdout.split('\n').filter((line) => line !== '');
      },
      logs: () => started.output(),
      stop: () => {
        stopped ??= started.stop().finally(() => removeMountedTempDir(dir));
        return stopped;
      },
    };
  } catch (err) {
    const log = proc?.output() ?? '';
    await proc?.stop();
    await removeMountedTempDir(dir);
    throw new Error(`${(err as Error).message}\n--- containerd log ---\n${log}`, { cause: err });
  }
}
