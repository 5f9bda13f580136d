/**
 * Where the token endpoint reads the trust bundle, and how it notices a new one. The registry
 * reads its bundle only at start-up; the endpoint must not need a restart, so it polls:
 *
 * - a file: `stat` (modification time, size, inode) every few seconds, read again on a change;
 * - S3 (`s3://TOKEN_BUCKET[/PREFIX]` → `PREFIX/trust/bundle.pem`): a conditional GET
 *   (`If-None-Match` with the last ETag), which costs one small request and no body when
 *   nothing changed.
 *
 * A bundle that cannot be read or parsed after a good one was loaded is logged and ignored:
 * the endpoint keeps verifying with the last good bundle.
 */

import { readFile, stat } from 'node:fs/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../core/ports.js';
import { parseTrustBundle } from '../core/trust.js';
import { TokenVerifier } from '../core/verify.js';
import { InputError, NotFoundError, StoreError } from '../errors.js';
import { awsErrorCode, awsStatus, credentialsError, describeAwsError } from './aws.js';
import { parseS3Url } from './s3/shared.js';

/** A bundle as read: its text, or `unchanged` when it is the version last seen. */
export type TrustRead = { readonly text: string; readonly version: string } | 'unchanged';

/** Reads the trust bundle; `since` is the version last read. */
export interface TrustSource {
  /** A path or URL, for messages. */
  readonly name: string;
  read(since: string | undefined): Promise<TrustRead>;
}

/** The bundle as a local file (e.g. the one the registry reads). */
export class FileTrustSource implements TrustSource {
  constructor(readonly name: string) {}

  async read(since: string | undefined): Promise<TrustRead> {
    try {
      const s = await stat(this.name);
      const version = `${s.ino}:${s.size}:${s.mtimeMs}`;
      if (version === since) return 'unchanged';
      return { text: await readFile(this.name, 'utf8'), version };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new NotFoundError(`${this.name}: no such file`, { cause: err });
      throw new InputError(`${this.name}: cannot read the trust bundle (${code ?? 'error'})`, {
        cause: err,
      });
    }
  }
}

/** The bundle the minter publishes in the token bucket: `PREFIX/trust/bundle.pem`. */
export class S3TrustSource implements TrustSource {
  readonly name: string;
  private readonly bucket: string;
  private readonly key: string;

  constructor(
    private readonly s3: S3Client,
    url: string,
  ) {
    const at = parseS3Url(url, 'prefix');
    this.bucket = at.bucket;
    this.key = at.key ? `${at.key}/trust/bundle.pem` : 'trust/bundle.pem';
    this.name = `s3://${this.bucket}/${this.key}`;
  }

  async read(since: string | undefined): Promise<TrustRead> {
    try {
      const r = await this.s3.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          ...(since ? { IfNoneMatch: since } : {}),
        }),
      );
      const text = (await r.Body?.transformToString('utf8')) ?? '';
      return { text, version: r.ETag ?? text.length.toString() };
    } catch (err) {
      if (awsStatus(err) === 304 || awsErrorCode(err) === 'NotModified') return 'unchanged';
      const credentials = credentialsError(err);
      if (credentials) throw credentials;
      if (awsErrorCode(err) === 'NoSuchKey')
        throw new NotFoundError(
          `${this.name}: no trust bundle yet (the minter publishes it on its first run)`,
          { cause: err },
        );
      throw new StoreError(describeAwsError(err, this.name), { cause: err });
    }
  }
}

/**
 * The current verifier, rebuilt whenever the bundle changes. {@link load} must succeed once
 * (a bad start is an error the operator sees); later failures keep the last good bundle.
 */
export class TrustCache {
  private verifierNow: TokenVerifier | undefined;
  private version: string | undefined;
  private checkedAt = 0;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly source: TrustSource,
    private readonly options: {
      /** How often to look for a new bundle, in milliseconds. */
      readonly refreshMs: number;
      readonly logger: Logger;
      readonly clock?: () => number;
    },
  ) {}

  /** The verifier for the current bundle; undefined until a bundle was loaded. */
  get current(): TokenVerifier | undefined {
    return this.verifierNow;
  }

  /** Loads the bundle now; throws a one-line error when it cannot be read or parsed. */
  async load(): Promise<TokenVerifier> {
    await this.poll(true);
    if (!this.verifierNow) throw new InputError(`${this.source.name}: no trust bundle loaded`);
    return this.verifierNow;
  }

  /** Looks for a new bundle if the last look is older than `refreshMs`; never throws. */
  async refreshIfStale(): Promise<TokenVerifier | undefined> {
    const now = (this.options.clock ?? Date.now)();
    if (now - this.checkedAt >= this.options.refreshMs) {
      this.inFlight ??= this.poll(false).finally(() => {
        this.inFlight = undefined;
      });
      await this.inFlight;
    }
    return this.verifierNow;
  }

  private async poll(strict: boolean): Promise<void> {
    this.checkedAt = (this.options.clock ?? Date.now)();
    try {
      const read = await this.source.read(this.verifierNow ? this.version : undefined);
      if (read === 'unchanged') return;
      let anchors: ReturnType<typeof parseTrustBundle>;
      try {
        anchors = parseTrustBundle(read.text, this.source.name);
      } catch (err) {
        throw new InputError((err as Error).message, { cause: err });
      }
      const previous = this.verifierNow?.trust.fingerprint;
      this.version = read.version;
      // The same text again (a touched file): keep the verifier and its cache of chains.
      if (previous === anchors.fingerprint) return;
      this.verifierNow = new TokenVerifier(anchors);
      this.options.logger.info('trust bundle loaded', {
        source: this.source.name,
        roots: anchors.roots.length,
        fingerprint: anchors.fingerprint,
        ...(previous ? { previous } : {}),
      });
    } catch (err) {
      if (strict || !this.verifierNow) {
        if (strict) throw err;
        this.options.logger.error('trust bundle not loaded', { error: (err as Error).message });
        return;
      }
      this.options.logger.warn('trust bundle not reloaded; keeping the last good one', {
        error: (err as Error).message,
      });
    }
  }
}
