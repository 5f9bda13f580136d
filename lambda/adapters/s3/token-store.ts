/**
 * The token bucket: tokens, trust material and the bucket policy that keeps each token readable
 * by its owner only.
 *
 * Layout under PREFIX (docs/aws.md):
 *   tokens/ACCOUNT/role|user/NAME.json   one document per principal, tagged owner=<ARN>
 *   trust/bundle.pem                     certificates for the registry's rootcertbundle
 *   trust/jwks.json                      the same keys as a JWKS
 *   state/lock.json                      the run lock (run-lock.ts)
 */

import {
  DeleteObjectCommand,
  GetBucketPolicyCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { findRefused } from '../../core/bisect.js';
import type { LeaseFence } from '../../core/lease.js';
import { buildTokenBucketPolicy, OWNER_TAG_KEY, storePrefixOf } from '../../core/policy.js';
import type { TokenDocument, TokenStore, TrustMaterial } from '../../core/ports.js';
import { isTokenKey, type Partition, type Principal } from '../../core/principal.js';
import { tokenDocumentText } from '../../core/token-document.js';
import { LeaseExpiredError, StoreError } from '../../errors.js';
import { awsErrorCode, describeAwsError } from '../aws.js';
import { perClient } from '../per-client.js';
import { joinKey, readText, type S3Location } from './shared.js';

/** Options of the S3 token store. */
export interface S3TokenStoreOptions {
  /** Roles or users allowed to write the bucket (the minter); everyone else is denied. */
  readonly minterArns: readonly string[];
  readonly partition: Partition;
  /**
   * The run's lease: checked before every write attempt, the SDK's retries included, so no
   * write starts once the lease is ending (lambda/core/lease.ts). Without one, writes are
   * not fenced (a store used outside a locked run).
   */
  readonly fence?: LeaseFence;
}

/** The trust files, under the store's root. */
const BUNDLE = 'trust/bundle.pem';
const JWKS = 'trust/jwks.json';

/** A trust file as this process last read or wrote it. */
interface SeenFile {
  readonly etag: string;
  readonly text: string;
}

/**
 * What this process last read or wrote of each trust file, by S3 client and object
 * (`s3://BUCKET/KEY`). A later run whose listing of `trust/`, made under the run lock, shows the
 * file with the same ETag takes its text from here instead of reading it again: an ETag stands
 * for one version's content, so a file anyone changed or deleted since shows another ETag (or
 * none) and is read as before.
 */
const trustSeen = perClient<S3Client, SeenFile>();

type WriteCommand = PutObjectCommand | DeleteObjectCommand | PutBucketPolicyCommand;
type Next = (args: unknown) => Promise<unknown>;

/**
 * Adds the lease check to a write command, right after the SDK's retry middleware: it runs
 * before each attempt, so a retry after a stall is refused like a first attempt.
 */
function fenced<C extends WriteCommand>(command: C, fence: LeaseFence | undefined): C {
  if (!fence) return command;
  // The three commands' middleware stacks have the same shape; TypeScript cannot unify them.
  const stack = command.middlewareStack as unknown as {
    addRelativeTo(
      middleware: (next: Next) => Next,
      options: { relation: 'after'; toMiddleware: string; name: string },
    ): void;
  };
  stack.addRelativeTo(
    (next) => async (args) => {
      fence.check();
      return next(args);
    },
    { relation: 'after', toMiddleware: 'retryMiddleware', name: 'regtokenLeaseFence' },
  );
  return command;
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
  /**
   * The JWKS and the bucket policy, read with the bundle under the run lock
   * ({@link readTrustBundle}), for {@link publishTrust} and {@link applyReadPolicy} of the same
   * run: each is used once (a later run, or the next pass of one, reads again). Only minters,
   * holding the lock, write them, so they are what the run would read when it needs them. A
   * failed read fails where the value is needed, as if it were read then.
   */
  #jwksRead: Promise<string | undefined> | undefined;
  #policyRead: Promise<string | undefined> | undefined;

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

  /** The keys under `tokens/` of a token's shape, sorted. */
  async listTokenKeys(): Promise<string[]> {
    const prefix = this.key('tokens/');
    const root = this.key('');
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
        for (const o of r.Contents ?? []) {
          const key = o.Key?.slice(root.length);
          if (key && isTokenKey(key)) keys.push(key);
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate('tokens/')), { cause: err });
    }
    return keys.sort();
  }

  /** Reads a trust file (undefined: none) and remembers it for later runs ({@link trustSeen}). */
  private async readTrust(key: string): Promise<string | undefined> {
    const got = await readText(this.s3, this.at.bucket, this.key(key));
    this.remember(key, got?.etag, got?.text);
    return got?.text;
  }

  /** Keeps what this process read or wrote of a trust file, with its ETag ({@link trustSeen}). */
  private remember(key: string, etag: string | undefined, text: string | undefined): void {
    const seen = trustSeen(this.s3);
    if (etag !== undefined && text !== undefined) seen.set(this.locate(key), { etag, text });
    else seen.delete(this.locate(key));
  }

  async putToken(key: string, doc: TokenDocument, owner: Principal): Promise<void> {
    try {
      await this.s3.send(
        fenced(
          new PutObjectCommand({
            Bucket: this.at.bucket,
            Key: this.key(key),
            Body: tokenDocumentText(doc),
            ContentType: 'application/json',
            CacheControl: 'no-store',
            Tagging: `${OWNER_TAG_KEY}=${encodeURIComponent(owner.arn)}`,
          }),
          this.options.fence,
        ),
      );
    } catch (err) {
      if (err instanceof LeaseExpiredError) throw err;
      throw new StoreError(describeAwsError(err, this.locate(key)), { cause: err });
    }
  }

  /** Deletes a token object. Only the minters may write the bucket, so every one is regtoken's. */
  async deleteToken(key: string): Promise<boolean> {
    try {
      await this.s3.send(
        fenced(
          new DeleteObjectCommand({ Bucket: this.at.bucket, Key: this.key(key) }),
          this.options.fence,
        ),
      );
      return true;
    } catch (err) {
      if (err instanceof LeaseExpiredError) throw err;
      throw new StoreError(describeAwsError(err, this.locate(key)), { cause: err });
    }
  }

  /**
   * The bundle, read under the run lock as a run plans, with the JWKS and the policy read beside
   * it for later in the run ({@link publishTrust}, {@link applyReadPolicy}). A trust file this
   * process has seen is read only when a listing of `trust/` shows it changed since
   * ({@link trustSeen}); one it has not seen is read at once. The listing names the trust files
   * only: the tokens are listed apart ({@link listTokenKeys}), when the run is writing.
   */
  readTrustBundle(): Promise<string | undefined> {
    const seen = trustSeen(this.s3);
    let listing: Promise<Map<string, string>> | undefined;
    const read = (key: string): Promise<string | undefined> => {
      const known = seen.get(this.locate(key));
      if (!known) return this.readTrust(key);
      listing ??= this.trustEtags();
      // Should the listing fail, the file is read, and a failure reported, as if it were unseen.
      return listing.then(
        (etags) => (etags.get(key) === known.etag ? known.text : this.readTrust(key)),
        () => this.readTrust(key),
      );
    };
    this.#jwksRead = read(JWKS);
    this.#policyRead = this.currentPolicy();
    for (const p of [this.#jwksRead, this.#policyRead]) p.catch(() => undefined);
    return this.bundleFrom(read(BUNDLE));
  }

  /** The ETags of the trust files, from one listing of `trust/` (two objects). */
  private async trustEtags(): Promise<Map<string, string>> {
    const root = this.key('');
    const etags = new Map<string, string>();
    const r = await this.s3.send(
      new ListObjectsV2Command({ Bucket: this.at.bucket, Prefix: `${root}trust/` }),
    );
    for (const o of r.Contents ?? [])
      if (o.Key && o.ETag) etags.set(o.Key.slice(root.length), o.ETag);
    return etags;
  }

  private async bundleFrom(read: Promise<string | undefined>): Promise<string | undefined> {
    try {
      const text = await read;
      this.#bundleRead = { text };
      return text;
    } catch (err) {
      throw new StoreError(describeAwsError(err, this.locate(BUNDLE)), { cause: err });
    }
  }

  async publishTrust(trust: TrustMaterial): Promise<{ bundle: string; jwks: string }> {
    // What this run read of each file under the lock, if it did (readTrustBundle).
    const bundleRead = this.#bundleRead;
    const files = [
      {
        key: BUNDLE,
        body: trust.bundlePem,
        type: 'application/x-pem-file',
        read: bundleRead && Promise.resolve(bundleRead.text),
      },
      {
        key: JWKS,
        body: `${JSON.stringify(trust.jwks, null, 2)}\n`,
        type: 'application/json',
        read: this.#jwksRead,
      },
    ];
    this.#jwksRead = undefined;
    const results = await Promise.allSettled(
      files.map(async (f) => {
        // Rewrite only on change, so a registry host polling the object sees real changes only.
        const current = await (f.read ?? this.readTrust(f.key));
        if (current === f.body) return;
        const written = await this.s3.send(
          fenced(
            new PutObjectCommand({
              Bucket: this.at.bucket,
              Key: this.key(f.key),
              Body: f.body,
              ContentType: f.type,
            }),
            this.options.fence,
          ),
        );
        this.remember(f.key, written.ETag, f.body);
        if (f.key === BUNDLE) this.#bundleRead = { text: f.body };
      }),
    );
    // Both files are tried; the first failure (in file order) is reported.
    results.forEach((r, i) => {
      if (r.status === 'rejected' && r.reason instanceof LeaseExpiredError) throw r.reason;
      if (r.status === 'rejected')
        throw new StoreError(describeAwsError(r.reason, this.locate(files[i]?.key ?? '')), {
          cause: r.reason,
        });
    });
    return { bundle: this.locate(BUNDLE), jwks: this.locate(JWKS) };
  }

  /** The bucket policy now, or undefined when the bucket has none. */
  private async currentPolicy(): Promise<string | undefined> {
    try {
      return (await this.s3.send(new GetBucketPolicyCommand({ Bucket: this.at.bucket }))).Policy;
    } catch (err) {
      if (awsErrorCode(err) === 'NoSuchBucketPolicy') return undefined;
      throw new StoreError(describeAwsError(err, `s3://${this.at.bucket} (bucket policy)`), {
        cause: err,
      });
    }
  }

  /**
   * Refuses to serve a second token store from one bucket: its policy protects one prefix, so
   * minting another would replace it and leave the first store's tokens open to the bucket's
   * other readers (and deny the first store's minter its writes).
   */
  private refuseOtherStore(policy: string | undefined): void {
    const other = policy === undefined ? undefined : storePrefixOf(policy, this.at.bucket);
    if (other === undefined || other === this.at.key) return;
    const otherAt = `s3://${this.at.bucket}${other ? `/${other}` : ''}`;
    throw new StoreError(
      `${this.locate('').replace(/\/$/, '')}: the bucket already serves the token store at ${otherAt} (its bucket policy protects that one only); one bucket holds one token store: use another bucket for this one (docs/aws.md)`,
    );
  }

  async claim(): Promise<void> {
    this.refuseOtherStore(await this.currentPolicy());
  }

  /**
   * Writes the bucket policy for these reader accounts when it differs from the current one.
   * The policy is built from scratch every time (a deleted principal never lingers in it); a
   * policy of another token store is never replaced. When S3 refuses the policy because it
   * cannot resolve some account's root (`MalformedPolicy: Invalid principal in policy`), the
   * accounts it refuses are found by bisection and left out; they are returned. Every attempt
   * replaces the policy whole or not at all, so the bucket always has a policy, and the last
   * one written holds every account S3 accepts. When the search gives up, the policy the run
   * found is written back and the run fails.
   */
  async applyReadPolicy(readerAccounts: readonly string[]): Promise<readonly string[]> {
    const read = this.#policyRead;
    this.#policyRead = undefined;
    const current = await (read ?? this.currentPolicy());
    this.refuseOtherStore(current);
    let written = current;
    const write = async (accounts: readonly string[]): Promise<boolean> => {
      const policy = this.policyFor(accounts);
      if (written !== undefined && samePolicy(written, policy)) return true;
      try {
        await this.s3.send(
          fenced(
            new PutBucketPolicyCommand({ Bucket: this.at.bucket, Policy: policy }),
            this.options.fence,
          ),
        );
        written = policy;
        return true;
      } catch (err) {
        if (err instanceof LeaseExpiredError) throw err;
        if (isInvalidPrincipal(err)) return false;
        throw new StoreError(describeAwsError(err, `s3://${this.at.bucket} (bucket policy)`), {
          cause: err,
        });
      }
    };
    if (await write(readerAccounts)) return [];
    const found = await findRefused(readerAccounts, write, MAX_POLICY_ATTEMPTS);
    if (!found) {
      // Put back the policy the run found (the search may have written a narrower one).
      if (current !== undefined && written !== current)
        await this.s3
          .send(
            fenced(
              new PutBucketPolicyCommand({ Bucket: this.at.bucket, Policy: current }),
              this.options.fence,
            ),
          )
          .catch(() => undefined);
      throw new StoreError(
        `s3://${this.at.bucket} (bucket policy): S3 refuses the policy (MalformedPolicy: Invalid principal in policy) and ${MAX_POLICY_ATTEMPTS} attempts did not find which reader accounts it refuses; the bucket keeps its previous policy`,
      );
    }
    return found.refused;
  }

  private policyFor(readerAccounts: readonly string[]): string {
    return JSON.stringify(
      buildTokenBucketPolicy({
        bucket: this.at.bucket,
        prefix: this.at.key,
        partition: this.options.partition,
        readerAccounts,
        minterArns: this.options.minterArns,
      }),
    );
  }
}

/** How many policy writes a run spends finding the accounts S3 refuses (docs/aws.md). */
const MAX_POLICY_ATTEMPTS = 24;

/** S3's answer to a policy naming a principal it cannot resolve. */
function isInvalidPrincipal(err: unknown): boolean {
  return (
    awsErrorCode(err) === 'MalformedPolicy' &&
    /invalid principal/i.test((err as { message?: string })?.message ?? '')
  );
}

function samePolicy(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}
