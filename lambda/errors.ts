/**
 * Every error regtoken raises on purpose. Each class sets `name`, carries a stable `code` that
 * scripts and tests may rely on, and keeps the underlying error in `cause`. Every one describes
 * bad input, a missing precondition or a failed run: the CLI prints its message as one line and
 * never a stack trace (anything else is an unexpected error). Messages never contain a token or
 * key material.
 */

/** Stable error codes, each documented in docs/cli.md ("Error codes"; a test keeps them in step). */
export const ERROR_CODES = [
  'USAGE',
  'CONFIG_INVALID',
  'INPUT_INVALID',
  'NOT_FOUND',
  'SIGNING_KEY',
  'STORE',
  'RUN_INCOMPLETE',
  'LEASE_EXPIRED',
  'ENV_MISSING',
  'NO_CREDENTIALS',
  'ACCESS_DENIED',
  'NO_TOKEN',
  'TOKEN_EXPIRED',
  'CLOCK_SKEW',
  'UNKNOWN_REGISTRY',
  'IDENTITY_UNSUPPORTED',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class: an error regtoken knows how to explain. */
export class RegtokenError extends Error {
  override readonly name: string = 'RegtokenError';
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Wrong command-line usage: unknown flag, missing argument. Exit code 2. */
export class UsageError extends RegtokenError {
  override readonly name = 'UsageError';
  override readonly exitCode = 2;
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** One problem in a grants file, located by its YAML node. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** Formats an issue as `file:line:col: message`, the form editors and CI annotations parse. */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.message}`;
}

/** A grants file failed to parse or validate; `issues` holds every problem found, not just the first. */
export class ConfigError extends RegtokenError {
  override readonly name = 'ConfigError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super('CONFIG_INVALID', issues.map(formatIssue).join('\n'));
  }
}

/** Bad input other than the grants file: an unreadable file, a malformed inventory, a bad URL. */
export class InputError extends RegtokenError {
  override readonly name = 'InputError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('INPUT_INVALID', message, options);
  }
}

/** A file or object that must exist does not. */
export class NotFoundError extends RegtokenError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

/** The signing key could not be read, created or used. */
export class SigningKeyError extends RegtokenError {
  override readonly name = 'SigningKeyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('SIGNING_KEY', message, options);
  }
}

/** Reading or writing a store (folder, bucket) failed. */
export class StoreError extends RegtokenError {
  override readonly name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE', message, options);
  }
}

/** A mint run finished but some principals did not get a fresh token. */
export class RunIncompleteError extends RegtokenError {
  override readonly name = 'RunIncompleteError';
  constructor(
    message: string,
    readonly failed: readonly string[],
  ) {
    super('RUN_INCOMPLETE', message);
  }
}

/**
 * This run's lease on the run lock is ending (or was released), so it may not start another
 * write: another run may already hold the lock (docs/aws.md, "Overlapping runs").
 */
export class LeaseExpiredError extends RegtokenError {
  override readonly name = 'LeaseExpiredError';
  constructor(message: string) {
    super('LEASE_EXPIRED', message);
  }
}

/** A required environment variable is missing or malformed. */
export class EnvError extends RegtokenError {
  override readonly name = 'EnvError';
  constructor(message: string) {
    super('ENV_MISSING', message);
  }
}

/** No usable AWS credentials: none found, rejected by AWS, or an expired session. */
export class NoCredentialsError extends RegtokenError {
  override readonly name = 'NoCredentialsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_CREDENTIALS', message, options);
  }
}

/** The caller may not read what it asked for (not granted, or no identity policy). */
export class AccessDeniedError extends RegtokenError {
  override readonly name = 'AccessDeniedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ACCESS_DENIED', message, options);
  }
}

/** The caller has no token (yet) at the token location. */
export class NoTokenError extends RegtokenError {
  override readonly name = 'NoTokenError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_TOKEN', message, options);
  }
}

/** The caller's token has expired (by AWS's clock too): the minter has not replaced it. */
export class TokenExpiredError extends RegtokenError {
  override readonly name = 'TokenExpiredError';
  constructor(message: string) {
    super('TOKEN_EXPIRED', message);
  }
}

/** This machine's clock is too far off for the token's validity to be judged or used. */
export class ClockSkewError extends RegtokenError {
  override readonly name = 'ClockSkewError';
  constructor(message: string) {
    super('CLOCK_SKEW', message);
  }
}

/** The caller's token is for another registry host than the one it asked for. */
export class UnknownRegistryError extends RegtokenError {
  override readonly name = 'UnknownRegistryError';
  constructor(message: string) {
    super('UNKNOWN_REGISTRY', message);
  }
}

/** The caller's AWS identity cannot own a token (root user, federated user, not IAM). */
export class UnsupportedIdentityError extends RegtokenError {
  override readonly name = 'UnsupportedIdentityError';
  constructor(message: string) {
    super('IDENTITY_UNSUPPORTED', message);
  }
}
