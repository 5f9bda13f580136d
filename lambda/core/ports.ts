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
  /** The trust bundle as last published, if any. */
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
   * access control is not policy-based (a local folder) leave it out.
   */
  applyReadPolicy?(readerAccounts: readonly string[]): Promise<void>;
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
}

/** Keeps two runs from writing the same store at once (see docs/aws.md, "Overlapping runs"). */
export interface RunLock {
  /** Takes the lock; undefined when another live run holds it. */
  acquire(): Promise<RunLease | undefined>;
  /** Gives the lock back (only if still ours); the lease's writes end here. */
  release(): Promise<void>;
}

/** A signing key ready for one run. */
export interface SigningKey extends TokenSigner {
  /** Trust material matching this key, to publish for the registry. */
  readonly trust: TrustMaterial;
  /** A short description for logs and output (never key material). */
  readonly description: string;
}

/**
 * Produces the signing key for a run. `notAfter` is the latest expiry of any token the run will
 * sign, so a per-run certificate can cover them all; `publishedBundle` lets a signer keep a
 * certificate that is already trusted instead of making a new one.
 */
export interface Signer {
  prepare(window: {
    readonly now: Date;
    readonly notAfter: Date;
    readonly publishedBundle: string | undefined;
  }): Promise<SigningKey>;
}

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
