/**
 * Turns settings (flags or environment) into a wired mint run. The CLI and the Lambda handler
 * both call {@link runMint}; they differ only in where the settings come from and how results
 * are reported. Adapters are chosen by location: `s3://` → S3, `kms:` → AWS KMS, anything else
 * → the local filesystem and a PEM file.
 */

import type { AwsClients } from './adapters/aws.js';
import { FileConfigSource, FileInventory, FileTokenStore } from './adapters/filesystem.js';
import type { KmsSigningMode } from './adapters/kms.js';
import { PemSigner } from './adapters/pem-signer.js';
import { isS3Url } from './adapters/s3/url.js';
import { LeaseFence } from './core/lease.js';
import { readSchedule } from './core/lifetime.js';
import type {
  ConfigSource,
  Logger,
  Metrics,
  PrincipalDirectory,
  RepositoryInventory,
  Signer,
  TokenStore,
  TransferableLock,
} from './core/ports.js';
import { quote } from './core/text.js';
import { EnvError, UsageError } from './errors.js';
import { type ExclusiveResult, type MintDeps, mint, mintExclusive } from './mint.js';
import { GrantsCache } from './steps/plan.js';

/**
 * The adapters a run builds on AWS (lambda/run-aws.ts). They are handed over by the entry point
 * in {@link RunContext.aws}, not imported here: the Lambda handlers import them, the CLI loads
 * them only when a location is on AWS, so that a local `regtoken mint` never loads the AWS SDK.
 */
export interface AwsAdapters {
  s3ConfigSource(location: string, aws: AwsClients): ConfigSource;
  s3Inventory(location: string, aws: AwsClients): RepositoryInventory;
  kmsSigner(
    aws: AwsClients,
    keyId: string,
    mode: KmsSigningMode,
    trustedKeys: readonly string[],
  ): Signer;
  iamDirectory(aws: AwsClients): PrincipalDirectory;
  s3Store(
    settings: Pick<RunSettings, 'out' | 'minterArns'>,
    aws: AwsClients,
    fence: LeaseFence,
  ): TokenStore;
  runLock(
    settings: Pick<RunSettings, 'out' | 'lockLease'>,
    aws: AwsClients,
    fence: LeaseFence,
    owner?: string,
  ): TransferableLock;
}

/** A run's way to AWS: the SDK clients and the adapters built on them (run-aws.ts `awsSide`). */
export interface AwsSide {
  readonly clients: AwsClients;
  readonly adapters: AwsAdapters;
}

/** Where the local signing key lives when none is given: created there on first run. */
export const DEFAULT_SIGNING_KEY = '.regtoken/signing-key.pem';

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
  /** How the run reaches AWS; needed only when a location is `s3://` or `kms:`. */
  readonly aws?: AwsSide;
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

/** Whether any location of these settings is on AWS (`s3://`, `kms:`): the run needs an AwsSide. */
export function usesAws(
  settings: Partial<Pick<RunSettings, 'config' | 'out' | 'repositories' | 'signingKey'>>,
): boolean {
  const { config, out, repositories, signingKey } = settings;
  return (
    [config, out, repositories].some((l) => l !== undefined && isS3Url(l)) ||
    Boolean(signingKey?.startsWith('kms:'))
  );
}

/** The AWS side for `location`, or an error naming it when the caller wired none. */
function needAws(aws: AwsSide | undefined, location: string): AwsSide {
  if (!aws) throw new Error(`${location} is on AWS, but this run was wired without AWS`);
  return aws;
}

/** The grants source at `location`: a file, or an S3 object. */
export function configSource(location: string, aws: AwsSide | undefined): ConfigSource {
  if (!isS3Url(location)) return new FileConfigSource(location);
  const { adapters, clients } = needAws(aws, location);
  return adapters.s3ConfigSource(location, clients);
}

/** The repository list at `location`: a file, or the registry's S3 storage. */
export function inventory(location: string, aws: AwsSide | undefined): RepositoryInventory {
  if (!isS3Url(location)) return new FileInventory(location);
  const { adapters, clients } = needAws(aws, location);
  return adapters.s3Inventory(location, clients);
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
    const { adapters, clients } = needAws(ctx.aws, key);
    return adapters.kmsSigner(clients, keyId, mode as KmsSigningMode, settings.trustedKeys);
  }
  if (key === undefined)
    return new PemSigner(
      DEFAULT_SIGNING_KEY,
      ctx.onKeyCreated ? { create: true, onCreate: ctx.onKeyCreated } : { create: true },
    );
  return new PemSigner(key, { create: false });
}

/** Builds the ports for a run. Throws a user-facing error for bad settings, before any I/O. */
export function wire(
  settings: RunSettings,
  ctx: RunContext,
): {
  deps: MintDeps;
  lock?: TransferableLock;
} {
  const aws = usesAws(settings) ? needAws(ctx.aws, 'a location') : undefined;
  const onS3 = isS3Url(settings.out);
  // Into S3, every write of the store checks the run's lease (lambda/core/lease.ts).
  const fence = new LeaseFence();
  const s3 = onS3 && aws ? aws : undefined;
  const deps: MintDeps = {
    config: configSource(settings.config, aws),
    store: s3 ? s3.adapters.s3Store(settings, s3.clients, fence) : new FileTokenStore(settings.out),
    signer: signer(settings, ctx),
    inventory: settings.repositories ? inventory(settings.repositories, aws) : undefined,
    // Principals are checked against IAM only when minting into AWS.
    principals: s3 ? s3.adapters.iamDirectory(s3.clients) : undefined,
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
  if (!s3) return { deps };
  return { deps, lock: s3.adapters.runLock(settings, s3.clients, fence, ctx.lockOwner) };
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
