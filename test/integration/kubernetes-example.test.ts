/**
 * The Kubernetes node examples, run for real: examples/kubernetes/credential-provider-config.yaml
 * is a kubelet.config.k8s.io/v1 CredentialProviderConfig naming the provider the package
 * installs, and node-setup.sh installs a package with the real npm, links the provider into the
 * kubelet's provider directory and merges its entry into the config nodeadm writes — keeping the
 * ECR provider, idempotently, and refusing a file it cannot merge.
 */

import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { KUBELET_API_VERSION } from '../../lambda/core/credential-protocols.js';
import { ENV_VARS } from '../../lambda/env.js';
import { run } from '../helpers/process.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const REPO = new URL('../..', import.meta.url).pathname;
const ex = (name: string) => join(REPO, 'examples', 'kubernetes', name);
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
/** metav1.Duration as Go's time.ParseDuration reads it (units h, m, s, ms; no spaces). */
const GO_DURATION = /^(\d+(\.\d+)?(h|m|s|ms))+$/;
/** The fields of a v1 CredentialProvider (kubelet.config.k8s.io/v1). */
const PROVIDER_FIELDS = [
  'name',
  'matchImages',
  'defaultCacheDuration',
  'apiVersion',
  'args',
  'env',
];

/** Checks one provider entry against the v1 API and regtoken's provider. */
function expectRegtokenProvider(p: Record<string, unknown>, registry: string): void {
  for (const key of Object.keys(p)) expect(PROVIDER_FIELDS).toContain(key);
  expect(p.name).toBe('regtoken-credential-provider');
  expect(Object.keys(pkg.bin)).toContain(p.name);
  expect(p.matchImages).toEqual([registry]);
  expect(p.defaultCacheDuration).toMatch(GO_DURATION);
  expect(p.apiVersion).toBe(KUBELET_API_VERSION);
  const env = p.env as { name: string; value: string }[];
  for (const e of env) {
    expect(Object.keys(e).sort()).toEqual(['name', 'value']);
    expect(Object.keys(ENV_VARS)).toContain(e.name);
  }
  expect(env.map((e) => e.name)).toEqual(['REGTOKEN_FROM', 'REGTOKEN_REGISTRY', 'XDG_CACHE_HOME']);
}

describe('credential-provider-config.yaml', () => {
  it("is a v1 CredentialProviderConfig with regtoken's provider for the registry alone", () => {
    const config = parse(readFileSync(ex('credential-provider-config.yaml'), 'utf8'));
    expect(Object.keys(config)).toEqual(['apiVersion', 'kind', 'providers']);
    expect(config.apiVersion).toBe('kubelet.config.k8s.io/v1');
    expect(config.kind).toBe('CredentialProviderConfig');
    expect(config.providers).toHaveLength(1);
    expectRegtokenProvider(config.providers[0], 'registry.example.com');
  });
});

describe('node-setup.sh', () => {
  let tmp: string;
  let tgz: string;
  /** A provider config as nodeadm writes it: the ECR provider alone. */
  const NODEADM = {
    apiVersion: 'kubelet.config.k8s.io/v1',
    kind: 'CredentialProviderConfig',
    providers: [
      {
        name: 'ecr-credential-provider',
        matchImages: ['*.dkr.ecr.*.amazonaws.com'],
        defaultCacheDuration: '12h0m0s',
        apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      },
    ],
  };

  beforeAll(async () => {
    tmp = await makeTempDir('kubernetes-example-');
    // The package: the real name, version and bins, stub commands, no dependencies (the real
    // package's contents are checked by examples.test.ts's npm pack test).
    const stub = join(tmp, 'pkg');
    mkdirSync(join(stub, 'bin'), { recursive: true });
    writeFileSync(
      join(stub, 'package.json'),
      JSON.stringify({ name: pkg.name, version: pkg.version, bin: pkg.bin }),
    );
    for (const [name, file] of Object.entries(pkg.bin as Record<string, string>))
      writeFileSync(
        join(stub, file),
        `#!/usr/bin/env node\nconsole.log('${name} (regtoken) ${pkg.version}');\n`,
      );
    const packed = await run('npm', ['pack', '--json', '--ignore-scripts', stub], {
      cwd: tmp,
      env: { ...process.env, npm_config_cache: join(tmp, 'npm-cache') },
    });
    expect(packed.code).toBe(0);
    tgz = join(tmp, (JSON.parse(packed.stdout) as { filename: string }[])[0]?.filename ?? '');
  }, 60_000);
  afterAll(async () => removeTempDir(tmp));

  async function setup(root: string, env: Record<string, string> = {}) {
    mkdirSync(root, { recursive: true });
    return run('bash', [ex('node-setup.sh')], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: join(root, 'home'),
        npm_config_cache: join(tmp, 'npm-cache'),
        npm_config_update_notifier: 'false',
        REGTOKEN_ROOT: root,
        REGTOKEN_FROM: 's3://regtoken-tokens',
        REGTOKEN_REGISTRY: 'registry.example.com:5000',
        REGTOKEN_PACKAGE: `file://${tgz}`,
        ...env,
      },
      timeoutMs: 120_000,
    });
  }

  it('on an EKS node: installs, links the provider, adds it next to the ECR provider; twice is once', async () => {
    const root = join(tmp, 'eks');
    const dir = join(root, 'etc/eks/image-credential-provider');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(NODEADM, null, 2));
    for (let attempt = 1; attempt <= 2; attempt++) {
      const r = await setup(root);
      expect(r.stderr).toContain(
        `regtoken node-setup: installed regtoken-credential-provider (regtoken) ${pkg.version}`,
      );
      expect(r.code).toBe(0);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(config.providers.map((p: { name: string }) => p.name)).toEqual([
        'ecr-credential-provider',
        'regtoken-credential-provider',
      ]);
      expect(config.providers[0]).toEqual(NODEADM.providers[0]);
      expectRegtokenProvider(config.providers[1], 'registry.example.com:5000');
      expect(config.providers[1].env[0]).toEqual({
        name: 'REGTOKEN_FROM',
        value: 's3://regtoken-tokens',
      });
      expect(statSync(join(dir, 'config.json')).mode & 0o777).toBe(0o644);
      expect(existsSync(join(dir, 'config.json.regtoken'))).toBe(false);
    }
    // The kubelet runs the provider by name from its bin dir: the link runs the installed bin.
    const link = join(dir, 'regtoken-credential-provider');
    expect(readlinkSync(link)).toBe(join(root, 'usr/local/bin/regtoken-credential-provider'));
    const provider = await run(link, ['--version']);
    expect(provider.stdout).toBe(`regtoken-credential-provider (regtoken) ${pkg.version}\n`);
  }, 240_000);

  it("on another node: writes a config with regtoken's provider alone where the kubelet is told", async () => {
    const root = join(tmp, 'other');
    const r = await setup(root, {
      KUBELET_PROVIDER_DIR: '/usr/local/libexec/kubelet-credential-providers',
      KUBELET_PROVIDER_CONFIG: '/etc/regtoken/credential-provider-config.json',
    });
    expect(r.code).toBe(0);
    const config = JSON.parse(
      readFileSync(join(root, 'etc/regtoken/credential-provider-config.json'), 'utf8'),
    );
    expect(config.apiVersion).toBe('kubelet.config.k8s.io/v1');
    expect(config.providers).toHaveLength(1);
    expectRegtokenProvider(config.providers[0], 'registry.example.com:5000');
    expect(
      existsSync(
        join(root, 'usr/local/libexec/kubelet-credential-providers/regtoken-credential-provider'),
      ),
    ).toBe(true);
  }, 240_000);

  it('refuses a config it cannot merge (YAML), and leaves it as it was', async () => {
    const root = join(tmp, 'yaml');
    const dir = join(root, 'etc/eks/image-credential-provider');
    mkdirSync(dir, { recursive: true });
    const yaml = readFileSync(ex('credential-provider-config.yaml'), 'utf8');
    writeFileSync(join(dir, 'config.json'), yaml);
    chmodSync(join(dir, 'config.json'), 0o600);
    const r = await setup(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `regtoken node-setup: ${dir}/config.json is not JSON: add the provider of examples/kubernetes/credential-provider-config.yaml to it by hand`,
    );
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe(yaml);
    expect(statSync(join(dir, 'config.json')).mode & 0o777).toBe(0o600);
  }, 240_000);
});
