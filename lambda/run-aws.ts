/**
 * The AWS side of wiring a run (lambda/run.ts): the S3, KMS, IAM and STS adapters, built from
 * the settings. Entry points that run on AWS (the Lambda handlers) import it; the CLI loads it
 * only when a location is `s3://` or `kms:`, so that a local `regtoken mint` never loads the
 * AWS SDK (docs/performance.md, "Local mint").
 */

import { randomUUID } from 'node:crypto';
import { AwsClients } from './adapters/aws.js';
import { IamPrincipalDirectory } from './adapters/iam.js';
import { KmsSigner, type KmsSigningMode } from './adapters/kms.js';
import { S3ConfigSource } from './adapters/s3/config-source.js';
import { S3Inventory } from './adapters/s3/inventory.js';
import { S3RunLock } from './adapters/s3/run-lock.js';
import { S3TokenStore } from './adapters/s3/token-store.js';
import { parseS3Url } from './adapters/s3/url.js';
import { StsCallerIdentity } from './adapters/sts.js';
import { parseDuration } from './core/duration.js';
import { type LeaseFence, leaseMarginMs } from './core/lease.js';
import { storePrefixProblem } from './core/policy.js';
import type { PrincipalDirectory } from './core/ports.js';
import { parsePrincipal } from './core/principal.js';
import { quote } from './core/text.js';
import { EnvError, InputError } from './errors.js';
import type { AwsSide, RunSettings } from './run.js';

/** Default run-lock lease: the longest a Lambda function can run. */
export const DEFAULT_LOCK_LEASE_SECONDS = 15 * 60;

/** The grants object at an `s3://` URL. */
function s3ConfigSource(location: string, aws: AwsClients): S3ConfigSource {
  return new S3ConfigSource(aws.s3, parseS3Url(location, 'object'));
}

/** The registry's S3 storage at an `s3://` prefix. */
function s3Inventory(location: string, aws: AwsClients): S3Inventory {
  return new S3Inventory(aws.s3, parseS3Url(location, 'prefix'));
}

/** A KMS key (id, ARN or alias) as the run's signer. */
function kmsSigner(
  aws: AwsClients,
  keyId: string,
  mode: KmsSigningMode,
  trustedKeys: readonly string[],
): KmsSigner {
  return new KmsSigner(aws.kms, keyId, {
    mode,
    trustedKeyIds: trustedKeys.map((k) => k.replace(/^kms:/, '')),
  });
}

/** Principals checked against the IAM of the minter's own account. */
function iamDirectory(aws: AwsClients): PrincipalDirectory {
  return new IamPrincipalDirectory(aws.iam, new StsCallerIdentity(aws.sts));
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

/**
 * The run lock of an S3 token store, `state/lock.json` under its prefix, arming `fence` while it
 * is held. Its owner is new unless given (a fanned-out run's execution, whose retried plan step
 * takes its own lock again).
 */
export function runLock(
  settings: Pick<RunSettings, 'out' | 'lockLease'>,
  aws: AwsClients,
  fence: LeaseFence,
  owner: string = randomUUID(),
): S3RunLock {
  const at = parseS3Url(settings.out, 'prefix');
  const marginMs = leaseMarginMs(aws.s3RequestTimeoutMs);
  return new S3RunLock(
    aws.s3,
    at.bucket,
    at.key ? `${at.key}/state/lock.json` : 'state/lock.json',
    owner,
    { leaseMs: leaseMs(settings, marginMs), marginMs, fence },
  );
}

/** What lambda/run.ts builds on AWS, given the clients. */
const ADAPTERS = { s3ConfigSource, s3Inventory, kmsSigner, iamDirectory, s3Store, runLock };
export type AwsAdapters = typeof ADAPTERS;

/** A run's AWS side: these clients (new ones unless given) and the adapters built on them. */
export function awsSide(clients: AwsClients = new AwsClients()): AwsSide {
  return { clients, adapters: ADAPTERS };
}
