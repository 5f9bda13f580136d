/**
 * End to end against moto_server: the Lambda handler's own code path (createHandler → runMint →
 * mintExclusive → mint with the S3, IAM, STS and KMS adapters) on a generated workload, and its
 * floor measured in the same process: bare PutObject of bodies of the same sizes as the token
 * documents the run wrote, with the same S3 client configuration and the same concurrency.
 *
 * {@link setupAws} runs in the parent (buckets, IAM roles and users, the KMS key, the registry's
 * storage, the grants object); {@link measureE2E} runs in a fresh child process per size, so
 * its peak RSS is the run's own.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CreateRoleCommand,
  CreateUserCommand,
  DeleteRoleCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  GetBucketPolicyCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AwsClients } from '../lambda/adapters/aws.js';
import { mapLimit } from '../lambda/core/pool.js';
import { createHandler, type HandlerResult } from '../lambda/handler.js';
import type { RunSettings } from '../lambda/run.js';
import { CallCounter, type CallCounts } from './counter.js';
import type { Workload } from './generate.js';
import { cpuMs, type ServerCpu } from './server-cpu.js';
import { median, percentile } from './stats.js';

export const CONFIG_BUCKET = 'regtoken-config';
export const TOKEN_BUCKET = 'regtoken-tokens';
export const REGISTRY_BUCKET = 'registry-storage';
/** The floor writes here, so its objects never show up in the run's listing of tokens/. */
export const FLOOR_BUCKET = 'regtoken-floor';
export const MINTER_ROLE = 'regtoken-minter';
/** The trust policy of the roles the bench creates (nobody assumes them). */
const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [] });

/** What the parent created for one workload. */
export interface AwsSetup {
  readonly kmsKeyArn: string;
  readonly minterArn: string;
  /** Roles and users that exist in IAM in the minter's account (for the IAM call bound). */
  readonly iamRoles: number;
  readonly iamUsers: number;
}

/**
 * Creates everything a run needs in a fresh moto: buckets (the config bucket versioned, as the
 * stack makes it), the minter role and every existing principal of the minter's account in IAM,
 * the ECC_NIST_P256 signing key, one object per repository in the registry's S3 layout, and the
 * grants object.
 */
export async function setupAws(w: Workload): Promise<AwsSetup> {
  const s3 = new S3Client({});
  const iam = new IAMClient({});
  const kms = new KMSClient({});
  for (const bucket of [CONFIG_BUCKET, TOKEN_BUCKET, REGISTRY_BUCKET, FLOOR_BUCKET])
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(
    new PutBucketVersioningCommand({
      Bucket: CONFIG_BUCKET,
      VersioningConfiguration: { Status: 'Enabled' },
    }),
  );
  const minter = await iam.send(
    new CreateRoleCommand({ RoleName: MINTER_ROLE, AssumeRolePolicyDocument: TRUST }),
  );
  const local = w.principals.filter((p) => p.account === w.localAccount && p.exists);
  await mapLimit(local, 8, async (p) => {
    if (p.type === 'role')
      await iam.send(
        new CreateRoleCommand({ RoleName: p.name, Path: p.path, AssumeRolePolicyDocument: TRUST }),
      );
    else await iam.send(new CreateUserCommand({ UserName: p.name, Path: p.path }));
  });
  const key = await kms.send(
    new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
  );
  await mapLimit(w.inventory, 16, async (repo) => {
    await s3.send(
      new PutObjectCommand({
        Bucket: REGISTRY_BUCKET,
        Key: `docker/registry/v2/repositories/${repo}/_manifests/tags/latest/current/link`,
        Body: 'sha256:0',
      }),
    );
  });
  await s3.send(
    new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: 'grants.yaml', Body: w.configText }),
  );
  s3.destroy();
  iam.destroy();
  kms.destroy();
  return {
    kmsKeyArn: key.KeyMetadata?.Arn ?? '',
    minterArn: minter.Role?.Arn ?? '',
    iamRoles: local.filter((p) => p.type === 'role').length + 1,
    iamUsers: local.filter((p) => p.type === 'user').length,
  };
}

/** One measured handler invocation. */
export interface RunSample {
  readonly ms: number;
  readonly calls: CallCounts;
  readonly result: HandlerResult;
}

export interface E2EResult {
  /** The first run: policy written, root certificate made and signed, every token new. */
  readonly first: RunSample;
  /** Steady-state runs (tokens exist, a few stale ones to remove); the median is reported. */
  readonly runs: readonly RunSample[];
  readonly runMs: number;
  readonly floorSamples: readonly number[];
  readonly floorMs: number;
  /** Token documents written in a steady run, and the tokens in them (bytes). */
  readonly documentBytes: { readonly p50: number; readonly max: number; readonly total: number };
  readonly tokenBytes: { readonly p50: number; readonly max: number };
  readonly policyBytes: number;
  /**
   * Tokens made stale before each steady run: the roles of that many principals deleted in IAM
   * (and those deleted before the last run created again).
   */
  readonly stale: number;
  /** Peak RSS of the process after the runs, before the floor (KiB), and RSS before any run. */
  readonly maxRssKiB: number;
  readonly baselineRssKiB: number;
  /** Direct mode (KMS signs every token), when asked for. */
  readonly direct?: RunSample;
  /**
   * moto_server's CPU time (ms) during each steady run and each floor, when the bench could
   * read it (Linux): what each asked of the AWS stand-in, in 10 ms ticks.
   */
  readonly serverCpu?: { readonly runs: readonly number[]; readonly floors: readonly number[] };
}

function quietHandler(aws: AwsClients, settings: RunSettings) {
  return createHandler({
    settings: () => settings,
    aws,
    // As deployed (INFO, metrics in EMF on stdout); the child's stdout is discarded.
    logger: new Logger({ serviceName: 'regtoken', logLevel: 'INFO' }),
    metrics: new Metrics({ namespace: 'regtoken', serviceName: 'regtoken' }),
  });
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * Runs the handler once (first run), then `reps` steady-state runs, each after deleting the
 * roles of `stale` principals in IAM, so their tokens are stale; then the floor `reps` times.
 * With `direct`, one more run in KMS direct mode.
 */
export async function measureE2E(
  w: Workload,
  setup: AwsSetup,
  options: { reps: number; direct: boolean; server?: ServerCpu },
): Promise<E2EResult> {
  const baselineRssKiB = Math.round(process.memoryUsage().rss / 1024);
  const settings: RunSettings = {
    config: `s3://${CONFIG_BUCKET}/grants.yaml`,
    out: `s3://${TOKEN_BUCKET}`,
    signingKey: `kms:${setup.kmsKeyArn}`,
    repositories: `s3://${REGISTRY_BUCKET}`,
    minterArns: [setup.minterArn],
    trustedKeys: [],
    signingMode: undefined,
    lockLease: '15m',
  };
  const aws = new AwsClients();
  const counter = new CallCounter();
  counter.attach(aws);
  const handler = quietHandler(aws, settings);

  const timed = async (run: () => Promise<HandlerResult>): Promise<RunSample> => {
    gc();
    counter.reset();
    const t0 = performance.now();
    const result = await run();
    const ms = performance.now() - t0;
    return { ms, calls: counter.snapshot(), result };
  };

  // Separate, uncounted clients for the bench's own requests (IAM changes, reading sizes).
  const helperClients = new AwsClients();
  const helper = helperClients.s3;
  // Before each steady run, `stale` roles that have a token are deleted in IAM, and the ones
  // deleted before the last run created again: a principal IAM no longer knows loses its token,
  // and the only writers of the token bucket are the minters (docs/aws.md), so staleness comes
  // as it does on AWS, from the grants or from IAM. The grants stay unchanged: a scheduled run.
  const stale = Math.max(1, Math.round(w.n / 100));
  const roles = w.principals.filter(
    (p) => p.account === w.localAccount && p.exists && p.type === 'role',
  );
  // Two windows in a row must not meet: a role is created again before the next are deleted.
  if (roles.length < stale * 2) throw new Error('e2e: too few roles to make tokens stale');
  let dropped: typeof roles = [];
  /** Creates again the roles deleted last, then deletes the `rep`th window of `stale` (none: -1). */
  const dropRoles = async (rep: number) => {
    const next = Array.from(
      { length: rep < 0 ? 0 : stale },
      (_, j) => roles[(rep * stale + j) % roles.length] as (typeof roles)[number],
    );
    await mapLimit(dropped, 8, async (p) => {
      await helperClients.iam.send(
        new CreateRoleCommand({ RoleName: p.name, Path: p.path, AssumeRolePolicyDocument: TRUST }),
      );
    });
    await mapLimit(next, 8, async (p) => {
      await helperClients.iam.send(new DeleteRoleCommand({ RoleName: p.name }));
    });
    dropped = next;
  };

  const first = await timed(() => handler({}));

  // The floor: the same number of PutObject calls with bodies of the sizes the run wrote,
  // through a client configured exactly like the run's (AwsClients), at the store's
  // concurrency. Each repetition of the floor follows a steady run, so the two see the same
  // machine (its speed drifts by 10-30 % from minute to minute).
  const floorClient = new AwsClients().s3;
  const concurrency = 32; // S3TokenStore.concurrency
  const floorWrites = (bodies: readonly string[], key: (j: number) => string) =>
    mapLimit(
      bodies.map((body, j) => ({ body, j })),
      concurrency,
      async ({ body, j }) => {
        await floorClient.send(
          new PutObjectCommand({ Bucket: FLOOR_BUCKET, Key: key(j), Body: body }),
        );
      },
    );
  const bodiesOf = (sizes: readonly number[]) => sizes.map((size) => 'x'.repeat(size));
  // Warm the floor client's connections as the run's client was warmed by its first run.
  await floorWrites(bodiesOf(counter.documentBytes.slice(0, concurrency)), () => 'warm');

  const runs: RunSample[] = [];
  const floorSamples: number[] = [];
  const server = options.server;
  const serverCpu = { runs: [] as number[], floors: [] as number[] };
  let serverRead = server !== undefined;
  /** Runs `step`, adding moto's CPU time during it to `into` while every reading succeeds. */
  const onServer = async <T>(into: number[], step: () => Promise<T>): Promise<T> => {
    const before = server && cpuMs(server);
    const value = await step();
    const after = server && cpuMs(server);
    if (before === undefined || after === undefined) serverRead = false;
    else into.push(after - before);
    return value;
  };
  let documentBytes: number[] = [];
  let tokenBytes: number[] = [];
  let maxRssKiB = 0;
  for (let i = 0; i < options.reps; i++) {
    await dropRoles(i);
    runs.push(await onServer(serverCpu.runs, () => timed(() => handler({}))));
    documentBytes = counter.documentBytes;
    tokenBytes = counter.tokenBytes;
    // The runs' peak, before the last floor (a floor holds less than a run).
    if (i === options.reps - 1) maxRssKiB = process.resourceUsage().maxRSS;
    const bodies = bodiesOf(documentBytes);
    gc();
    await onServer(serverCpu.floors, async () => {
      const t0 = performance.now();
      await floorWrites(bodies, (j) => `tokens/${j}.json`);
      floorSamples.push(performance.now() - t0);
    });
  }

  await dropRoles(-1); // IAM as the setup left it
  const policy = await helper.send(new GetBucketPolicyCommand({ Bucket: TOKEN_BUCKET }));
  const listed = await helper.send(
    new ListObjectsV2Command({ Bucket: TOKEN_BUCKET, Prefix: 'trust/' }),
  );
  if (!listed.Contents?.length) throw new Error('e2e: the run published no trust bundle');

  let direct: RunSample | undefined;
  if (options.direct) {
    const directHandler = quietHandler(aws, { ...settings, signingMode: 'direct' });
    direct = await timed(() => directHandler({}));
  }

  const total = documentBytes.reduce((a, b) => a + b, 0);
  return {
    first,
    runs,
    runMs: median(runs.map((r) => r.ms)),
    floorSamples,
    floorMs: median(floorSamples),
    documentBytes: {
      p50: percentile(documentBytes, 50),
      max: percentile(documentBytes, 100),
      total,
    },
    tokenBytes: { p50: percentile(tokenBytes, 50), max: percentile(tokenBytes, 100) },
    policyBytes: Buffer.byteLength(policy.Policy ?? ''),
    stale,
    maxRssKiB,
    baselineRssKiB,
    ...(direct ? { direct } : {}),
    ...(serverRead ? { serverCpu } : {}),
  };
}
