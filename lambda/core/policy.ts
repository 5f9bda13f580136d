/**
 * The token bucket's policy: a fixed set of statements, whatever the number of principals.
 *
 * One statement per principal would hit S3's 20 KB policy limit after ~60–90 principals, and
 * `PutBucketPolicy` refuses the whole document if any named role or user no longer exists. So
 * principals are never named one by one: each token object carries the tag `owner=<principal
 * ARN>` and the policy compares that tag with `${aws:PrincipalArn}` (for a role session, the role
 * ARN with its path). Only the accounts of the readers and the minter ARNs appear in the
 * document; both are short lists that change rarely. The policy is rebuilt from config on every
 * run and never read back, so a stale unique ID can never block a save.
 */

import { type Partition, parsePrincipal } from './principal.js';
import { compareCodeUnits, quote } from './text.js';

/** S3's limit for a bucket policy, in bytes of the (compact) JSON document. */
export const MAX_BUCKET_POLICY_BYTES = 20_480;

/**
 * The S3 object tag that binds a token object to its reader. The minter sets it to the
 * principal ARN exactly as configured (with IAM path), which is what `${aws:PrincipalArn}`
 * resolves to for that user, role or role session.
 */
export const OWNER_TAG_KEY = 'owner';

/**
 * Object actions that reveal a token or its metadata, denied to everyone but the token's owner
 * and the minters. Wildcards, not names: a named list misses actions such as
 * `s3:GetObjectVersionForReplication` (and any S3 adds later).
 */
export const TOKEN_READ_ACTIONS = ['s3:GetObject*', 's3:RestoreObject'] as const;

/**
 * Object actions that create, change, re-tag, replicate or remove objects anywhere in the
 * bucket, denied to everyone but the minters so nobody else can plant a token, move an `owner`
 * tag (`s3:PutObjectVersionTagging` works on an unversioned bucket with versionId=null) or
 * replace the trust bundle. Wildcards for the same reason as {@link TOKEN_READ_ACTIONS}.
 */
export const OBJECT_WRITE_ACTIONS = [
  's3:PutObject*',
  's3:DeleteObject*',
  's3:Replicate*',
  's3:RestoreObject',
  's3:AbortMultipartUpload',
  's3:UpdateObjectEncryption',
  's3:BypassGovernanceRetention',
  's3:InitiateReplication',
  's3:ObjectOwnerOverrideToBucketOwner',
] as const;

/** Listings, denied to everyone but the minters: key names reveal who has a token. */
export const BUCKET_LIST_ACTIONS = ['s3:ListBucket*', 's3:ListMultipartUploadParts'] as const;

/** One statement of a bucket policy, with the fields always in the same order. */
export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal: '*' | { readonly AWS: readonly string[] };
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
  /** Operator → condition key → value(s); several entries must all hold. */
  readonly Condition: Readonly<
    Record<string, Readonly<Record<string, string | readonly string[]>>>
  >;
}

/** An S3 bucket policy as JSON-ready data. */
export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: readonly PolicyStatement[];
}

/** What the token bucket's policy is built from; all of it comes from config. */
export interface TokenBucketPolicyInput {
  readonly bucket: string;
  /** `''` or `some/prefix` (no leading or trailing slash); tokens live under `PREFIX/tokens/`. */
  readonly prefix: string;
  readonly partition: Partition;
  /** 12-digit accounts of the configured principals, in any order, duplicates allowed. */
  readonly readerAccounts: readonly string[];
  /** IAM role/user ARNs that write, list and read everything (at least one). */
  readonly minterArns: readonly string[];
}

/** The policy variable, kept in one place so the Allow and the Deny compare the same thing. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, resolved by AWS
const PRINCIPAL_ARN_VARIABLE = '${aws:PrincipalArn}';
const ACCOUNT_RE = /^\d{12}$/;
// Bucket names are stricter than this (3–63 lowercase characters), but older us-east-1 buckets
// are not; what matters here is that nothing can turn the ARN into a pattern or a variable.
const BUCKET_RE = /^[A-Za-z0-9._-]+$/;
// Same reasoning for the prefix: `*`, `?` or `${` in a Resource would widen the statement.
const PREFIX_SEGMENT_RE = /^[A-Za-z0-9!._'()=+@,;&-]+$/;

/**
 * Why `prefix` cannot be a token store's prefix, or undefined when it can: it appears in the
 * policy's resources, where `*`, `?` or `${` would widen a statement, so only plain segments
 * are allowed. Checked with the settings, before a run does any I/O.
 */
export function storePrefixProblem(prefix: string): string | undefined {
  if (prefix === '' || prefix.split('/').every((s) => PREFIX_SEGMENT_RE.test(s))) return undefined;
  return `the prefix ${quote(prefix)} must be segments of letters, digits and ! - _ . ' ( ) = + @ , ; & joined by "/" (no spaces, wildcards or "$")`;
}

/**
 * Builds the token bucket's policy from config: TLS only; readers in the configured accounts may
 * `GetObject` under `PREFIX/tokens/` only where the object's `owner` tag equals their
 * `aws:PrincipalArn`; everyone except the minters is denied reading other principals' tokens,
 * reading the run state under `PREFIX/state/` (the lock, a fanned-out run's shard files),
 * writing, re-tagging or deleting any object, and listing the bucket. Its size depends only on
 * the number of accounts and minters, never on the number of principals. Accounts and minters
 * are deduplicated and sorted, so the same config always gives byte-identical JSON. Bucket
 * management actions are left alone on purpose so an account admin can always repair the
 * policy. With no reader accounts the Allow is left out (S3 refuses an empty principal list)
 * and only the Denies remain. Throws an `Error` naming the problem for an empty or malformed
 * bucket, prefix, account id or minter ARN, or when no minter is given.
 */
export function buildTokenBucketPolicy(input: TokenBucketPolicyInput): PolicyDocument {
  const { bucket, prefix, partition } = input;
  if (bucket === '') throw new Error('token bucket policy: the bucket name is empty');
  if (!BUCKET_RE.test(bucket))
    throw new Error(
      `token bucket policy: bucket name "${bucket}" may only hold letters, digits, ".", "_" and "-"`,
    );
  const prefixProblem = storePrefixProblem(prefix);
  if (prefixProblem) throw new Error(`token bucket policy: ${prefixProblem}`);
  for (const account of input.readerAccounts) {
    if (!ACCOUNT_RE.test(account))
      throw new Error(`token bucket policy: reader account "${account}" must be 12 digits`);
  }
  if (input.minterArns.length === 0)
    throw new Error(
      'token bucket policy: no minter ARN given; without one nobody could write tokens',
    );
  for (const arn of input.minterArns) {
    // A wildcard or a session ARN here would exempt the wrong principals from every Deny.
    const parsed = parsePrincipal(arn);
    if (!parsed.ok) throw new Error(`token bucket policy: minter ${parsed.reason}`);
    if (parsed.value.partition !== partition)
      throw new Error(
        `token bucket policy: minter "${arn}" is in partition "${parsed.value.partition}", the bucket in "${partition}"`,
      );
  }

  const accounts = sortedUnique(input.readerAccounts);
  const minters = sortedUnique(input.minterArns);
  const bucketArn = `arn:${partition}:s3:::${bucket}`;
  const objectsArn = `${bucketArn}/*`;
  const tokensArn = `${bucketArn}/${prefix === '' ? '' : `${prefix}/`}tokens/*`;
  const stateArn = `${bucketArn}/${prefix === '' ? '' : `${prefix}/`}state/*`;
  const notMinter = { ArnNotEquals: { 'aws:PrincipalArn': minters } };

  const statements: PolicyStatement[] = [
    {
      Sid: 'TlsOnly',
      Effect: 'Deny',
      Principal: '*',
      Action: ['s3:*'],
      Resource: [bucketArn, objectsArn],
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    },
  ];
  if (accounts.length > 0)
    statements.push({
      Sid: 'ReadOwnToken',
      Effect: 'Allow',
      // Account roots, not "*": keeps the policy non-public for Block Public Access, at the
      // price that same-account readers also need an identity-side grant.
      Principal: { AWS: accounts.map((a) => `arn:${partition}:iam::${a}:root`) },
      Action: ['s3:GetObject'],
      Resource: [tokensArn],
      Condition: {
        StringEquals: { [`s3:ExistingObjectTag/${OWNER_TAG_KEY}`]: PRINCIPAL_ARN_VARIABLE },
      },
    });
  statements.push(
    {
      Sid: 'DenyOtherTokens',
      Effect: 'Deny',
      Principal: '*',
      Action: [...TOKEN_READ_ACTIONS],
      Resource: [tokensArn],
      // Needed even in the same account, where an identity policy alone (say s3:* on *) would
      // otherwise read every token. A missing tag also matches StringNotEquals, so untagged
      // objects stay closed.
      Condition: {
        StringNotEquals: { [`s3:ExistingObjectTag/${OWNER_TAG_KEY}`]: PRINCIPAL_ARN_VARIABLE },
        ...notMinter,
      },
    },
    {
      Sid: 'DenyRunStateExceptMinter',
      Effect: 'Deny',
      Principal: '*',
      Action: [...TOKEN_READ_ACTIONS],
      // The run lock and a fanned-out run's shard files (every principal and its access): for
      // the minters only, whatever an identity policy in the bucket's account allows.
      Resource: [stateArn],
      Condition: notMinter,
    },
    {
      Sid: 'DenyWritesExceptMinter',
      Effect: 'Deny',
      Principal: '*',
      Action: [...OBJECT_WRITE_ACTIONS],
      Resource: [objectsArn],
      Condition: notMinter,
    },
    {
      Sid: 'DenyListingExceptMinter',
      Effect: 'Deny',
      Principal: '*',
      Action: [...BUCKET_LIST_ACTIONS],
      // ListMultipartUploadParts is an object-level action, the others bucket-level.
      Resource: [bucketArn, objectsArn],
      Condition: notMinter,
    },
    {
      // An access point has a policy of its own, which the statements above do not see:
      // requests through one (they carry s3:DataAccessPointArn) are refused outright, so
      // creating an access point on this bucket can delegate nothing. Nobody needs one here.
      Sid: 'DenyAccessPoints',
      Effect: 'Deny',
      Principal: '*',
      Action: ['s3:*'],
      Resource: [bucketArn, objectsArn],
      Condition: { Null: { 's3:DataAccessPointArn': 'false' } },
    },
  );
  return { Version: '2012-10-17', Statement: statements };
}

/** The Sid that marks a bucket policy as a regtoken token store's (see {@link storePrefixOf}). */
const STORE_MARKER_SID = 'DenyOtherTokens';

/**
 * The prefix of the token store a bucket policy protects, when it is a regtoken policy (built
 * by {@link buildTokenBucketPolicy}); undefined for any other policy or text. A bucket policy
 * covers one store: a second prefix in the same bucket would replace it, leaving the first
 * store's tokens open to the bucket's other readers.
 */
export function storePrefixOf(policyText: string, bucket: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(policyText);
  } catch {
    return undefined;
  }
  const statements = (doc as { Statement?: unknown })?.Statement;
  if (!Array.isArray(statements)) return undefined;
  const marker = statements.find((st) => (st as { Sid?: unknown })?.Sid === STORE_MARKER_SID) as
    | { Resource?: unknown }
    | undefined;
  const resources = marker?.Resource;
  const resource = Array.isArray(resources) ? resources[0] : resources;
  if (typeof resource !== 'string') return undefined;
  const m = /^arn:[a-z-]+:s3:::([^/]+)\/(.*)tokens\/\*$/.exec(resource);
  if (!m || m[1] !== bucket) return undefined;
  return (m[2] ?? '').replace(/\/$/, '');
}

/**
 * Size of the policy as S3 counts it against {@link MAX_BUCKET_POLICY_BYTES}: the UTF-8 length
 * of the compact JSON. Pretty-printed JSON would overstate it, so callers should send exactly
 * `JSON.stringify(doc)`.
 */
export function policyBytes(doc: PolicyDocument): number {
  return new TextEncoder().encode(JSON.stringify(doc)).length;
}

/** Code-unit order, not locale order, so the result is the same on every machine. */
function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareCodeUnits);
}
