/**
 * The config repository workflow (examples/config-repo/.github/workflows/grants.yml) and the
 * regtoken Action it uses (action.yml), replayed the way GitHub's runner runs them
 * (test/helpers/actions/runner.ts): every job the event starts, every `run:` step in bash in
 * order with the runner's file protocol, the Action's composite steps, and stand-ins for the
 * other actions (test/helpers/actions/stand-ins.ts): checkout copies the config repository (or
 * this repository, for `uses: …/regtoken`), setup-node puts this machine's node on PATH, the AWS
 * credentials come from moto, artifacts are folders, and the PR comment API is a JSON file.
 *
 * What a real runner fetches from the network is local here: npm runs with `offline` and this
 * machine's npm cache (the registry's stand-in, as setup-node's cache restores it), and every
 * node process is watched for traffic beyond loopback (test/helpers/netguard.cjs).
 *
 * A pull request must plan (summary and one updated PR comment) and upload nothing; a merge to
 * main must upload exactly the merged file. A step that fails fails its job, and so this test.
 */

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { type ReplayResult, replay } from '../helpers/actions/runner.js';
import {
  checkout,
  comments,
  configureAwsCredentials,
  downloadArtifact,
  githubScript,
  setupNode,
  uploadArtifact,
} from '../helpers/actions/stand-ins.js';
import { ROOT } from '../helpers/cdk.js';
import { cli } from '../helpers/cli.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import { requireBinary } from '../helpers/process.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const CONFIG_REPO = `${ROOT}examples/config-repo/`;
const WORKFLOW = `${CONFIG_REPO}.github/workflows/grants.yml`;
const REPOSITORY = 'my-org/registry-grants';
const BUCKET = 'acme-regtoken-config';
const PR_NUMBER = 7;
const VARS = {
  AWS_REGION: 'us-east-1',
  REGTOKEN_CONFIG_BUCKET: BUCKET,
  REGTOKEN_PLAN_ROLE_ARN: 'arn:aws:iam::123456789012:role/regtoken-plan',
  REGTOKEN_UPLOAD_ROLE_ARN: 'arn:aws:iam::123456789012:role/regtoken-upload',
};

/** The pull request's change: a new principal, with a lifetime too short for the hourly schedule. */
const ADDED = `  - principal: arn:aws:iam::111122223333:role/deploy-bot
    ttl: 1h
    access:
      - repository: team-a/app
        actions: [pull]
`;

let dir: string;
let moto: Moto;
let s3: S3Client;
let deployed: string;
let proposed: string;
let npmLog: string;
let netLog: string;
let commentsFile: string;
let pr: ReplayResult;
let push: ReplayResult;

/** This repository as a checkout of its commit has it: tracked and unignored files. */
function copyRepository(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '-co', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && existsSync(join(ROOT, f)));
  for (const f of files) {
    mkdirSync(dirname(join(to, f)), { recursive: true });
    cpSync(join(ROOT, f), join(to, f));
  }
}

/** The machine a runner is: its tools on PATH (no project's node_modules), npm offline. */
function machineEnv(): Record<string, string> {
  const path = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => p && !p.includes('node_modules'))
    .join(':');
  const cache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  return {
    PATH: path,
    LANG: 'C.UTF-8',
    npm_config_offline: 'true',
    npm_config_cache: cache,
    npm_config_update_notifier: 'false',
    NODE_OPTIONS: `--require ${ROOT}test/helpers/netguard.cjs`,
    NETGUARD_LOG: netLog,
  };
}

async function replayEvent(
  name: string,
  event: { name: string; ref: string; payload: Record<string, unknown> },
  configRepo: string,
  regtoken: string,
): Promise<ReplayResult> {
  const artifacts = join(dir, name, 'artifacts');
  const toolDir = join(dir, name, 'toolcache');
  return replay({
    workflow: join(configRepo, '.github/workflows/grants.yml'),
    event,
    repository: REPOSITORY,
    vars: VARS,
    dir: join(dir, name, 'runner'),
    machineEnv: machineEnv(),
    standIns: {
      'actions/checkout': checkout(configRepo, {}),
      'actions/setup-node': setupNode(toolDir, npmLog),
      'aws-actions/configure-aws-credentials': configureAwsCredentials(moto.endpoint),
      'actions/upload-artifact': uploadArtifact(artifacts),
      'actions/download-artifact': downloadArtifact(artifacts),
      'actions/github-script': githubScript(commentsFile, PR_NUMBER),
    },
    compositeAction: (uses) => (uses.endsWith('/regtoken') ? regtoken : undefined),
    stepTimeoutMs: 600_000,
  });
}

beforeAll(async () => {
  await requireBinary('aws', "pip install awscli (GitHub's runners have the AWS CLI)");
  dir = await makeTempDir('workflow-');
  npmLog = join(dir, 'npm.log');
  netLog = join(dir, 'network.log');
  commentsFile = join(dir, 'comments.json');
  writeFileSync(npmLog, '');
  writeFileSync(netLog, '');
  moto = await startMoto();
  s3 = new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

  // What is deployed: the example grants. What the pull request proposes: one more principal.
  deployed = readFileSync(`${CONFIG_REPO}grants.yaml`, 'utf8');
  proposed = `${deployed}${ADDED}`;
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'grants.yaml', Body: deployed }));

  const regtoken = join(dir, 'regtoken');
  copyRepository(regtoken);
  const branch = join(dir, 'config-repo');
  cpSync(CONFIG_REPO, branch, { recursive: true });
  writeFileSync(join(branch, 'grants.yaml'), proposed);

  // The PR thread already has a reviewer's comment and the plan of an earlier push.
  writeFileSync(
    commentsFile,
    JSON.stringify([
      { id: 1, user: { type: 'User', login: 'reviewer' }, body: 'Why does deploy-bot need this?' },
      {
        id: 2,
        user: { type: 'Bot', login: 'github-actions[bot]' },
        body: '<!-- regtoken-plan -->\nold plan',
      },
    ]),
  );
  pr = await replayEvent(
    'pull-request',
    {
      name: 'pull_request',
      ref: `refs/pull/${PR_NUMBER}/merge`,
      payload: { number: PR_NUMBER, pull_request: { number: PR_NUMBER } },
    },
    branch,
    regtoken,
  );
  // The merge: main now has the proposed file.
  push = await replayEvent(
    'push',
    { name: 'push', ref: 'refs/heads/main', payload: { ref: 'refs/heads/main' } },
    branch,
    regtoken,
  );
}, 1_500_000);

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  if (dir) await removeTempDir(dir);
}, 120_000);

/** The jobs' results, with the replay's account of every step when they are not as expected. */
function results(r: ReplayResult) {
  return Object.fromEntries(Object.entries(r.jobs).map(([name, j]) => [name, j.result]));
}
function expectJobs(r: ReplayResult, expected: Record<string, string>) {
  const actual = results(r);
  if (JSON.stringify(actual) !== JSON.stringify(expected))
    throw new Error(
      `jobs ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}:\n${r.describe()}`,
    );
}

/** The plan as the Plan step writes it. */
async function expectedPlan(): Promise<string> {
  const work = join(dir, 'expected');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'deployed.yaml'), deployed);
  writeFileSync(join(work, 'grants.yaml'), proposed);
  const plan = await cli([
    'plan',
    '--from',
    join(work, 'deployed.yaml'),
    '--to',
    join(work, 'grants.yaml'),
  ]);
  expect(plan.code).toBe(0);
  const line = deployed.split('\n').length + 1;
  return [
    '<!-- regtoken-plan -->',
    `### regtoken plan for \`grants.yaml\` against \`s3://${BUCKET}/grants.yaml\``,
    '',
    `> warning: grants.yaml:${line}:10: ttl 1h is shorter than 2 × schedule (1h) + margin (5m) = 2h5m: when one scheduled run fails, these tokens expire before they are replaced (arn:aws:iam::111122223333:role/deploy-bot). Raise it to at least 2h5m.`,
    '',
    '```diff',
    plan.stdout.trimEnd(),
    '```',
    '',
  ].join('\n');
}

describe('a pull request', () => {
  it('runs check and plan, and no upload', () => {
    expectJobs(pr, { check: 'success', plan: 'success', upload: 'skipped' });
  });

  it('puts the plan, with the lifetime warning, in the job summary', async () => {
    const plan = await expectedPlan();
    expect(plan).toContain('+ arn:aws:iam::111122223333:role/deploy-bot (new: token lifetime 1h)');
    expect(pr.jobs.plan?.summary).toBe(plan);
  });

  it('replaces the earlier plan comment and leaves the reviewer’s comment alone', async () => {
    expect(comments(commentsFile)).toEqual([
      { id: 1, user: { type: 'User', login: 'reviewer' }, body: 'Why does deploy-bot need this?' },
      { id: 2, user: { type: 'Bot', login: 'github-actions[bot]' }, body: await expectedPlan() },
    ]);
  });

  it('validates with the schedule in the check job', () => {
    const validate = pr.jobs.check?.steps.find((s) => s.name.endsWith('› Validate'));
    expect(validate?.outcome).toBe('success');
    expect(validate?.output).toContain('grants.yaml: valid (3 grants, 4 principals)');
    expect(validate?.output).toContain('warning: grants.yaml:');
  });
});

describe('a merge to main', () => {
  it('runs check and upload, and no plan', () => {
    expectJobs(push, { check: 'success', plan: 'skipped', upload: 'success' });
  });

  it('uploads exactly the merged grants file, as YAML', async () => {
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'grants.yaml' }));
    expect(await object.Body?.transformToString()).toBe(proposed);
    expect(object.ContentType).toBe('application/yaml');
  });
});

describe('what runs where', () => {
  /** npm calls per job: `JOB\t[id-token]\tnpm ARGS`. */
  const npmCalls = () =>
    readFileSync(npmLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));

  it('dev dependencies and install scripts run only in the job that cannot mint an OIDC token', () => {
    const calls = npmCalls();
    const check = calls.filter(([job]) => job === 'check');
    expect(check.every(([, idToken]) => idToken === '')).toBe(true);
    expect(check.map(([, , cmd]) => cmd)).toContain('npm ci --no-audit --no-fund');
    const privileged = calls.filter(([job]) => job !== 'check');
    expect(privileged.map(([job, idToken, cmd]) => `${job} ${idToken} ${cmd}`)).toEqual([
      'plan id-token npm ci --omit=dev --ignore-scripts --no-audit --no-fund',
    ]);
  });

  it('the upload job runs no npm at all', () => {
    expect(npmCalls().filter(([job]) => job === 'upload')).toEqual([]);
  });

  it('nothing reached the network beyond loopback', () => {
    const lines = readFileSync(netLog, 'utf8').split('\n');
    expect(lines.filter((l) => / (lookup|connect) /.test(l))).toEqual([]);
    // The guard was there: it saw regtoken run.
    expect(lines.some((l) => / start .*regtoken/.test(l))).toBe(true);
  });
});

describe('the workflow and the Action as written', () => {
  const workflow = parse(readFileSync(WORKFLOW, 'utf8')) as {
    permissions: unknown;
    jobs: Record<string, { permissions: Record<string, string>; steps: { uses?: string }[] }>;
  };
  const action = parse(readFileSync(`${ROOT}action.yml`, 'utf8')) as {
    runs: { steps: { uses?: string }[] };
  };
  const text = `${readFileSync(WORKFLOW, 'utf8')}\n${readFileSync(`${ROOT}action.yml`, 'utf8')}`;

  it('grants no permission by default, and id-token only to plan and upload', () => {
    expect(workflow.permissions).toEqual({});
    expect(
      Object.entries(workflow.jobs)
        .filter(([, j]) => j.permissions['id-token'] === 'write')
        .map(([name]) => name),
    ).toEqual(['plan', 'upload']);
  });

  it('pins every third-party action to a commit SHA, with its tag in a comment', () => {
    const uses = [...text.matchAll(/uses: (\S+)(.*)$/gm)].filter(
      ([, ref]) => !ref?.includes('/regtoken@'),
    );
    expect(uses.length).toBeGreaterThan(5);
    for (const [line, ref, comment] of uses)
      expect({
        line,
        pinned: /@[0-9a-f]{40}$/.test(ref as string) && /# v\d+\.\d+\.\d+$/.test(comment as string),
      }).toEqual({ line, pinned: true });
  });

  it('runs regtoken only through the Action: no run steps of its own', () => {
    const steps = Object.values(workflow.jobs).flatMap((j) => j.steps) as {
      uses?: string;
      run?: string;
    }[];
    expect(steps.filter((s) => s.uses?.includes('/regtoken@')).length).toBe(3);
    expect(steps.filter((s) => s.run !== undefined)).toEqual([]);
    expect(action.runs.steps.every((s) => s.uses !== undefined || 'run' in s)).toBe(true);
  });
});

describe('examples/config-repo/grants.yaml', () => {
  it('is valid, and its lifetimes suit the hourly schedule', async () => {
    const r = await cli(['validate', '--schedule', '1h', `${CONFIG_REPO}grants.yaml`]);
    expect(r).toEqual({
      code: 0,
      stdout: `${CONFIG_REPO}grants.yaml: valid (2 grants, 3 principals)\n`,
      stderr: '',
    });
  });
});
