/**
 * Turns settings (flags or environment) into a wired mint run. The CLI and the Lambda handler
 * both call {@link runMint}; they differ only in where the settings come from and how results
 * are reported. Adapters are chosen by location: `s3://` → S3, `kms:` → AWS KMS, anything else
 * → the local filesystem and a PEM file.
 */

import { randomUUID } from 'node:crypto';
import type { AwsClients } from './adapters/aws.js';
import { FileConfigSource, FileInventory, FileTokenStore } from './adapters/filesystem.js';
import { IamPrincipalDirectory } from './adapters/iam.js';
import { KmsSigner, type KmsSigningMode } from './adapters/kms.js';
import { PemSigner } from './adapters/pem-signer.js';
import { S3ConfigSource } from './adapters/s3/config-source.js';
import { S3Inventory } from './adapters/s3/inventory.js';
import { S3RunLock } from './adapters/s3/run-lock.js';
import { isS3Url, parseS3Url } from './adapters/s3/shared.js';
import { S3TokenStore } from './adapters/s3/token-store.js';
import { StsCallerIdentity } from './adapters/sts.js';
import { parseDuration } from './core/duration.js';
import { LeaseFence, leaseMarginMs } from './core/lease.js';
import { readSchedule } from './core/lifetime.js';
import { storePrefixProblem } from './core/policy.js';
import type { ConfigSource, Logger, Metrics, Signer, TokenStore } from './core/ports.js';
import { parsePrincipal } from './core/principal.js';
import { quote } from './core/text.js';
import { EnvError, InputError, UsageError } from './errors.js';
import { type ExclusiveResult, type MintDeps, mint, mintExclusive } from './mint.js';
import { GrantsCache } from './steps/plan.js';

/** Where the local signing key lives when none is given: created there on first run. */
export const DEFAULT_SIGNING_KEY = '.regtoken/signing-key.pem';
/** Default run-lock lease: the longest a Lambda function can run. */
export const DEFAULT_LOCK_LEASE_SECONDS = 15 * 60;

/** Everything a mint run needs to know, whichever entry point gathered it. */
export interface RunSettings {
  readonly config: string;
  readonly out: string;
  /** A PEM path, `kms:KEY_ID_OR_ALIAS`, or undefined for the default local key. */
  readonly signingKey: string | undefined;
  readonly repositories: string | undefined;
  readonly minterArns: readonly string[];
  readonly trustedKeys: readonly string[];
  readonly signingMode: string | undefined;
  readonly lockLease: string | undefined;
  /** How often tokens are re-minted (`1h`): lifetimes shorter than two periods are warned about. */
  readonly schedule?: string | undefined;
  /** The margin on top of two periods (`5m` when not given). */
  readonly lifetimeMargin?: string | undefined;
}

export interface RunContext {
  readonly aws: AwsClients;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called when the default local signing key had to be created. */
  readonly onKeyCreated?: (path: string) => void;
  /**
   * The clock tokens are stamped with; set by tests only. Default: this machine's clock for a
   * local folder, AWS's (the run lock's) for S3, whatever this machine's clock says.
   */
  readonly clock?: () => Date;
  /**
   * The grants model kept between runs by a long-lived caller (a warm Lambda container); a run
   * without one gets its own, which still spares the second parse of a locked run.
   */
  readonly grantsCache?: GrantsCache;
  /** Who holds the run lock: a new owner per run unless given (a fanned-out run's execution). */
  readonly lockOwner?: string;
}

export function configSource(location: string, aws: AwsClients): ConfigSource {
  return isS3Url(location)
    ? new S3ConfigSource(aws.s3, parseS3Url(location, 'object'))
    : new FileConfigSource(location);
}

export function inventory(location: string, aws: AwsClients) {
  return isS3Url(location)
    ? new S3Inventory(aws.s3, parseS3Url(location, 'prefix'))
    : new FileInventory(location);
}

/** The signer these settings name: a KMS key (`kms:…`) or a PEM file (the default one if none). */
export function signer(
  settings: Pick<RunSettings, 'signingKey' | 'signingMode' | 'trustedKeys'>,
  ctx: RunContext,
): Signer {
  const key = settings.signingKey;
  if (key?.startsWith('kms:')) {
    const mode = settings.signingMode ?? 'certificate';
    if (mode !== 'certificate' && mode !== 'direct')
      throw new EnvError(
        `REGTOKEN_SIGNING_MODE is ${quote(mode)}: use certificate (the default) or direct`,
      );
    const keyId = key.slice('kms:'.length);
    if (!keyId)
      throw new UsageError('--signing-key kms: needs a key id, ARN or alias (kms:alias/NAME)');
    return new KmsSigner(ctx.aws.kms, keyId, {
      mode: mode as KmsSigningMode,
      trustedKeyIds: settings.trustedKeys.map((k) => k.replace(/^kms:/, '')),
    });
  }
  if (key === undefined)
    return new PemSigner(
      DEFAULT_SIGNING_KEY,
      ctx.onKeyCreated ? { create: true, onCreate: ctx.onKeyCreated } : { create: true },
    );
  return new PemSigner(key, { create: false });
}

/** The lease, checked against the margin it must keep free of writes. */
function leaseMs(settings: Pick<RunSettings, 'lockLease'>, marginMs: number): number {
  if (settings.lockLease === undefined) return DEFAULT_LOCK_LEASE_SECONDS * 1000;
  const seconds = parseDuration(settings.lockLease);
  if (!seconds)
    throw new EnvError(
      `REGTOKEN_LOCK_LEASE is ${quote(settings.lockLease)}: write a duration like 15m`,
    );
  // The last `marginMs` of a lease are kept free of writes: a shorter lease than twice that
  // leaves a run too little time to write.
  if (seconds * 1000 < 2 * marginMs)
    throw new EnvError(
      `REGTOKEN_LOCK_LEASE is ${quote(settings.lockLease)}: at least ${(2 * marginMs) / 1000}s, since a run stops writing ${marginMs / 1000}s before its lease ends`,
    );
  return seconds * 1000;
}

/** The S3 store with its bucket-policy settings; REGTOKEN_MINTER_ARNS is required there. */
export function s3Store(
  settings: Pick<RunSettings, 'out' | 'minterArns'>,
  aws: AwsClients,
  fence: LeaseFence,
): S3TokenStore {
  if (settings.minterArns.length === 0)
    throw new EnvError(
      'REGTOKEN_MINTER_ARNS is not set: the IAM roles or users (comma-separated ARNs) allowed to write the token bucket; regtoken writes the bucket policy that keeps each token readable by its owner only',
    );
  const partitions = new Set<string>();
  for (const arn of settings.minterArns) {
    const p = parsePrincipal(arn);
    if (!p.ok) throw new EnvError(`REGTOKEN_MINTER_ARNS: ${p.reason}`);
    partitions.add(p.value.partition);
  }
  const [partition, ...more] = [...partitions];
  if (!partition || more.length)
    throw new EnvError('REGTOKEN_MINTER_ARNS: all minters must be in the same partition');
  const at = parseS3Url(settings.out, 'prefix');
  const prefixProblem = storePrefixProblem(at.key);
  if (prefixProblem) throw new InputError(`${settings.out}: ${prefixProblem}`);
  return new S3TokenStore(aws.s3, at, {
    minterArns: settings.minterArns,
    partition: partition as 'aws',
    fence,
  });
}

/** Builds the ports for a run. Throws a user-facing error for bad settings, before any I/O. */
export function wire(settings: RunSettings, ctx: RunContext): { deps: MintDeps; lock?: S3RunLock } {
  const onS3 = isS3Url(settings.out);
  // Into S3, every write of the store checks the run's lease (lambda/core/lease.ts).
  const fence = new LeaseFence();
  const store: TokenStore = onS3
    ? s3Store(settings, ctx.aws, fence)
    : new FileTokenStore(settings.out);
  const deps: MintDeps = {
    config: configSource(settings.config, ctx.aws),
    store,
    signer: signer(settings, ctx),
    inventory: settings.repositories ? inventory(settings.repositories, ctx.aws) : undefined,
    // Principals are checked against IAM only when minting into AWS.
    principals: onS3
      ? new IamPrincipalDirectory(ctx.aws.iam, new StsCallerIdentity(ctx.aws.sts))
      : undefined,
    logger: ctx.logger,
    metrics: ctx.metrics,
    grantsCache: ctx.grantsCache ?? new GrantsCache(),
    schedule: readSchedule(settings.schedule, settings.lifetimeMargin, (which, message) =>
      which === 'period'
        ? new EnvError(`REGTOKEN_SCHEDULE ${message}`)
        : new EnvError(`REGTOKEN_LIFETIME_MARGIN ${message}`),
    ),
    ...(ctx.clock ? { clock: ctx.clock } : {}),
  };
  if (!onS3) return { deps };
  return { deps, lock: runLock(settings, ctx, fence, ctx.lockOwner) };
}

/**
 * The run lock of an S3 token store, `state/lock.json` under its prefix, arming `fence` while it
 * is held. Its owner is new unless given (a fanned-out run's execution, whose retried plan step
 * takes its own lock again).
 */
export function runLock(
  settings: Pick<RunSettings, 'out' | 'lockLease'>,
  ctx: RunContext,
  fence: LeaseFence,
  owner: string = randomUUID(),
): S3RunLock {
  const at = parseS3Url(settings.out, 'prefix');
  const marginMs = leaseMarginMs(ctx.aws.s3RequestTimeoutMs);
  return new S3RunLock(
    ctx.aws.s3,
    at.bucket,
    at.key ? `${at.key}/state/lock.json` : 'state/lock.json',
    owner,
    { leaseMs: leaseMs(settings, marginMs), marginMs, fence },
  );
}

/**
 * Runs one mint with these settings: under the run lock when minting into S3, directly on a
 * local folder (a single writer by assumption).
 */
export async function runMint(settings: RunSettings, ctx: RunContext): Promise<ExclusiveResult> {
  const { deps, lock } = wire(settings, ctx);
  if (lock) return mintExclusive(deps, lock);
  return { skipped: false, result: await mint(deps), passes: 1 };
}
