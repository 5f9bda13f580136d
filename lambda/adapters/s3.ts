/**
 * S3 adapters: the grants object in the config bucket, tokens and trust material in the token
 * bucket, the registry's own storage as repository inventory, and the run lock.
 *
 * Token bucket layout under PREFIX (docs/aws.md):
 *   tokens/ACCOUNT/role|user/NAME.json   one document per principal, tagged owner=<ARN>
 *   trust/bundle.pem                     certificates for the registry's rootcertbundle
 *   trust/jwks.json                      the same keys as a JWKS
 *   state/lock.json                      the run lock
 */

import {
  DeleteObjectCommand,
  GetBucketPolicyCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { buildTokenBucketPolicy, OWNER_TAG_KEY } from '../core/policy.js';
import type {
  ConfigSource,
  RepositoryInventory,
  RunLock,
  TokenDocument,
  TokenStore,
  TrustMaterial,
} from '../core/ports.js';
import type { Partition, Principal } from '../core/principal.js';
import { checkRepositoryName } from '../core/repository.js';
import { InputError, NotFoundError, StoreError } from '../errors.js';
import { awsErrorCode, awsStatus, credentialsError, describeAwsError } from './aws.js';

/** A parsed `s3://BUCKET/KEY` location. */
export interface S3Location {
  readonly bucket: string;
  /** Object key, or a prefix without leading or trailing slash ('' for the bucket root). */
  readonly key: string;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** True when `location` is an S3 URL. */
export function isS3Url(location: string): boolean {
  return location.startsWith('s3://');
}

/**
 * Parses `s3://BUCKET/KEY` (an object) or `s3://BUCKET[/PREFIX]` (a prefix). Throws
 * InputError naming the URL when it is not one.
 */
export function parseS3Url(url: string, kind: 'object' | 'prefix'): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  const bucket = m?.[1] ?? '';
  const key = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (!m || !BUCKET_RE.test(bucket))
    throw new InputError(
      `${url}: not an S3 location (expected s3://BUCKET/${kind === 'object' ? 'KEY' : '[PREFIX]'})`,
    );
  if (kind === 'object' && key === '')
    throw new InputError(`${url}: names a bucket, not an object (expected s3://BUCKET/KEY)`);
  return { bucket, key };
}

function joinKey(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key;
}

async function readText(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ text: string; version: string | undefined; etag: string | undefined } | undefined> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return {
      text: (await r.Body?.transformToString('utf8')) ?? '',
      version: r.VersionId ?? r.ETag,
      etag: r.ETag,
    };
  } catch (err) {
    if (awsErrorCode(err) === 'NoSuchKey') return undefined;
    throw err;
  }
}

/** The grants file as an S3 object; its version id (or ETag when unversioned) is recorded. */
export class S3ConfigSource implements ConfigSource {
  readonly name: string;

  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {
    this.name = `s3://${at.bucket}/${at.key}`;
  }

  async read(): Promise<{ text: string; version?: string }> {
    let got: Awaited<ReturnType<typeof readText>>;
    try {
      got = await readText(this.s3, this.at.bucket, this.at.key);
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchBucket')
        throw new NotFoundError(describeAwsError(err, this.name), { cause: err });
      throw new InputError(describeAwsError(err, this.name), { cause: err });
    }
    if (!got) throw new NotFoundError(`${this.name}: no such object`);
    return got.version ? { text: got.text, version: got.version } : { text: got.text };
  }

  async currentVersion(): Promise<string | undefined> {
    try {
      const r = await this.s3.send(
        new HeadObjectCommand({ Bucket: this.at.bucket, Key: this.at.key }),
      );
      return r.VersionId ?? r.ETag;
    } catch {
      return undefined;
    }
  }
}

/** How many directories the inventory walk lists at once. */
const WALK_CONCURRENCY = 16;
/**
 * Where a repository's own directories begin: the registry keeps `_manifests`, `_layers` and
 * `_uploads` in each repository's directory, and no repository name has a component starting
 * with `_`. So the first `/_` after the root ends a repository name.
 */
const REPOSITORY_END = '/_';

/**
 * Repositories in a Distribution registry's S3 storage: the registry keeps each repository
 * under `PREFIX/docker/registry/v2/repositories/NAME/` with `_manifests`, `_layers` and
 * `_uploads` inside.
 *
 * One listing with the delimiter `/_` rolls every key of a repository up into one common prefix
 * `…/repositories/NAME/_`, whatever the depth of NAME: about one call per 1,000 repositories,
 * however many objects each holds. S3 documents the delimiter as a string grouping keys up to
 * its first occurrence after the prefix; moto implements it so (*unverified* on AWS itself). A
 * store that treats it otherwise (a common prefix not ending in `/_`, or a key containing `/_`
 * returned ungrouped) is walked instead, one directory level at a time with the delimiter `/`
 * ({@link WALK_CONCURRENCY} directories at once): one call per directory. See
 * docs/performance.md for the measurements.
 */
export class S3Inventory implements RepositoryInventory {
  readonly name: string;

  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {
    this.name = `s3://${at.bucket}${at.key ? `/${at.key}` : ''}`;
  }

  async list(): Promise<string[]> {
    const root = `${joinKey(this.at.key, 'docker/registry/v2/repositories')}/`;
    try {
      const names = (await this.listGrouped(root)) ?? (await this.walk(root));
      return names.filter((name) => checkRepositoryName(name) === undefined).sort();
    } catch (err) {
      throw new InputError(describeAwsError(err, this.name), { cause: err });
    }
  }

  /** Repository names from one `/_`-delimited listing; undefined if the store did not group by it. */
  private async listGrouped(root: string): Promise<string[] | undefined> {
    const { prefixes, keys } = await this.listing(root, REPOSITORY_END);
    const grouped =
      prefixes.every((p) => p.endsWith(REPOSITORY_END)) &&
      keys.every((k) => !k.slice(root.length).includes(REPOSITORY_END));
    return grouped ? prefixes.map((p) => p.slice(root.length, -REPOSITORY_END.length)) : undefined;
  }

  /** Repository names found by listing every directory with the delimiter `/`. */
  private async walk(root: string): Promise<string[]> {
    const names: string[] = [];
    await walk(
      root,
      async (prefix) => {
        const children = (await this.listing(prefix, '/')).prefixes.map((p) =>
          p.slice(prefix.length, -1),
        );
        if (children.some((c) => c.startsWith('_'))) names.push(prefix.slice(root.length, -1));
        return children.filter((c) => !c.startsWith('_')).map((c) => `${prefix}${c}/`);
      },
      WALK_CONCURRENCY,
    );
    return names;
  }

  /** Every page of a delimited listing: the common prefixes and the keys, both in full. */
  private async listing(
    prefix: string,
    delimiter: string,
  ): Promise<{ prefixes: string[]; keys: string[] }> {
    const prefixes: string[] = [];
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.at.bucket,
          Prefix: prefix,
          Delimiter: delimiter,
          ContinuationToken: token,
        }),
      );
      for (const p of r.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { prefixes, keys };
  }
}

/**
 * Visits a tree from `root` with at most `limit` visits in flight; `visit` returns the children
 * to visit next. Rejects with the first error (visits already started still finish, unobserved).
 */
function walk(
  root: string,
  visit: (node: string) => Promise<string[]>,
  limit: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const queue = [root];
    let active = 0;
    let failed = false;
    const pump = () => {
      if (failed) return;
      if (queue.length === 0 && active === 0) {
        resolve();
        return;
      }
      while (active < limit && queue.length > 0) {
        const node = queue.shift() as string;
        active += 1;
        visit(node).then(
          (children) => {
            active -= 1;
            queue.push(...children);
            pump();
          },
          (err: unknown) => {
            failed = true;
            reject(err);
          },
        );
      }
    };
    pump();
  });
}

/** Options of the S3 token store. */
export interface S3TokenStoreOptions {
  /** Roles or users allowed to write the bucket (the minter); everyone else is denied. */
  readonly minterArns: readonly string[];
  readonly partition: Partition;
}

/**
 * The token bucket. Each token object is tagged `owner=<principal ARN>`; the bucket policy
 * (rebuilt from the config each run, never read-modified-written) lets a principal read only
 * the object tagged with its own ARN.
 */
export class S3TokenStore implements TokenStore {
  readonly concurrency = 32;
  /**
   * The bundle as {@link readTrustBundle} last read it (undefined: none), so that
   * {@link publishTrust} later in the same run, under the run lock, need not read it again.
   */
  #bundleRead: { text: string | undefined } | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
    private readonly options: S3TokenStoreOptions,
  ) {}

  private key(key: string): string {
    return joinKey(this.at.key, key);
  }

  locate(key: string): string {
    return `s3://${this.at.bucket}/${this.key(key)}`;
  }

  async listTokenKeys(): Promise<string[]> {
    const prefix = this.key('tokens/');
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const r = await this.s3.send(
          new ListObjectsV2Command({
            Bucket: this.at.bucket,
            Prefix: prefix,
            ContinuationToken: token,
          }),
        );
        for (const o of r.Contents ?? [])
          if (o.Key?.endsWith('.json')) keys.push(o.Key.slice(this.key('').length));
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate('tokens/')), { cause: err });
    }
    return keys.sort();
  }

  async putToken(key: string, doc: TokenDocument, owner: Principal): Promise<void> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.at.bucket,
          Key: this.key(key),
          Body: `${JSON.stringify(doc, null, 2)}\n`,
          ContentType: 'application/json',
          CacheControl: 'no-store',
          Tagging: `${OWNER_TAG_KEY}=${encodeURIComponent(owner.arn)}`,
        }),
      );
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate(key)), { cause: err });
    }
  }

  async deleteToken(key: string): Promise<void> {
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.at.bucket, Key: this.key(key) }));
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate(key)), { cause: err });
    }
  }

  async readTrustBundle(): Promise<string | undefined> {
    try {
      const text = (await readText(this.s3, this.at.bucket, this.key('trust/bundle.pem')))?.text;
      this.#bundleRead = { text };
      return text;
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate('trust/bundle.pem')), { cause: err });
    }
  }

  async publishTrust(trust: TrustMaterial): Promise<{ bundle: string; jwks: string }> {
    const files = [
      { key: 'trust/bundle.pem', body: trust.bundlePem, type: 'application/x-pem-file' },
      {
        key: 'trust/jwks.json',
        body: `${JSON.stringify(trust.jwks, null, 2)}\n`,
        type: 'application/json',
      },
    ];
    const bundleRead = this.#bundleRead;
    const results = await Promise.allSettled(
      files.map(async (f) => {
        // Rewrite only on change, so a registry host polling the object sees real changes only.
        const current =
          f.key === 'trust/bundle.pem' && bundleRead
            ? bundleRead.text
            : (await readText(this.s3, this.at.bucket, this.key(f.key)))?.text;
        if (current === f.body) return;
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.at.bucket,
            Key: this.key(f.key),
            Body: f.body,
            ContentType: f.type,
          }),
        );
        if (f.key === 'trust/bundle.pem') this.#bundleRead = { text: f.body };
      }),
    );
    // Both files are tried; the first failure (in file order) is reported.
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        throw new StoreError(describeAwsError(r.reason, this.locate(files[i]?.key ?? '')), {
          cause: r.reason,
        });
    });
    return { bundle: this.locate('trust/bundle.pem'), jwks: this.locate('trust/jwks.json') };
  }

  /**
   * Writes the bucket policy for these reader accounts when it differs from the current one.
   * The policy is built from scratch every time (a deleted principal never lingers in it).
   */
  async applyReadPolicy(readerAccounts: readonly string[]): Promise<void> {
    const policy = JSON.stringify(
      buildTokenBucketPolicy({
        bucket: this.at.bucket,
        prefix: this.at.key,
        partition: this.options.partition,
        readerAccounts,
        minterArns: this.options.minterArns,
      }),
    );
    let current: string | undefined;
    try {
      current = (await this.s3.send(new GetBucketPolicyCommand({ Bucket: this.at.bucket }))).Policy;
    } catch (err) {
      if (awsErrorCode(err) !== 'NoSuchBucketPolicy')
        throw new StoreError(describeAwsError(err, `s3://${this.at.bucket} (bucket policy)`), {
          cause: err,
        });
    }
    if (current !== undefined && samePolicy(current, policy)) return;
    try {
      await this.s3.send(new PutBucketPolicyCommand({ Bucket: this.at.bucket, Policy: policy }));
    } catch (err) {
      throw new StoreError(describeAwsError(err, `s3://${this.at.bucket} (bucket policy)`), {
        cause: err,
      });
    }
  }
}

function samePolicy(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

interface LockBody {
  readonly owner: string;
  readonly expiresAt: string;
  readonly released?: boolean;
}

/**
 * A lease lock on one S3 object, taken with conditional writes (`If-None-Match: *` when absent,
 * `If-Match: <etag>` to take over a free or expired lock). The lease must outlast a run
 * (the Lambda timeout), so a crashed run's lock frees itself.
 */
export class S3RunLock implements RunLock {
  #etag: string | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly owner: string,
    private readonly leaseMs: number,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async acquire(): Promise<boolean> {
    const current = await readText(this.s3, this.bucket, this.key);
    const body: LockBody = {
      owner: this.owner,
      expiresAt: new Date(this.clock().getTime() + this.leaseMs).toISOString(),
    };
    if (current) {
      let held: LockBody | undefined;
      try {
        held = JSON.parse(current.text) as LockBody;
      } catch {
        held = undefined; // unreadable lock: treat as free
      }
      if (held && !held.released && Date.parse(held.expiresAt) > this.clock().getTime())
        return false;
    }
    try {
      const r = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          ...(current?.etag ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
        }),
      );
      this.#etag = r.ETag;
      return true;
    } catch (err) {
      if (awsStatus(err) === 412 || awsStatus(err) === 409) return false; // another run won the race
      throw new StoreError(describeAwsError(err, `s3://${this.bucket}/${this.key}`), {
        cause: err,
      });
    }
  }

  async release(): Promise<void> {
    if (!this.#etag) return;
    const body: LockBody = {
      owner: this.owner,
      expiresAt: this.clock().toISOString(),
      released: true,
    };
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          IfMatch: this.#etag,
        }),
      );
    } catch (err) {
      // 412: our lease ran out and another run took over; its lock is not ours to free.
      if (awsStatus(err) !== 412) throw err;
    } finally {
      this.#etag = undefined;
    }
  }
}

/**
 * Client side: reads the caller's own token document from the token bucket
 * (`s3://TOKEN_BUCKET[/PREFIX]/tokens/ACCOUNT/role|user/NAME.json`) with the caller's
 * credentials, and notes AWS's clock (the answer's `Date` header) so a wrong local clock can be
 * told apart from an expired token.
 *
 * It reports "missing" and "denied" as results, not errors: the client composes the message,
 * which depends on who asked. On real S3 a caller without `s3:ListBucket` (every reader of the
 * token bucket) gets 403, not 404, for a key that does not exist, so "denied" covers "no token
 * yet" there too (docs/client.md).
 */

/** What reading one's token found. */
export type OwnTokenRead =
  | { readonly kind: 'found'; readonly text: string; readonly awsDate: Date | undefined }
  | { readonly kind: 'missing' }
  | { readonly kind: 'denied'; readonly code: string };

/** The token bucket (and prefix), read with the caller's own credentials. */
export class S3OwnTokenSource {
  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {}

  /** `s3://BUCKET/PREFIX/KEY` for a key relative to the token location. */
  locate(key: string): string {
    return `s3://${this.at.bucket}/${this.objectKey(key)}`;
  }

  private objectKey(key: string): string {
    return this.at.key ? `${this.at.key}/${key}` : key;
  }

  async read(key: string): Promise<OwnTokenRead> {
    const command = new GetObjectCommand({ Bucket: this.at.bucket, Key: this.objectKey(key) });
    let awsDate: Date | undefined;
    // The Date header is not part of GetObject's output; read it from the raw answer.
    command.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const date = (result.response as { headers?: Record<string, string> })?.headers?.date;
        const parsed = date ? new Date(date) : undefined;
        awsDate = parsed && !Number.isNaN(parsed.getTime()) ? parsed : undefined;
        return result;
      },
      { step: 'deserialize', name: 'regtokenAwsDate' },
    );
    try {
      const r = await this.s3.send(command);
      const text = (await r.Body?.transformToString('utf8')) ?? '';
      return { kind: 'found', text, awsDate };
    } catch (err) {
      const code = awsErrorCode(err);
      if (code === 'NoSuchKey') return { kind: 'missing' };
      const known = credentialsError(err);
      if (known) throw known;
      if (code === 'NoSuchBucket')
        throw new InputError(
          `s3://${this.at.bucket}: no such bucket (check --from, REGTOKEN_FROM or your config file)`,
          { cause: err },
        );
      if (code === 'AccessDenied' || awsStatus(err) === 403) return { kind: 'denied', code };
      throw new StoreError(describeAwsError(err, this.locate(key)), { cause: err });
    }
  }
}
