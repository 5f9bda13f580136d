/**
 * The shipped examples, run for real:
 * - the systemd units pass `systemd-analyze verify` (Debian systemd), and a broken copy does not;
 * - the EC2 user data installs a package with the real npm (fetched from the AWS stand-in with
 *   the real AWS CLI), asks a stand-in instance metadata service (IMDSv2) for the region, and
 *   writes exactly the settings and units the login service needs;
 * - the sample registry configuration runs the real registry with its S3 storage on moto and
 *   the trust bundle fetched by the refresh script, accepts minted tokens, and regtoken expands
 *   wildcard grants against what that registry stored.
 */

import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { AwsClients } from '../../lambda/adapters/aws.js';
import { ENV_VARS } from '../../lambda/env.js';
import { createHandler } from '../../lambda/handler.js';
import type { RunSettings } from '../../lambda/run.js';
import { staticallyLoaded } from '../helpers/bundles.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { applyAwsTestEnv, awsChildEnv, type Moto, startMoto } from '../helpers/moto.js';
import { freePort, waitForHttp } from '../helpers/net.js';
import { type LongRunningProcess, requireBinary, run, startProcess } from '../helpers/process.js';
import { pullImage, pushImage } from '../helpers/skopeo.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const REPO = new URL('../..', import.meta.url).pathname;
const ex = (...p: string[]) => join(REPO, 'examples', ...p);
const read = (path: string) => readFileSync(path, 'utf8');

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir('examples-');
});
afterAll(async () => removeTempDir(tmp));

/** A `systemctl` stand-in that logs its arguments and fails for one command line. */
function stubSystemctl(dir: string): { bin: string; log: string; calls: () => string[] } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'systemctl.log');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'systemctl'),
    '#!/bin/sh\necho "$*" >> "$SYSTEMCTL_LOG"\n[ "$*" = "$SYSTEMCTL_FAIL" ] && exit 1\nexit 0\n',
  );
  chmodSync(join(bin, 'systemctl'), 0o755);
  writeFileSync(log, '');
  return { bin, log, calls: () => read(log).split('\n').filter(Boolean) };
}

describe('systemd units pass systemd-analyze verify', () => {
  const UNITS = [
    ['ec2', 'regtoken-login.service', '/usr/local/bin/regtoken'],
    ['ec2', 'regtoken-login.timer', undefined],
    ['registry', 'regtoken-trust-bundle.service', '/usr/local/sbin/regtoken-trust-bundle'],
    ['registry', 'regtoken-trust-bundle.timer', undefined],
    ['registry', 'regtoken-realm.service', '/usr/local/bin/regtoken realm'],
  ] as const;

  /**
   * Copies the units into a scratch directory with ExecStart pointing at a stub executable
   * (verify checks that the program exists; the real one is installed by the user data) and
   * runs `systemd-analyze verify` on them. Returns its exit code and all it printed.
   */
  async function verify(edit: (name: string, text: string) => string = (_n, t) => t) {
    const dir = join(tmp, `verify-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir);
    const stub = join(dir, 'stub');
    writeFileSync(stub, '#!/bin/sh\nexit 0\n');
    chmodSync(stub, 0o755);
    const paths: string[] = [];
    for (const [folder, name, exec] of UNITS) {
      let text = read(ex(folder, name));
      if (exec) {
        expect(text).toContain(`ExecStart=${exec}`);
        text = text.replace(`ExecStart=${exec}`, `ExecStart=${stub}`);
      }
      writeFileSync(join(dir, name), edit(name, text));
      paths.push(join(dir, name));
    }
    const binary = await requireBinary('systemd-analyze', 'apt-get install -y systemd');
    const r = await run(binary, ['verify', ...paths], { timeoutMs: 30_000 });
    return { code: r.code, output: `${r.stdout}${r.stderr}` };
  }

  it('as shipped: exit 0 and not a single warning', async () => {
    expect(await verify()).toEqual({ code: 0, output: '' });
  });

  it('a typo in a unit is caught (the check above can fail)', async () => {
    const broken = await verify((name, text) =>
      name === 'regtoken-login.timer' ? text.replace('OnUnitActiveSec', 'OnUnitActivSec') : text,
    );
    expect(broken.output).toMatch(/Unknown key 'OnUnitActivSec' in section \[Timer\]/);
  });

  it.each(UNITS.filter(([, name]) => name.endsWith('.timer')).map(([f, n]) => [f, n] as const))(
    '%s/%s starts the service of the same name and refreshes with jitter',
    (folder, name) => {
      const text = read(ex(folder, name));
      expect(text).not.toMatch(/^Unit=/m);
      expect(read(ex(folder, name.replace('.timer', '.service')))).toMatch(/^Type=oneshot$/m);
      expect(text).toMatch(/^OnBootSec=\d+min$/m);
      expect(text).toMatch(/^OnUnitActiveSec=\d+min$/m);
      expect(text).toMatch(/^RandomizedDelaySec=\d+min$/m);
    },
  );
});

describe('the published package carries what the user data installs', () => {
  it('npm pack includes the CLI and the credential commands, their compiled code, the EC2 units and the node set-up', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: REPO,
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(0);
    const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]?.files.map(
      (f) => f.path,
    );
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/regtoken.js',
        'bin/docker-credential-regtoken.js',
        'bin/regtoken-credential-provider.js',
        'dist/bin/regtoken.mjs', // built by `npm ci` (the prepare script)
        'dist/bin/docker-credential-regtoken.mjs',
        'dist/bin/regtoken-credential-provider.mjs',
        'examples/ec2/regtoken-login.service',
        'examples/ec2/regtoken-login.timer',
        'examples/kubernetes/node-setup.sh',
        'examples/kubernetes/credential-provider-config.yaml',
      ]),
    );
  });
});

describe('the built commands', () => {
  /** The files importing `entry` loads before any code runs: its static imports, and theirs. */
  const loadedBy = (entry: string): string[] =>
    staticallyLoaded(join(REPO, 'dist/bin'), entry).map((f) =>
      readFileSync(join(REPO, 'dist/bin', f), 'utf8'),
    );
  // esbuild names each bundled file in a comment: `// node_modules/yaml/dist/…`.
  const libraries = (code: string[]) =>
    [
      ...new Set(
        code.flatMap((c) =>
          [...c.matchAll(/^\/\/ node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map(
            (m) => m[1] as string,
          ),
        ),
      ),
    ].sort();

  it('start without the AWS SDK, the YAML reader for wrong files or the ASN.1 libraries', () => {
    // The whole bundle holds them: each is loaded on demand, by a dynamic import.
    const everything = libraries(
      readdirSync(join(REPO, 'dist/bin'))
        .filter((f) => f.endsWith('.mjs'))
        .map((f) => readFileSync(join(REPO, 'dist/bin', f), 'utf8')),
    );
    expect(everything).toEqual(
      expect.arrayContaining(['@aws-sdk/client-s3', '@peculiar/asn1-x509', 'yaml']),
    );
    for (const entry of [
      'regtoken.mjs',
      'docker-credential-regtoken.mjs',
      'regtoken-credential-provider.mjs',
    ]) {
      const loaded = libraries(loadedBy(entry));
      expect({ entry, sdk: loaded.filter((l) => l.startsWith('@aws-sdk/')) }).toEqual({
        entry,
        sdk: [],
      });
      expect({
        entry,
        others: loaded.filter((l) => ['yaml', '@peculiar/asn1-x509', 'asn1js'].includes(l)),
      }).toEqual({
        entry,
        others: [],
      });
    }
  });
});

describe('with the AWS stand-in', () => {
  let moto: Moto;
  let proxy: FaultProxy;
  let restoreEnv: () => void;
  let s3: S3Client;

  beforeAll(async () => {
    moto = await startMoto();
    // S3 through the proxy: it keeps the bucket policy a mint run writes away from moto.
    proxy = await startFaultProxy(moto.endpoint);
    restoreEnv = applyAwsTestEnv(proxy.endpoint);
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    s3 = new S3Client({});
  }, 60_000);
  afterAll(async () => {
    restoreEnv?.();
    delete process.env.POWERTOOLS_METRICS_DISABLED;
    await proxy?.stop();
    await moto?.stop();
  });

  describe('EC2 user data', () => {
    let imds: Server;
    let imdsUrl: string;
    const imdsSeen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];

    beforeAll(async () => {
      // IMDSv2: a session token from PUT /latest/api/token, required on every GET.
      const session = randomBytes(8).toString('hex');
      imds = createServer((req, res) => {
        imdsSeen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
        if (req.method === 'PUT' && req.url === '/latest/api/token') {
          res.end(req.headers['x-aws-ec2-metadata-token-ttl-seconds'] ? session : '');
        } else if (req.headers['x-aws-ec2-metadata-token'] !== session) {
          res.writeHead(401).end();
        } else if (req.url === '/latest/meta-data/placement/region') {
          res.end('eu-west-1');
        } else res.writeHead(404).end();
      });
      await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
      imdsUrl = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;

      // The package the user data installs: same name, bin and EC2 units as the real one
      // (whose contents the pack test above checks), a stub CLI, no dependencies.
      const pkg = join(tmp, 'pkg');
      mkdirSync(join(pkg, 'bin'), { recursive: true });
      mkdirSync(join(pkg, 'examples', 'ec2'), { recursive: true });
      const real = JSON.parse(read(join(REPO, 'package.json')));
      writeFileSync(
        join(pkg, 'package.json'),
        JSON.stringify({ name: real.name, version: real.version, bin: real.bin }),
      );
      writeFileSync(
        join(pkg, real.bin.regtoken),
        `#!/usr/bin/env node\nconsole.log('regtoken ${real.version}');\n`,
      );
      for (const f of ['regtoken-login.service', 'regtoken-login.timer'])
        writeFileSync(join(pkg, 'examples', 'ec2', f), read(ex('ec2', f)));
      const packed = await run('npm', ['pack', '--json', '--ignore-scripts', pkg], {
        cwd: tmp,
        env: { ...process.env, npm_config_cache: join(tmp, 'npm-cache') },
      });
      expect(packed.code).toBe(0);
      const tgz = (JSON.parse(packed.stdout) as { filename: string }[])[0]?.filename ?? '';
      await s3.send(new CreateBucketCommand({ Bucket: 'artifacts' }));
      await s3.send(
        new PutObjectCommand({
          Bucket: 'artifacts',
          Key: 'regtoken/regtoken-0.1.0.tgz',
          Body: readFileSync(join(tmp, tgz)),
        }),
      );
    }, 60_000);
    afterAll(async () => {
      await new Promise<void>((r) => (imds ? imds.close(() => r()) : r()));
    });

    async function userData(name: string, failing = '') {
      const dir = join(tmp, name);
      const root = join(dir, 'root');
      mkdirSync(root, { recursive: true });
      const systemctl = stubSystemctl(dir);
      const r = await run('bash', [ex('ec2', 'user-data.sh')], {
        env: {
          ...awsChildEnv(proxy.endpoint),
          PATH: `${systemctl.bin}:${process.env.PATH}`,
          HOME: join(dir, 'home'),
          npm_config_cache: join(tmp, 'npm-cache'),
          npm_config_update_notifier: 'false',
          SYSTEMCTL_LOG: systemctl.log,
          SYSTEMCTL_FAIL: failing,
          REGTOKEN_ROOT: root,
          REGTOKEN_IMDS: imdsUrl,
          REGTOKEN_FROM: 's3://regtoken-tokens/prod',
          REGTOKEN_REGISTRY: 'registry.example.com',
          REGTOKEN_PACKAGE: 's3://artifacts/regtoken/regtoken-0.1.0.tgz',
        },
        timeoutMs: 120_000,
      });
      return { ...r, root, calls: systemctl.calls() };
    }

    it('installs regtoken, writes its settings and units, enables the timer, starts the first login', async () => {
      imdsSeen.length = 0;
      const r = await userData('ud-ok');
      expect(r.stderr).toContain('regtoken user-data: installed regtoken 0.1.0');
      expect(r.code).toBe(0);
      expect(read(join(r.root, 'etc/regtoken/env'))).toBe(
        [
          '# Written by the regtoken user data; read by regtoken-login.service.',
          'REGTOKEN_FROM=s3://regtoken-tokens/prod',
          'REGTOKEN_REGISTRY=registry.example.com',
          'AWS_REGION=eu-west-1',
          'DOCKER_CONFIG=/root/.docker',
          '',
        ].join('\n'),
      );
      // Every setting in that file is one regtoken (or the AWS SDK) reads.
      const names = read(join(r.root, 'etc/regtoken/env'))
        .split('\n')
        .filter((l) => /^[A-Z]/.test(l))
        .map((l) => l.split('=')[0]);
      for (const name of names) expect([...Object.keys(ENV_VARS), 'AWS_REGION']).toContain(name);
      for (const unit of ['regtoken-login.service', 'regtoken-login.timer'])
        expect(read(join(r.root, 'etc/systemd/system', unit))).toBe(read(ex('ec2', unit)));
      // npm put the CLI where ExecStart looks for it (under the scratch root).
      const cli = await run(join(r.root, 'usr/local/bin/regtoken'), ['--version']);
      expect(cli.stdout).toBe('regtoken 0.1.0\n');
      expect(statSync(join(r.root, 'root/.docker')).mode & 0o777).toBe(0o700);
      expect(r.calls).toEqual([
        'daemon-reload',
        'enable regtoken-login.service regtoken-login.timer',
        'start regtoken-login.timer',
        'start regtoken-login.service',
      ]);
      // IMDSv2: a session token first, then the region with it.
      expect(imdsSeen.map((s) => `${s.method} ${s.url}`)).toEqual([
        'PUT /latest/api/token',
        'GET /latest/meta-data/placement/region',
      ]);
      expect(imdsSeen[0]?.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('300');
    }, 120_000);

    it('finishes (timer enabled) when the first login fails, and says where to look', async () => {
      const r = await userData('ud-login-fails', 'start regtoken-login.service');
      expect(r.code).toBe(0);
      expect(r.calls).toContain('start regtoken-login.timer');
      expect(r.stderr).toContain(
        'regtoken user-data: first login failed; it will be retried: journalctl -u regtoken-login',
      );
    }, 120_000);
  });

  describe('the sample registry configuration, with S3 storage on moto', () => {
    const ACCOUNT = '123456789012';
    const CI = `arn:aws:iam::${ACCOUNT}:role/ci-runner`;
    const WEB = `arn:aws:iam::${ACCOUNT}:role/web/ec2-web`;
    const MINTER = `arn:aws:iam::${ACCOUNT}:role/regtoken-minter`;
    const sample = parse(read(ex('registry', 'config.yml')));
    const grantsFile = parse(read(ex('grants.yaml')));
    let keys: string[] = [];
    let registry: { host: string; stop(): Promise<void>; logs(): string } | undefined;
    let bundlePath: string;
    let systemctl: ReturnType<typeof stubSystemctl>;

    const mintRun = (over: Partial<RunSettings> = {}) =>
      createHandler({
        settings: () => ({
          config: 's3://regtoken-config/grants.yaml',
          out: 's3://regtoken-tokens',
          signingKey: `kms:${keys[0]}`,
          repositories: 's3://registry-storage/registry',
          minterArns: [MINTER],
          trustedKeys: [],
          signingMode: undefined,
          lockLease: '2m',
          ...over,
        }),
        aws: new AwsClients(),
        logger: new Logger({ serviceName: 'regtoken', logLevel: 'SILENT' }),
        metrics: new Metrics({ namespace: 'regtoken', serviceName: 'regtoken' }),
      })({});

    const tokenOf = async (key: string) => {
      const r = await s3.send(new GetObjectCommand({ Bucket: 'regtoken-tokens', Key: key }));
      return JSON.parse((await r.Body?.transformToString()) ?? '');
    };

    /** The refresh script with the real AWS CLI (through the proxy) and a stub systemctl. */
    const refresh = () =>
      run('bash', [ex('registry', 'regtoken-trust-bundle.sh')], {
        env: {
          ...awsChildEnv(proxy.endpoint),
          PATH: `${systemctl.bin}:${process.env.PATH}`,
          SYSTEMCTL_LOG: systemctl.log,
          REGTOKEN_TRUST_BUNDLE: 's3://regtoken-tokens/trust/bundle.pem',
          REGISTRY_BUNDLE: bundlePath,
        },
        timeoutMs: 60_000,
      });

    beforeAll(async () => {
      const iam = new IAMClient({});
      for (const b of ['regtoken-config', 'regtoken-tokens', 'registry-storage'])
        await s3.send(new CreateBucketCommand({ Bucket: b }));
      for (const [name, path] of [
        ['ci-runner', '/'],
        ['ec2-web', '/web/'],
        ['regtoken-minter', '/'],
      ] as const)
        await iam.send(
          new CreateRoleCommand({ RoleName: name, Path: path, AssumeRolePolicyDocument: '{}' }),
        );
      const kms = new KMSClient({});
      for (let i = 0; i < 2; i++) {
        const k = await kms.send(
          new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
        );
        keys.push(k.KeyMetadata?.Arn ?? '');
      }
      // The registry settings of examples/grants.yaml, so the sample's auth.token matches.
      await s3.send(
        new PutObjectCommand({
          Bucket: 'regtoken-config',
          Key: 'grants.yaml',
          Body: stringify({
            version: 1,
            registry: grantsFile.registry,
            tokenTtl: '1h',
            grants: [
              {
                principal: CI,
                access: [
                  { repository: 'team-a/app', actions: ['pull', 'push'] },
                  { repository: 'base/alpine', actions: ['pull', 'push'] },
                ],
              },
              { principal: WEB, access: [{ repository: 'base/*', actions: ['pull'] }] },
            ],
          }),
        }),
      );
      bundlePath = join(tmp, 'etc-docker-registry', 'regtoken-bundle.pem');
      systemctl = stubSystemctl(join(tmp, 'registry-host'));
    }, 60_000);
    afterAll(async () => {
      await registry?.stop();
      keys = [];
    });

    it('agrees with the grants file it documents', () => {
      expect(sample.auth.token).toEqual({
        realm: `https://${grantsFile.registry.host}/token`,
        service: grantsFile.registry.service,
        issuer: grantsFile.registry.issuer,
        rootcertbundle: '/etc/docker/registry/regtoken-bundle.pem',
      });
      expect(read(ex('registry', 'regtoken-trust-bundle.sh'))).toContain(
        `target="\${REGISTRY_BUNDLE:-${sample.auth.token.rootcertbundle}}"`,
      );
      expect(sample.storage.s3).toMatchObject({
        rootdirectory: '/registry',
        bucket: 'REGISTRY_BUCKET',
      });
    });

    it('the refresh script installs the bundle and restarts the registry only when it changed', async () => {
      await mintRun();
      let r = await refresh();
      expect(r.stderr).toBe(
        `regtoken-trust-bundle: installed a new trust bundle in ${bundlePath}; restarting docker-registry.service\n`,
      );
      expect(r.code).toBe(0);
      expect(systemctl.calls()).toEqual(['try-restart docker-registry.service']);
      const first = read(bundlePath);
      expect(first).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(statSync(bundlePath).mode & 0o777).toBe(0o644);

      // Unchanged (a new run re-uses the root certificate): nothing to do.
      await mintRun();
      r = await refresh();
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(systemctl.calls()).toHaveLength(1);

      // A broken object in the bucket is never installed.
      await s3.send(
        new PutObjectCommand({ Bucket: 'regtoken-tokens', Key: 'trust/bundle.pem', Body: 'oops' }),
      );
      r = await refresh();
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        'regtoken-trust-bundle: s3://regtoken-tokens/trust/bundle.pem is not a PEM certificate bundle; keeping the current bundle\n',
      );
      expect(read(bundlePath)).toBe(first);
      expect(systemctl.calls()).toHaveLength(1);
      await s3.send(
        new PutObjectCommand({ Bucket: 'regtoken-tokens', Key: 'trust/bundle.pem', Body: first }),
      );

      // Root rotation, step 2: the next run publishes both roots; the registry is restarted.
      await mintRun({ trustedKeys: [keys[1] ?? ''] });
      r = await refresh();
      expect(r.code).toBe(0);
      expect(read(bundlePath).match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      expect(read(bundlePath).startsWith(first)).toBe(true);
      expect(systemctl.calls()).toEqual([
        'try-restart docker-registry.service',
        'try-restart docker-registry.service',
      ]);
    }, 60_000);

    // Runs on the bundle the refresh script installed in the test above.
    it('runs the real registry with it: tokens accepted, images in S3, wildcards expanded from there', async () => {
      // Only what a deployment would change: listen address, the stand-in's endpoint (plain
      // HTTP), its region and bucket. Auth and the rest are the sample's.
      const config = structuredClone(sample);
      Object.assign(config.storage.s3, {
        region: 'us-east-1',
        bucket: 'registry-storage',
        regionendpoint: moto.endpoint,
        secure: false,
      });
      config.auth.token.rootcertbundle = bundlePath;
      registry = await startConfiguredRegistry(config, {
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: '/nonexistent/regtoken-test/aws/config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/regtoken-test/aws/credentials',
      });

      const ci = (await tokenOf(`tokens/${ACCOUNT}/role/ci-runner.json`)).token;
      for (const repo of ['team-a/app', 'base/alpine']) {
        const push = await pushImage(registry.host, repo, ci);
        expect(push.stderr).toBe('');
        expect(push.ok).toBe(true);
      }
      const stored = await s3.send(
        new ListObjectsV2Command({
          Bucket: 'registry-storage',
          Prefix: 'registry/docker/registry/v2/repositories/',
          Delimiter: '/',
        }),
      );
      expect(stored.CommonPrefixes?.map((p) => p.Prefix)).toEqual([
        'registry/docker/registry/v2/repositories/base/',
        'registry/docker/registry/v2/repositories/team-a/',
      ]);

      // The next mint expands base/* against the registry's own S3 storage.
      await mintRun();
      const web = await tokenOf(`tokens/${ACCOUNT}/role/ec2-web.json`);
      expect(web.access).toEqual([{ type: 'repository', name: 'base/alpine', actions: ['pull'] }]);
      expect((await pullImage(registry.host, 'base/alpine', web.token)).ok).toBe(true);
      expect((await pullImage(registry.host, 'team-a/app', web.token)).ok).toBe(false);
    }, 120_000);
  });
});

/**
 * Starts `docker-registry serve` on a copy of `config` listening on a free loopback port, with
 * exactly `env` added to a clean environment (no REGISTRY_* overrides, no proxies, and no
 * AWS_CA_BUNDLE: registry 2.8's AWS SDK panics on a custom CA bundle with its transport).
 */
async function startConfiguredRegistry(
  config: { http: { addr: string } },
  env: Record<string, string>,
): Promise<{ host: string; stop(): Promise<void>; logs(): string }> {
  const binary = await requireBinary('docker-registry', 'apt-get install -y docker-registry');
  const dir = await makeTempDir('registry-s3-');
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(REGISTRY_|AWS_)/.test(k) && !/_proxy$/i.test(k)) base[k] = v;
  let last: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    config.http.addr = `127.0.0.1:${port}`;
    const path = join(dir, 'config.yml');
    writeFileSync(path, stringify(config));
    const proc: LongRunningProcess = startProcess(binary, ['serve', path], {
      env: { ...base, ...env },
      cwd: dir,
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v2/`, {
        okStatuses: [401],
        timeoutMs: 15_000,
        giveUpIf: () => (proc.exitCode() === undefined ? undefined : 'docker-registry exited'),
      });
      return {
        host: `127.0.0.1:${port}`,
        logs: () => proc.output(),
        stop: async () => {
          await proc.stop();
          await removeTempDir(dir);
        },
      };
    } catch (err) {
      await proc.stop();
      last = new Error(`${(err as Error).message}\n--- docker-registry log ---\n${proc.output()}`);
      if (!/address already in use/.test(proc.output())) break;
    }
  }
  await removeTempDir(dir);
  throw last ?? new Error('could not start docker-registry');
}
