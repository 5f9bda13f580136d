/**
 * `npx cdk synth` exactly as a user runs it, offline: no AWS credentials (no environment
 * variables, no ~/.aws, no instance metadata), a `docker` that fails loudly and leaves a mark if
 * anything calls it, and every node process it starts watched for network use
 * (test/helpers/netguard.cjs): cdk.json turns off the CLI's notices and telemetry, so synth
 * makes no DNS lookup and no connection at all. cfn-lint checks the template it wrote. Then the
 * function bundle it produced is run for real: with this machine's Node (a local mint, no AWS),
 * which proves the ESM output and its require() banner work, and as Lambda runs it, on the
 * runtime's Node.js major against moto, for both of its triggers.
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
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { staticallyLoaded } from '../helpers/bundles.js';
import { type CfnJson, ROOT } from '../helpers/cdk.js';
import { ResolvedTemplate } from '../helpers/cfn.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { type Invocations, invoke, lambdaNode } from '../helpers/lambda-runtime.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { requireBinary, run } from '../helpers/process.js';
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
  it('ships a source map of the mappings only: stack traces name the sources, none is embedded', () => {
    const asset = readdirSync(out).find((d) => existsSync(join(out, d, 'index.mjs'))) as string;
    expect(readFileSync(join(out, asset, 'index.mjs'), 'utf8')).toMatch(
      /\/\/# sourceMappingURL=index\.mjs\.map\s*$/,
    );
    const map = JSON.parse(readFileSync(join(out, asset, 'index.mjs.map'), 'utf8')) as {
      sources: string[];
      mappings: string;
      sourcesContent?: unknown;
    };
    expect(map.sources.some((s) => s.endsWith('lambda/handler.ts'))).toBe(true);
    expect(map.mappings.length).toBeGreaterThan(0);
    // With the sources embedded the map was 4.2 MB, and --enable-source-maps (set on the
    // function) read it all on every cold start (docs/performance.md).
    expect(map.sourcesContent).toBeUndefined();
  });

  it('is split at its dynamic imports: a cold start does not load the YAML reader for wrong files', () => {
    const asset = readdirSync(out).find((d) => existsSync(join(out, d, 'index.mjs'))) as string;
    const dir = join(out, asset);
    const code = (file: string) => readFileSync(join(dir, file), 'utf8');
    // What importing index.mjs loads: its static imports, and theirs.
    const loaded = new Set(staticallyLoaded(dir, 'index.mjs'));
    const chunks = readdirSync(dir).filter((f) => f.endsWith('.mjs'));
    const yamlReader = chunks.filter((f) => code(f).includes('YAMLParseError'));
    expect(yamlReader).toHaveLength(1);
    expect(loaded.has(yamlReader[0] as string)).toBe(false);
    // It is loaded on demand (a dynamic import), and every chunk has its map of mappings.
    expect([...loaded].some((f) => code(f).includes(`import("./${yamlReader[0]}")`))).toBe(true);
    for (const f of chunks) expect(existsSync(join(dir, `${f}.map`))).toBe(true);
  });

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

describe('cfn-lint on the template synth wrote', () => {
  it('finds no error', async () => {
    await requireBinary('cfn-lint', 'pip install cfn-lint');
    const r = await run('cfn-lint', ['--format', 'json', join(out, 'Regtoken.template.json')], {
      timeoutMs: 180_000,
    });
    const findings = JSON.parse(r.stdout || '[]') as { Level: string; Rule: { Id: string } }[];
    expect(findings.filter((f) => f.Level === 'Error').map((f) => f.Rule.Id)).toEqual([]);
    expect(r.code & 2).toBe(0); // cfn-lint's exit code: bit 2 means errors
  }, 200_000);
});

/**
 * The bundle as Lambda runs it: the asset synth wrote (not the TypeScript source), on the
 * Node.js major of the function's runtime, with the environment its template gives it (the
 * names resolved to resources created in moto), the role's session credentials, and the events
 * its two triggers send: the schedule's input from the template, and an S3 notification for
 * the grants object. Both mint.
 *
 * The function reaches moto through test/helpers/fault-proxy.ts (injecting no fault), which
 * keeps the token bucket's policy itself: moto 5.2 half-enforces a stored bucket policy,
 * treating conditions it cannot check as a Deny. What the policy means is evaluated in
 * test/infra/policies.test.ts.
 */
describe('the bundled function on the Lambda runtime, against the AWS stand-in', () => {
  const ACCOUNT = '123456789012'; // moto's account
  const grants = `${readFileSync(`${ROOT}examples/config-repo/grants.yaml`, 'utf8')}  - principal: arn:aws:iam::${ACCOUNT}:role/deploy-bot
    ttl: 1h
    access:
      - repository: team-a/app
        actions: [pull]
`;
  let moto: Moto;
  let proxy: FaultProxy;
  let aws: { s3: S3Client; kms: KMSClient; iam: IAMClient; sts: STSClient };
  let fn: CfnJson;
  let node: { path: string; version: string };
  let env: Record<string, string>;
  let names: { config: string; tokens: string; roleArn: string; keyArn: string };
  let invoked: Invocations;

  beforeAll(async () => {
    node = await lambdaNode();
    moto = await startMoto();
    proxy = await startFaultProxy(moto.endpoint);
    const client = {
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    aws = {
      s3: new S3Client({ ...client, forcePathStyle: true }),
      kms: new KMSClient(client),
      iam: new IAMClient(client),
      sts: new STSClient(client),
    };
    const template = JSON.parse(
      readFileSync(join(out, 'Regtoken.template.json'), 'utf8'),
    ) as CfnJson;
    const t0 = new ResolvedTemplate(template, { account: ACCOUNT, region: 'us-east-1' });
    fn = t0.only('AWS::Lambda::Function', 'MinterFunction');

    // The stack's resources, in moto: the buckets, the signing root, the function's role and
    // the role a grant names in this account (principals in other accounts are not checked).
    names = {
      config: 'regtoken-config-test',
      tokens: 'regtoken-tokens-test',
      roleArn: '',
      keyArn: '',
    };
    for (const bucket of [names.config, names.tokens])
      await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const key = await aws.kms.send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    );
    names.keyArn = key.KeyMetadata?.Arn as string;
    const lambdaTrust = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    });
    const role = await aws.iam.send(
      new CreateRoleCommand({
        RoleName: 'Regtoken-MinterRole',
        AssumeRolePolicyDocument: lambdaTrust,
      }),
    );
    names.roleArn = role.Role?.Arn as string;
    await aws.iam.send(
      new CreateRoleCommand({ RoleName: 'deploy-bot', AssumeRolePolicyDocument: lambdaTrust }),
    );
    await aws.s3.send(
      new PutObjectCommand({ Bucket: names.config, Key: 'grants.yaml', Body: grants }),
    );

    const id = (prefix: string, type: string) => t0.only(type, prefix).id;
    const t = new ResolvedTemplate(
      template,
      { account: ACCOUNT, region: 'us-east-1' },
      {
        [id('MinterConfigBucket', 'AWS::S3::Bucket')]: {
          ref: names.config,
          attributes: { Arn: `arn:aws:s3:::${names.config}` },
        },
        [id('MinterTokenBucket', 'AWS::S3::Bucket')]: {
          ref: names.tokens,
          attributes: { Arn: `arn:aws:s3:::${names.tokens}` },
        },
        [id('MinterRole', 'AWS::IAM::Role')]: {
          ref: 'Regtoken-MinterRole',
          attributes: { Arn: names.roleArn },
        },
        [id('RootKey1', 'AWS::KMS::Key')]: {
          ref: key.KeyMetadata?.KeyId as string,
          attributes: { Arn: names.keyArn },
        },
      },
    );
    env = t.resolve(fn.properties.Environment.Variables) as Record<string, string>;

    // Lambda runs the function with its role's session credentials.
    const session = await aws.sts.send(
      new AssumeRoleCommand({ RoleArn: names.roleArn, RoleSessionName: 'Regtoken-MinterFunction' }),
    );
    const c = session.Credentials;
    const schedule = t.only('AWS::Scheduler::Schedule').properties;
    const s3Event = {
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: 'us-east-1',
          eventTime: '2026-11-30T06:00:00.000Z',
          eventName: 'ObjectCreated:Put',
          s3: {
            s3SchemaVersion: '1.0',
            bucket: { name: names.config, arn: `arn:aws:s3:::${names.config}` },
            object: { key: 'grants.yaml', size: grants.length },
          },
        },
      ],
    };
    invoked = await invoke({
      node: node.path,
      taskRoot: join(
        out,
        readdirSync(out).find((d) => existsSync(join(out, d, 'index.mjs'))) as string,
      ),
      handler: fn.properties.Handler,
      functionName: 'Regtoken-MinterFunction',
      functionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:Regtoken-MinterFunction`,
      memorySize: fn.properties.MemorySize,
      env: {
        ...env,
        AWS_REGION: 'us-east-1',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: c?.AccessKeyId as string,
        AWS_SECRET_ACCESS_KEY: c?.SecretAccessKey as string,
        AWS_SESSION_TOKEN: c?.SessionToken as string,
        AWS_ENDPOINT_URL: proxy.endpoint,
        NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --require ${ROOT}test/helpers/netguard.cjs`,
        NETGUARD_LOG: netLog,
      },
      events: [JSON.parse(schedule.Target.Input), s3Event],
      workDir: dir,
    });
  }, 180_000);
  afterAll(async () => {
    for (const client of Object.values(aws ?? {})) client.destroy();
    await proxy?.stop();
    await moto?.stop();
  });

  it("runs on the Node.js major of the function's runtime", () => {
    expect(fn.properties.Runtime).toBe(`nodejs${node.version.slice(1).split('.')[0]}.x`);
  });

  it('mints for the scheduled event and again for the S3 event (a warm container)', () => {
    expect({ code: invoked.code, stderr: invoked.code === 0 ? '' : invoked.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    const minted = { skipped: false, minted: 4, removed: 0, unknown: 0, passes: 1 };
    expect(invoked.results).toEqual([
      { ...minted, configVersion: expect.any(String) },
      { ...minted, configVersion: expect.any(String) },
    ]);
    const started = invoked.lines.filter((l) => l.message === 'run started').map((l) => l.trigger);
    expect(started).toEqual(['regtoken.schedule', 's3:grants.yaml']);
  });

  it('wrote the tokens, the trust bundle and the bucket policy with its role as the minter', async () => {
    const list = await aws.s3.send(new ListObjectsV2Command({ Bucket: names.tokens }));
    expect((list.Contents ?? []).map((o) => o.Key).sort()).toEqual([
      'state/lock.json',
      'tokens/111122223333/role/ci-runner.json',
      'tokens/111122223333/role/ec2-web.json',
      `tokens/${ACCOUNT}/role/deploy-bot.json`,
      'tokens/444455556666/user/alice.json',
      'trust/bundle.pem',
      'trust/jwks.json',
    ]);
    expect(proxy.policies.get(names.tokens)).toContain(
      `"ArnNotEquals":{"aws:PrincipalArn":["${names.roleArn}"]}`,
    );
  });

  it("checks lifetimes against the stack's schedule: a warning and the ShortLifetimes metric", () => {
    expect(env.REGTOKEN_SCHEDULE).toBe('1h');
    const warnings = invoked.lines.filter(
      (l) => l.message === 'token lifetime shorter than two schedule periods plus the margin',
    );
    expect(warnings.map((w) => w.principals)).toEqual([
      [`arn:aws:iam::${ACCOUNT}:role/deploy-bot`],
      [`arn:aws:iam::${ACCOUNT}:role/deploy-bot`],
    ]);
    const metrics = invoked.lines.filter((l) => l._aws !== undefined);
    expect(metrics.map((m) => [m.ShortLifetimes, m.RunsSucceeded, m.service])).toEqual([
      [1, 1, env.POWERTOOLS_SERVICE_NAME],
      [1, 1, env.POWERTOOLS_SERVICE_NAME],
    ]);
  });

  it('made no connection beyond loopback', () => {
    const lines = readFileSync(netLog, 'utf8').split('\n');
    expect(lines.some((l) => l.includes('bootstrap.mjs'))).toBe(true);
    expect(lines.filter((l) => / (lookup|connect) /.test(l))).toEqual([]);
  });
});
