/**
 * The ports between the pure core and the outside world. Adapters implement them: the
 * filesystem (the embedded default), S3, KMS, IAM. The mint run ({@link ../mint.ts}) talks only
 * to these interfaces, so the CLI and the Lambda handler run the same code with different adapters.
 */

import type { JWK } from 'jose';
import type { ResourceAccess } from './grants.js';
import type { Principal } from './principal.js';
import type { TokenSigner } from './token.js';

/** Where the grants file comes from. */
export interface ConfigSource {
  /** Name used in messages: a path or an `s3://` URL. */
  readonly name: string;
  /** Reads the file. `version` identifies what was read (S3 version id or ETag) for the logs. */
  read(): Promise<{ text: string; version?: string }>;
  /** The version a read would return now, without reading the body (undefined: unknown). */
  currentVersion?(): Promise<string | undefined>;
}

/** The repositories that exist, for expanding wildcard patterns. */
export interface RepositoryInventory {
  readonly name: string;
  list(): Promise<string[]>;
}

/** The document stored for each principal (docs/tokens.md). */
export interface TokenDocument {
  readonly principal: string;
  readonly registry: string;
  readonly token: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly access: readonly ResourceAccess[];
}

/** What the registry needs to verify tokens. */
export interface TrustMaterial {
  /** PEM certificates for the registry's `auth.token.rootcertbundle`. */
  readonly bundlePem: string;
  /** The same keys as a JWKS (registry v3 `auth.token.jwks`, other verifiers). */
  readonly jwks: { readonly keys: readonly JWK[] };
}

/** Where tokens and the trust bundle are written. Keys are relative (`tokens/…`). */
export interface TokenStore {
  /** How to show a key to a user: a path or an `s3://` URL. */
  locate(key: string): string;
  /** How many writes may run at once. */
  readonly concurrency: number;
  /** Keys of every token stored: keys of a token's shape (`isTokenKey` in principal.ts). */
  listTokenKeys(): Promise<string[]>;
  /** Writes one principal's token document; the owner controls who may read it. */
  putToken(key: string, doc: TokenDocument, owner: Principal): Promise<void>;
  /**
   * Deletes the token document at `key`. Returns false, leaving it alone, when what is there is
   * not a token document regtoken wrote for that key (a store anyone can write, such as a local
   * folder, checks the content first).
   */
  deleteToken(key: string): Promise<boolean>;
  /**
   * The trust bundle as last published, if any. A run's plan reads it once, under the run lock,
   * before it publishes: a store may read beside it what publishing and the read policy need
   * later in the same run (S3 does).
   */
  readTrustBundle(): Promise<string | undefined>;
  /** Publishes the trust material; returns where the bundle and JWKS are. */
  publishTrust(trust: TrustMaterial): Promise<{ bundle: string; jwks: string }>;
  /**
   * Checks, before the run takes its lock or writes anything, that it may write here at all
   * (on S3: the bucket serves no other token store); throws a user-facing error otherwise.
   */
  claim?(): Promise<void>;
  /**
   * Makes each token readable by its owner only, for owners in these accounts. Stores whose
   * access control is not policy-based (a local folder) leave it out. Resolves to the accounts
   * it had to leave out because the store refuses them (an account S3 cannot resolve).
   */
  applyReadPolicy?(readerAccounts: readonly string[]): Promise<readonly string[]>;
}

/** Which configured principals exist, as far as the caller can tell. */
export interface PrincipalCheck {
  /** Principals known not to exist (or spelled differently in IAM): they get no token. */
  readonly unknown: readonly { readonly principal: Principal; readonly reason: string }[];
  /** Principals that could not be checked (other accounts): they get a token. */
  readonly unverified: readonly Principal[];
}

/** Checks configured principals against IAM. */
export interface PrincipalDirectory {
  check(principals: readonly Principal[]): Promise<PrincipalCheck>;
}

/**
 * A lease on the run lock, held by this run. Its clock is AWS's (docs/aws.md, "Overlapping
 * runs"): everything the run stamps uses {@link RunLease.now}.
 */
export interface RunLease {
  /** AWS's time now, as far as the lock's answers tell. */
  now(): Date;
  /** Throws LeaseExpiredError when a write started now could outlive the lease. */
  check(): void;
  /**
   * True when this process took the lock it gave back itself, untouched since: no other run
   * has held it in between, so nothing a run writes under the lock has changed since this
   * process's last run (docs/aws.md, "Overlapping runs").
   */
  readonly sinceOwnRelease?: boolean;
  /**
   * What this process's last run left with the lock ({@link RunLock.release}); only with
   * {@link sinceOwnRelease}, so it still describes the store.
   */
  readonly note?: ReleaseNote;
}

/**
 * What a run that ends cleanly leaves with the lock for the next run of the same process. Only
 * the minters write the token bucket, and only under the lock, so while no other run takes the
 * lock this stays true (docs/aws.md, "Nothing lost, nothing stale").
 */
export interface ReleaseNote {
  /**
   * Every token key the store may hold as the run leaves it: the keys it found, plus the ones it
   * wrote or tried to write, less the ones it removed.
   */
  readonly storedTokens: readonly string[];
}

/** Keeps two runs from writing the same store at once (see docs/aws.md, "Overlapping runs"). */
export interface RunLock {
  /** Takes the lock; undefined when another live run holds it. */
  acquire(): Promise<RunLease | undefined>;
  /**
   * Gives the lock back (only if still ours); the lease's writes end here. A `note` is handed to
   * the next run of this process that takes the lock untouched ({@link RunLease.note}).
   */
  release(note?: ReleaseNote): Promise<void>;
}

/** A lease whose end other processes of the same run can count to (a fanned-out run). */
export interface HandedLease extends RunLease {
  /** AWS's time (ms since the epoch) from which no write of the run may start. */
  writesEndAt(): number;
}

/**
 * A run lock whose holding passes from one process of a run to others: the plan step of a
 * fanned-out run takes it, each worker and the finish step (other Lambda invocations) join its
 * lease, and the finish step releases it.
 */
export interface TransferableLock extends RunLock {
  acquire(): Promise<HandedLease | undefined>;
  /** What identifies this holding (the lock object's ETag) while the lock is held. */
  readonly heldTag: string | undefined;
  /**
   * Joins the lease of the holding `tag` for this process's writes, until `writesEndAt`; throws
   * LeaseExpiredError when the lock is no longer that holding (released or taken over).
   */
  join(tag: string, writesEndAt: number): Promise<RunLease>;
  /** Holds the lock another process of this run took, given its {@link heldTag}, to release it. */
  adopt(tag: string): void;
}

/** A signing key ready for one run. */
export interface SigningKey extends TokenSigner {
  /** Trust material matching this key, to publish for the registry. */
  readonly trust: TrustMaterial;
  /** A short description for logs and output (never key material). */
  readonly description: string;
  /**
   * The signing root's certificate: whole days until the newest one expires (a metric the
   * stack alarms on a year ahead), and warnings about the run's root certificates.
   */
  readonly root?: { readonly daysLeft: number; readonly notes: readonly string[] };
}

/**
 * Produces the signing key for a run. `notAfter` is the latest expiry of any token the run will
 * sign, so a per-run certificate can cover them all; `publishedBundle` lets a signer keep a
 * certificate that is already trusted instead of making a new one. It may still be on its way
 * (a promise), so a signer can start what does not need it (the run's certificate under a
 * known root) while the store reads it.
 */
export interface Signer {
  prepare(window: {
    readonly now: Date;
    readonly notAfter: Date;
    readonly publishedBundle: PublishedBundle;
  }): Promise<SigningKey>;
}

/** The trust bundle as published (undefined: none yet), or a read of it still under way. */
export type PublishedBundle = string | undefined | PromiseLike<string | undefined>;

/** Structured log events (Powertools Logger has this shape). Never pass a token or key. */
export interface Logger {
  debug(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/** Counters for dashboards and alarms. */
export interface Metrics {
  count(name: string, value: number): void;
  /** Milliseconds, e.g. the run's duration. */
  duration(name: string, ms: number): void;
  /** Context attached to the metrics record (not a dimension), e.g. the config version. */
  metadata(key: string, value: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export const noMetrics: Metrics = { count() {}, duration() {}, metadata() {} };

/**
 * The working files of a fanned-out run, in one folder per run (`state/runs/RUN/` of the token
 * bucket): the plan step writes the shards, the plan summary and the manifest; each worker
 * reads its shard and writes its result; the finish step reads the results and removes the
 * folder. Bodies are JSON.
 */
export interface RunFiles {
  /** Writes `name` in the run's folder and returns its key in the bucket (what the workflow reads). */
  write(run: string, name: string, body: unknown): Promise<string>;
  /** Reads `name` from the run's folder; undefined when it does not exist. */
  read(run: string, name: string): Promise<unknown>;
  /** Deletes these files of the run's folder (names that do not exist are ignored). */
  remove(run: string, names: readonly string[]): Promise<void>;
  /** How to show a file to a user: an `s3://` URL. */
  locate(run: string, name: string): string;
}

/** A signing root as plain data: what a worker in another process needs to certify its own key. */
export interface SignerRoot {
  /** The root's key (a KMS key ID or ARN). */
  readonly keyId: string;
  /** Its public key, DER SubjectPublicKeyInfo in base64. */
  readonly publicKey: string;
}

/**
 * A {@link Signer} whose per-run key can be made apart from the trust material, in another
 * process (a fanned-out run): the plan step publishes the trust material and hands the root on;
 * each worker certifies an ephemeral key of its own under it.
 */
export interface RootedSigner extends Signer {
  /** The trust material and the root, without a per-run key (the leaf certificate is not signed). */
  prepareRoot(window: { readonly now: Date; readonly publishedBundle: PublishedBundle }): Promise<{
    readonly trust: TrustMaterial;
    readonly root: SignerRoot;
    /** The signing root's certificate status, as {@link SigningKey.root}. */
    readonly rootStatus?: SigningKey['root'];
    readonly description: string;
  }>;
  /** A new key certified under `root`, valid from `now` until `notAfter`. */
  certify(
    root: SignerRoot,
    window: { readonly now: Date; readonly notAfter: Date },
  ): Promise<SigningKey>;
}
