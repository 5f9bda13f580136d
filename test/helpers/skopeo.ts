import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildTestImage } from './oci.js';
import { requireBinary, run } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

const SKOPEO_INSTALL = 'apt-get install -y docker-registry skopeo';
const SKOPEO_TIMEOUT_MS = 60_000;

/** Outcome of a skopeo invocation; `ok` is true iff skopeo exited with code 0. */
export interface SkopeoResult {
  ok: boolean;
  code: number;
  stdout: string;
  stderr: string;
}

/** Per-invocation sandbox: everything skopeo could read as config lives in here, and is empty. */
interface Sandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Global flags (policy, registries.d, tmpdir, command timeout). */
  globalArgs: string[];
  authFile: string;
  certDir: string;
}

async function makeSandbox(): Promise<Sandbox> {
  const dir = await makeTempDir('skopeo');
  const sub = (name: string): string => path.join(dir, name);
  for (const name of [
    'home',
    'tmp',
    'run',
    'config',
    'data',
    'cache',
    'docker',
    'certs',
    'registries.d',
  ]) {
    await mkdir(sub(name), { mode: 0o700 });
  }
  const authFile = sub('auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  await writeFile(sub('docker/config.json'), '{"auths":{}}\n');
  await writeFile(sub('registries.conf'), '');
  await writeFile(sub('containers.conf'), '');
  const policy = sub('policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  // A fresh environment instead of process.env: no proxies, no developer auth/config files.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: sub('home'),
    TMPDIR: sub('tmp'),
    XDG_RUNTIME_DIR: sub('run'),
    XDG_CONFIG_HOME: sub('config'),
    XDG_DATA_HOME: sub('data'),
    XDG_CACHE_HOME: sub('cache'),
    DOCKER_CONFIG: sub('docker'),
    REGISTRY_AUTH_FILE: authFile,
    CONTAINERS_REGISTRIES_CONF: sub('registries.conf'),
    CONTAINERS_CONF: sub('containers.conf'),
    NO_PROXY: '*',
    no_proxy: '*',
  };
  const globalArgs = [
    // Hidden flag in skopeo 1.9 (CONTAINERS_REGISTRIES_CONF is ignored there; newer honour it).
    '--registries-conf',
    sub('registries.conf'),
    '--policy',
    policy,
    '--registries.d',
    sub('registries.d'),
    '--tmpdir',
    sub('tmp'),
    '--command-timeout',
    `${Math.floor(SKOPEO_TIMEOUT_MS / 1000) - 5}s`,
  ];
  return { dir, env, globalArgs, authFile, certDir: sub('certs') };
}

/**
 * Two things the flags and env above cannot redirect: (1) as root, containers/image ignores
 * HOME/XDG_DATA_HOME for its blob-info cache and always uses /var/lib/containers/cache; that
 * cache survives between runs and makes skopeo probe *other* repositories it remembers for the
 * same host:port (extra HEADs answered 401 by a scoped registry); (2) the drop-in directory
 * /etc/containers/registries.conf.d is read even with --registries-conf. So root runs skopeo in
 * a private mount namespace with empty tmpfs mounts over /var/lib/containers and /etc/containers.
 */
const UNSHARE_ARGS = ['--mount', '--propagation', 'private', '/bin/sh', '-c'];
const ISOLATE_SCRIPT = [
  'mkdir -p /var/lib/containers',
  'mount -t tmpfs -o size=64m,mode=0700 tmpfs /var/lib/containers',
  '{ [ ! -d /etc/containers ] || mount -t tmpfs -o size=1m,mode=0755 tmpfs /etc/containers; }',
].join(' && ');
let isolation: Promise<boolean> | undefined;

/**
 * Whether skopeo runs with its system-wide state (/var/lib/containers: blob-info cache,
 * sigstore) hidden behind a private tmpfs. Always false for non-root users, whose cache already
 * lives in the per-call sandbox via XDG_DATA_HOME; true for root when `unshare --mount` works
 * (it needs CAP_SYS_ADMIN); false otherwise, in which case the shared cache may add harmless
 * cross-repository HEAD probes to the registry log.
 */
export async function skopeoBlobCacheIsolated(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  isolation ??= run('unshare', [...UNSHARE_ARGS, ISOLATE_SCRIPT], { timeoutMs: 10_000 }).then(
    (res) => res.code === 0,
    () => false,
  );
  return isolation;
}

/**
 * Runs `skopeo <globalArgs> ...args` inside a throw-away sandbox (fresh HOME, XDG dirs, empty
 * auth file, empty registries.conf, permissive policy.json, no proxy variables) that is removed
 * afterwards. `build` may write extra files into the sandbox and return more arguments.
 */
async function runSkopeo(
  build: (sandbox: Sandbox) => Promise<string[]> | string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<SkopeoResult> {
  const binary = await requireBinary('skopeo', SKOPEO_INSTALL);
  const isolate = await skopeoBlobCacheIsolated();
  const sandbox = await makeSandbox();
  Object.assign(sandbox.env, extraEnv);
  try {
    const skopeoArgs = [...sandbox.globalArgs, ...(await build(sandbox))];
    const [cmd, args] = isolate
      ? ['unshare', [...UNSHARE_ARGS, `${ISOLATE_SCRIPT} && exec "$0" "$@"`, binary, ...skopeoArgs]]
      : [binary, skopeoArgs];
    const res = await run(cmd, args, {
      env: sandbox.env,
      cwd: sandbox.dir,
      timeoutMs: SKOPEO_TIMEOUT_MS,
      installHint: SKOPEO_INSTALL,
    });
    const stderr = res.timedOut ? `${res.stderr}\n[skopeo timed out]` : res.stderr;
    return { ok: res.code === 0, code: res.code, stdout: res.stdout, stderr };
  } finally {
    await removeTempDir(sandbox.dir);
  }
}

/**
 * Runs any skopeo command line (e.g. `['inspect', '--tls-verify=false', '--registry-token', T,
 * 'docker://HOST/REPO:latest']`, or `['--debug', 'list-tags', ...]`) in the same hermetic
 * sandbox as {@link pushImage}; `sandboxArgs` may use the sandbox paths (auth file, empty cert
 * dir, scratch dir) for flags like `--authfile` or destinations like `dir:`. Never throws on a
 * non-zero exit.
 */
export async function skopeo(
  args: string[] | ((sandbox: { dir: string; authFile: string; certDir: string }) => string[]),
): Promise<SkopeoResult> {
  return runSkopeo((sandbox) => (typeof args === 'function' ? args(sandbox) : args));
}

/**
 * How skopeo authenticates to the registry:
 * - a string: a ready bearer token (`--registry-token`); skopeo never calls the realm;
 * - `{ username, password }`: `--creds USER:PASS`; containers/image asks the registry's realm
 *   itself (`GET` with Basic auth);
 * - `{ identityToken }`: an auth file entry `auths[HOST] = { auth: base64(USERNAME + ':'),
 *   identitytoken }` (username default `regtoken`); containers/image exchanges it at the realm
 *   (`POST grant_type=refresh_token`). The `auth` field must be there: containers/image ignores
 *   an entry whose `auth` does not decode to `USER:…`, identity token included (Docker does not).
 */
export type SkopeoAuth =
  | string
  | { username: string; password: string }
  | { identityToken: string; username?: string }
  | { credHelper: string; env: NodeJS.ProcessEnv };

/**
 * A credential helper for the registry: the auth file says `{"credHelpers": {HOST: NAME}}` and
 * nothing else, so containers/image runs `docker-credential-NAME get` for HOST. `env` is added
 * to skopeo's environment, which the helper inherits: a PATH on which it is found, and its own
 * settings.
 */
export type CredHelperAuth = Extract<SkopeoAuth, { credHelper: string }>;

const helperEnv = (auth: SkopeoAuth): NodeJS.ProcessEnv =>
  typeof auth === 'object' && 'credHelper' in auth ? auth.env : {};

/**
 * The flags for `auth` on one side of a command (`src`, `dest`, or `''` for inspect/list-tags);
 * an identity token is written into the sandbox's auth file, which every command already reads.
 */
async function authArgs(
  side: 'src' | 'dest' | '',
  auth: SkopeoAuth,
  registryHost: string,
  authFile: string,
): Promise<string[]> {
  const flag = (name: string): string => (side === '' ? `--${name}` : `--${side}-${name}`);
  if (typeof auth === 'string') return [flag('registry-token'), auth];
  if ('password' in auth) return [flag('creds'), `${auth.username}:${auth.password}`];
  if ('credHelper' in auth) {
    await writeFile(
      authFile,
      `${JSON.stringify({ credHelpers: { [registryHost]: auth.credHelper } })}\n`,
    );
    return [];
  }
  const entry = {
    auth: Buffer.from(`${auth.username ?? 'regtoken'}:`).toString('base64'),
    identitytoken: auth.identityToken,
  };
  await writeFile(authFile, `${JSON.stringify({ auths: { [registryHost]: entry } })}\n`);
  return [];
}

/** Extra options for {@link pushImage} and {@link pullImage}. */
export interface SkopeoCopyOptions {
  /** Tag to push to / pull from; default `latest`. */
  tag?: string;
}

/**
 * Pushes an image with the real skopeo client: `skopeo copy --dest-tls-verify=false
 * --dest-registry-token TOKEN IMAGE docker://HOST/REPO:latest` (or other credentials, see
 * {@link SkopeoAuth}). Without `imageRef` it pushes the
 * deterministic test image from {@link buildTestImage} (written into the call's private sandbox,
 * so identical digests every time and nothing left on disk). Never throws on refusal: `ok` is
 * false and `stderr` holds skopeo's error.
 */
export async function pushImage(
  registryHost: string,
  repository: string,
  auth: SkopeoAuth,
  imageRef?: string,
  opts: SkopeoCopyOptions = {},
): Promise<SkopeoResult> {
  return runSkopeo(async (sandbox) => {
    const source =
      imageRef ?? `oci:${await buildTestImage(path.join(sandbox.dir, 'image'))}:latest`;
    return [
      'copy',
      '--retry-times',
      '0',
      '--src-authfile',
      sandbox.authFile,
      '--dest-authfile',
      sandbox.authFile,
      '--dest-cert-dir',
      sandbox.certDir,
      '--dest-tls-verify=false',
      ...(await authArgs('dest', auth, registryHost, sandbox.authFile)),
      source,
      `docker://${registryHost}/${repository}:${opts.tag ?? 'latest'}`,
    ];
  }, helperEnv(auth));
}

/**
 * Pulls `docker://HOST/REPO:latest` with the real skopeo client (`skopeo copy
 * --src-tls-verify=false --src-registry-token TOKEN ... dir:SANDBOX`, or other credentials, see
 * {@link SkopeoAuth}) into a temp dir that is removed afterwards. Never throws on refusal: `ok` is false and `stderr` holds skopeo's error.
 */
export async function pullImage(
  registryHost: string,
  repository: string,
  auth: SkopeoAuth,
  opts: SkopeoCopyOptions = {},
): Promise<SkopeoResult> {
  return runSkopeo(
    async (sandbox) => [
      'copy',
      '--retry-times',
      '0',
      '--src-authfile',
      sandbox.authFile,
      '--dest-authfile',
      sandbox.authFile,
      '--src-cert-dir',
      sandbox.certDir,
      '--src-tls-verify=false',
      ...(await authArgs('src', auth, registryHost, sandbox.authFile)),
      `docker://${registryHost}/${repository}:${opts.tag ?? 'latest'}`,
      `dir:${path.join(sandbox.dir, 'pulled')}`,
    ],
    helperEnv(auth),
  );
}

/**
 * Lists a repository's tags with the real skopeo client (`skopeo list-tags --tls-verify=false
 * --registry-token TOKEN docker://HOST/REPO`, or other credentials, see {@link SkopeoAuth}); on success `stdout` is skopeo's JSON
 * (`{"Repository": ..., "Tags": [...]}`). Never throws on refusal: `ok` is false instead.
 */
export async function listTags(
  registryHost: string,
  repository: string,
  auth: SkopeoAuth,
): Promise<SkopeoResult> {
  return runSkopeo(
    async (sandbox) => [
      'list-tags',
      '--authfile',
      sandbox.authFile,
      '--cert-dir',
      sandbox.certDir,
      '--tls-verify=false',
      ...(await authArgs('', auth, registryHost, sandbox.authFile)),
      `docker://${registryHost}/${repository}`,
    ],
    helperEnv(auth),
  );
}

/** Options for {@link registryRequest}. */
export interface RegistryRequestOptions {
  method?: string;
  /** Sent as `Authorization: Bearer <token>` when given. */
  token?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** Response of {@link registryRequest}. */
export interface RegistryResponse {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * Sends one raw HTTP request to the registry (`registryUrl` + `path`, e.g. `/v2/_catalog`) with
 * an optional bearer token and returns status, headers and body text; never throws on HTTP
 * errors. Useful for endpoints skopeo does not expose (catalog, manifest DELETE, HEAD).
 */
export async function registryRequest(
  registryUrl: string,
  requestPath: string,
  opts: RegistryRequestOptions = {},
): Promise<RegistryResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  const res = await fetch(`${registryUrl}${requestPath}`, {
    method: opts.method ?? 'GET',
    headers,
    ...(opts.body === undefined ? {} : { body: opts.body }),
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/**
 * Plain `GET registryUrl + path` (e.g. `/v2/_catalog`) with `Authorization: Bearer <token>` if a
 * token is given; resolves with the HTTP status and body text and never throws on HTTP errors.
 */
export async function registryGet(
  registryUrl: string,
  requestPath: string,
  token?: string,
): Promise<{ status: number; body: string }> {
  const res = await registryRequest(registryUrl, requestPath, token === undefined ? {} : { token });
  return { status: res.status, body: res.body };
}
