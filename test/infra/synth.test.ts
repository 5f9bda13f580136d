/**
 * `npx cdk synth` exactly as a user runs it, offline: no AWS credentials (no environment
 * variables, no ~/.aws, no instance metadata), a `docker` that fails loudly and leaves a mark if
 * anything calls it, and every node process it starts watched for network use
 * (test/helpers/netguard.cjs): cdk.json turns off the CLI's notices and telemetry, so synth
 * makes no DNS lookup and no connection at all. Then the function bundle it produced is run for
 * real with Node (a local mint, no AWS), which proves the ESM output and its require() banner
 * work.
 */

import { generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ROOT } from '../helpers/cdk.js';
import { run } from '../helpers/process.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
let out: string;
let dockerMark: string;
let netLog: string;
let synth: Awaited<ReturnType<typeof run>>;

/**
 * The environment of the test process minus anything that could reach AWS or Docker, or that
 * would quiet the CDK CLI for another reason than cdk.json: no CI variable (the CLI shows no
 * notices on CI) and a fresh CDK home (no cached notices, no telemetry opt-out).
 */
function offlineEnv(fakeBin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(AWS_|CDK_|DOCKER_|NODE_OPTIONS$|CI$)/.test(k) && k !== 'HOME') env[k] = v;
  return {
    ...env,
    HOME: join(dir, 'home'),
    CDK_HOME: join(dir, 'home', '.cdk'),
    PATH: `${fakeBin}:${process.env.PATH ?? ''}`,
    CDK_DOCKER: join(fakeBin, 'docker'),
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    // npm's own check for a newer npm (npx runs the CLI) is a setting of the user's npm, not
    // of this repository; ~/.npmrc is out of reach here (HOME is fresh), so it is set here.
    npm_config_update_notifier: 'false',
    NODE_OPTIONS: `--require ${ROOT}test/helpers/netguard.cjs`,
    NETGUARD_LOG: netLog,
  };
}

/** Whether process `pid` still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The network record of netguard.cjs once every process it saw (started or spawned) is gone:
 * the CLI sends telemetry from a detached child that outlives it. Bookkeeping lines are left
 * out.
 */
async function networkUse(): Promise<string[]> {
  const bookkeeping = / (start|spawn|exit)( |$)/;
  for (let waited = 0; ; waited += 100) {
    const lines = existsSync(netLog) ? readFileSync(netLog, 'utf8').trim().split('\n') : [];
    const pids = lines.flatMap((l) => {
      const m = /^(\d+) start|^\d+ spawn (\d+)$/.exec(l);
      return m ? [Number(m[1] ?? m[2])] : [];
    });
    if (!pids.some(alive) || waited > 30_000) return lines.filter((l) => !bookkeeping.test(l));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  dir = await makeTempDir('synth-');
  const fakeBin = join(dir, 'bin');
  out = join(dir, 'cdk.out');
  dockerMark = join(dir, 'docker-was-called');
  netLog = join(dir, 'network.log');
  mkdirSync(fakeBin, { recursive: true });
  mkdirSync(join(dir, 'home'), { recursive: true });
  const docker = join(fakeBin, 'docker');
  writeFileSync(
    docker,
    `#!/bin/sh\necho "$@" >> '${dockerMark}'\necho 'docker is not available in this test' >&2\nexit 1\n`,
  );
  chmodSync(docker, 0o755);
  synth = await run('npx', ['cdk', 'synth', '-q', '-o', out], {
    cwd: ROOT,
    env: offlineEnv(fakeBin),
    timeoutMs: 180_000,
  });
}, 200_000);
afterAll(async () => removeTempDir(dir));

describe('npx cdk synth, offline, without AWS credentials or Docker', () => {
  it('succeeds', () => {
    expect({ code: synth.code, stderr: synth.code === 0 ? '' : synth.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
  });

  it('never called docker', () => {
    expect(existsSync(dockerMark)).toBe(false);
  });

  it('made no DNS lookup and no connection beyond loopback (no notices, no telemetry)', async () => {
    // The record exists: the guard ran in the CLI and in the app it started.
    expect(readFileSync(netLog, 'utf8')).toMatch(/ start .*infra\/app\.ts/);
    expect(await networkUse()).toEqual([]);
  });

  it('bundled the function with local esbuild', () => {
    expect(synth.stderr).toMatch(/Bundling asset Regtoken\/Minter\/Function/);
    expect(synth.stderr).toMatch(/index\.mjs/);
  });

  it('wrote the Regtoken stack with the function and the token bucket', () => {
    const template = JSON.parse(readFileSync(join(out, 'Regtoken.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties?: { Runtime?: string } }>;
    };
    const types = Object.values(template.Resources).map((r) => r.Type);
    expect(types).toEqual(
      expect.arrayContaining([
        'AWS::Lambda::Function',
        'AWS::S3::Bucket',
        'AWS::KMS::Key',
        'AWS::Scheduler::Schedule',
        'Custom::S3BucketNotifications',
      ]),
    );
    expect(
      Object.values(template.Resources).filter((r) => r.Properties?.Runtime === 'nodejs22.x'),
    ).toHaveLength(1);
  });
});

describe('the bundled function', () => {
  it('runs: a local mint through the real handler, from the ESM bundle', async () => {
    const assets = readdirSync(out).filter((d) => existsSync(join(out, d, 'index.mjs')));
    expect(assets).toHaveLength(1);
    const bundle = join(out, assets[0] as string, 'index.mjs');
    const key = join(dir, 'key.pem');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const tokens = join(dir, 'tokens');
    const r = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import(process.argv[1]); const result = await m.handler({ source: 'test' }); process.stdout.write('RESULT ' + JSON.stringify(result) + '\\n');",
        bundle,
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          REGTOKEN_CONFIG: `${ROOT}examples/config-repo/grants.yaml`,
          REGTOKEN_OUT: tokens,
          REGTOKEN_SIGNING_KEY: key,
          POWERTOOLS_METRICS_NAMESPACE: 'regtoken',
        },
        timeoutMs: 60_000,
      },
    );
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    // Powertools logs JSON; the one warning is about wildcard patterns without an inventory.
    const logged = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; service: string; message: string });
    expect(logged.map((l) => [l.level, l.service, l.message])).toEqual([
      [
        'WARN',
        'regtoken',
        'the grants use wildcard patterns but no repository inventory was given: patterns grant nothing (pass --repositories)',
      ],
    ]);
    expect(r.stdout).toMatch(
      /^RESULT {"skipped":false,"minted":3,"removed":0,"unknown":0,"passes":1}$/m,
    );
    expect(existsSync(join(tokens, 'tokens/111122223333/role/ci-runner.json'))).toBe(true);
  });
});
