/**
 * The token bucket policy, checked against an independent IAM evaluator
 * (@cloud-copilot/iam-simulate) rather than against our own reading of it: moto stores bucket
 * policies but never evaluates them.
 *
 * How requests are modelled (the evaluator takes what it is given and derives nothing):
 * - `aws:PrincipalArn` is NOT filled in by the evaluator from the request principal, so every
 *   caller below states it: for IAM users and roles the ARN itself, for a role session (an
 *   `sts::…:assumed-role/NAME/SESSION` principal, AssumeRole or EC2 instance profile alike) the
 *   ROLE ARN with its IAM path, as AWS documents. The session ARN is still the request principal,
 *   so the evaluator's principal matching (account root → session's account) is its own.
 * - The object's `owner` tag is passed as `s3:ExistingObjectTag/owner`, exactly as the minter
 *   sets it; untagged objects simply lack the key.
 * - `aws:SecureTransport` is always present, as on every real S3 request.
 * - Anonymous callers use the evaluator's `anonymousPrincipal` (no identity policies allowed).
 * - Block Public Access uses `additionalSettings.s3.blockPublicAccess` (RestrictPublicBuckets);
 *   the whole table runs with it off and on.
 */

import {
  anonymousPrincipal,
  type EvaluationResult,
  runSimulation,
  type Simulation,
  type SimulationRequestPrincipal,
} from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from '@jest/globals';
import {
  buildTokenBucketPolicy,
  MAX_BUCKET_POLICY_BYTES,
  type PolicyDocument,
  policyBytes,
  storePrefixOf,
  type TokenBucketPolicyInput,
} from '../../lambda/core/policy.js';
import { parsePrincipal, tokenKey } from '../../lambda/core/principal.js';

const BUCKET = 'tokens-bucket';
const BUCKET_ACCOUNT = '111122223333';
const MINTER = 'arn:aws:iam::111122223333:role/regtoken-minter';
const INPUT: TokenBucketPolicyInput = {
  bucket: BUCKET,
  prefix: '',
  partition: 'aws',
  readerAccounts: ['444455556666', '111122223333'],
  minterArns: [MINTER],
};
const POLICY = buildTokenBucketPolicy(INPUT);

const ARN = {
  ci: 'arn:aws:iam::111122223333:role/ci-runner',
  web: 'arn:aws:iam::111122223333:role/web/ec2-web',
  alice: 'arn:aws:iam::111122223333:user/alice',
  bob: 'arn:aws:iam::111122223333:user/bob',
  xRole: 'arn:aws:iam::444455556666:role/deployer',
  xUser: 'arn:aws:iam::444455556666:user/carol',
  outsider: 'arn:aws:iam::999988887777:role/deployer',
} as const;

interface Caller {
  /** The request principal as the evaluator sees it. */
  readonly principal: SimulationRequestPrincipal;
  /** What AWS puts in `aws:PrincipalArn`; absent for anonymous requests. */
  readonly principalArn?: string;
}
const CALLERS = {
  ci: { principal: ARN.ci, principalArn: ARN.ci },
  web: { principal: ARN.web, principalArn: ARN.web },
  // A session ARN has no IAM path, yet aws:PrincipalArn is the role ARN WITH path.
  webSession: {
    principal: 'arn:aws:sts::111122223333:assumed-role/ec2-web/deploy-1',
    principalArn: ARN.web,
  },
  webInstance: {
    principal: 'arn:aws:sts::111122223333:assumed-role/ec2-web/i-0abc',
    principalArn: ARN.web,
  },
  alice: { principal: ARN.alice, principalArn: ARN.alice },
  bob: { principal: ARN.bob, principalArn: ARN.bob },
  xRole: { principal: ARN.xRole, principalArn: ARN.xRole },
  xRoleSession: {
    principal: 'arn:aws:sts::444455556666:assumed-role/deployer/gha-42',
    principalArn: ARN.xRole,
  },
  xUser: { principal: ARN.xUser, principalArn: ARN.xUser },
  outsider: { principal: ARN.outsider, principalArn: ARN.outsider },
  anonymous: { principal: anonymousPrincipal },
  minter: { principal: MINTER, principalArn: MINTER },
} satisfies Record<string, Caller>;
type CallerName = keyof typeof CALLERS;

/** A token object as the minter writes it: key from tokenKey(), `owner` tag = configured ARN. */
function tokenOf(arn: string): { key: string; owner: string } {
  const p = parsePrincipal(arn);
  if (!p.ok) throw new Error(p.reason);
  return { key: tokenKey(p.value), owner: arn };
}
const OBJECTS = {
  bucket: undefined, // the bucket itself, for ListBucket and bucket management actions
  ciToken: tokenOf(ARN.ci),
  webToken: tokenOf(ARN.web),
  aliceToken: tokenOf(ARN.alice),
  bobToken: tokenOf(ARN.bob),
  xRoleToken: tokenOf(ARN.xRole),
  xUserToken: tokenOf(ARN.xUser),
  // Would only exist if the account had been configured once; the owner tag alone must not help.
  outsiderToken: tokenOf(ARN.outsider),
  untagged: { key: 'tokens/111122223333/role/untagged.json', owner: undefined },
  trustBundle: { key: 'trust/bundle.pem', owner: undefined },
  // A fanned-out run's shard file (principals and their access) and the run lock.
  shardFile: { key: 'state/runs/r-1/shard-0001.json', owner: undefined },
  lock: { key: 'state/lock.json', owner: undefined },
} satisfies Record<string, { key: string; owner: string | undefined } | undefined>;
type ObjectName = keyof typeof OBJECTS;

const allow = (Action: string[], Resource: string[]) => [
  {
    name: 'identity',
    policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action, Resource }] },
  },
];
/** Identity-side policies attached to the caller (in the caller's own account). */
const IDENTITY = {
  none: [],
  getTokens: allow(['s3:GetObject'], [`arn:aws:s3:::${BUCKET}/tokens/*`]),
  getProdTokens: allow(['s3:GetObject'], [`arn:aws:s3:::${BUCKET}/prod/tokens/*`]),
  's3:*': allow(['s3:*'], ['*']),
  minter: allow(
    [
      's3:PutObject',
      's3:PutObjectTagging',
      's3:GetObject',
      's3:GetObjectTagging',
      's3:DeleteObject',
      's3:ListBucket',
    ],
    [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`],
  ),
  // What CDK's bucket.grantReadWrite() attaches: no bucket-policy rights, only object rights.
  cdkReadWrite: allow(
    [
      's3:GetObject*',
      's3:GetBucket*',
      's3:List*',
      's3:DeleteObject*',
      's3:PutObject',
      's3:PutObjectLegalHold',
      's3:PutObjectRetention',
      's3:PutObjectTagging',
      's3:PutObjectVersionTagging',
      's3:Abort*',
    ],
    [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`],
  ),
  replication: allow(['s3:Replicate*'], [`arn:aws:s3:::${BUCKET}/*`]),
} satisfies Record<string, Simulation['identityPolicies']>;
type IdentityName = keyof typeof IDENTITY;
type Transport = 'tls' | 'plain';

interface Outcome {
  readonly result: EvaluationResult;
  readonly blockedBy: readonly string[] | undefined;
}

/** Runs one request through the evaluator; an evaluator error (bad policy, bad action) throws. */
async function decide(
  policy: PolicyDocument,
  callerName: CallerName,
  objectName: ObjectName | { key: string; owner: string | undefined },
  action: string,
  identity: IdentityName,
  transport: Transport = 'tls',
  blockPublicAccess = false,
): Promise<Outcome> {
  const caller: Caller = CALLERS[callerName];
  const object = typeof objectName === 'string' ? OBJECTS[objectName] : objectName;
  const contextVariables: Record<string, string> = {
    'aws:SecureTransport': transport === 'tls' ? 'true' : 'false',
  };
  if (caller.principalArn !== undefined) contextVariables['aws:PrincipalArn'] = caller.principalArn;
  if (object?.owner !== undefined) contextVariables['s3:ExistingObjectTag/owner'] = object.owner;
  const r = await runSimulation(
    {
      request: {
        principal: caller.principal,
        action,
        resource: {
          resource: object ? `arn:aws:s3:::${BUCKET}/${object.key}` : `arn:aws:s3:::${BUCKET}`,
          accountId: BUCKET_ACCOUNT,
        },
        contextVariables,
      },
      identityPolicies: IDENTITY[identity],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: policy,
      additionalSettings: { s3: { blockPublicAccess } },
    },
    {},
  );
  if (r.resultType === 'error') throw new Error(`evaluator refused: ${JSON.stringify(r.errors)}`);
  if (r.resultType !== 'single') throw new Error(`unexpected ${r.resultType} result`);
  // A context key the evaluator drops would silently change the question being asked.
  const ignored = r.result.ignoredContextKeys ?? [];
  expect(ignored).not.toContain('aws:PrincipalArn');
  expect(ignored).not.toContain('aws:SecureTransport');
  if (action === 's3:GetObject') expect(ignored).not.toContain('s3:ExistingObjectTag/owner');
  return { result: r.overallResult, blockedBy: r.result.analysis.blockedBy };
}

type Row = readonly [CallerName, string, ObjectName, IdentityName, Transport, EvaluationResult];
const A = 'Allowed';
const I = 'ImplicitlyDenied';
const X = 'ExplicitlyDenied';

// principal × action × object × identity policy × transport → decision. One line per case.
const TABLE: readonly Row[] = [
  // same-account role with the documented identity grant (s3:GetObject on tokens/*)
  ['ci', 's3:GetObject', 'ciToken', 'getTokens', 'tls', A],
  ['ci', 's3:GetObject', 'aliceToken', 'getTokens', 'tls', X],
  ['ci', 's3:GetObject', 'ciToken', 'none', 'tls', I], // same-account readers NEED an identity grant
  // same-account role with s3:* on *: the bucket's Denies still hold for object access
  ['ci', 's3:GetObject', 'ciToken', 's3:*', 'tls', A],
  ['ci', 's3:GetObject', 'aliceToken', 's3:*', 'tls', X],
  ['ci', 's3:GetObjectVersion', 'aliceToken', 's3:*', 'tls', X],
  ['ci', 's3:GetObjectTagging', 'aliceToken', 's3:*', 'tls', X],
  ['ci', 's3:GetObjectAttributes', 'aliceToken', 's3:*', 'tls', X],
  ['ci', 's3:ListBucket', 'bucket', 's3:*', 'tls', X],
  ['ci', 's3:ListBucketVersions', 'bucket', 's3:*', 'tls', X],
  ['ci', 's3:PutObject', 'aliceToken', 's3:*', 'tls', X],
  ['ci', 's3:PutObject', 'trustBundle', 's3:*', 'tls', X],
  ['ci', 's3:PutObjectTagging', 'aliceToken', 's3:*', 'tls', X],
  ['ci', 's3:PutObjectTagging', 'ciToken', 's3:*', 'tls', X],
  ['ci', 's3:DeleteObject', 'ciToken', 's3:*', 'tls', X],
  ['ci', 's3:DeleteObject', 'trustBundle', 's3:*', 'tls', X],
  // by design, bucket management stays open to same-account admins (they can repair the policy,
  // and so can also rewrite it: s3:* on * is an admin of this bucket, not a contained reader)
  ['ci', 's3:PutBucketPolicy', 'bucket', 's3:*', 'tls', A],
  // role with an IAM path, directly and through sessions (AssumeRole, EC2 instance profile)
  ['web', 's3:GetObject', 'webToken', 'getTokens', 'tls', A],
  ['webSession', 's3:GetObject', 'webToken', 'getTokens', 'tls', A],
  ['webInstance', 's3:GetObject', 'webToken', 'getTokens', 'tls', A],
  ['webInstance', 's3:GetObject', 'ciToken', 'getTokens', 'tls', X],
  ['webInstance', 's3:GetObject', 'webToken', 'none', 'tls', I],
  // IAM users
  ['alice', 's3:GetObject', 'aliceToken', 'getTokens', 'tls', A],
  ['alice', 's3:GetObject', 'bobToken', 'getTokens', 'tls', X],
  ['bob', 's3:GetObject', 'bobToken', 'none', 'tls', I],
  // cross-account (444455556666): bucket Allow + own identity grant
  ['xRole', 's3:GetObject', 'xRoleToken', 'getTokens', 'tls', A],
  ['xRoleSession', 's3:GetObject', 'xRoleToken', 'getTokens', 'tls', A],
  ['xUser', 's3:GetObject', 'xUserToken', 'getTokens', 'tls', A],
  ['xRole', 's3:GetObject', 'xRoleToken', 'none', 'tls', I],
  ['xRole', 's3:GetObject', 'xUserToken', 'getTokens', 'tls', X],
  ['xRole', 's3:GetObject', 'ciToken', 's3:*', 'tls', X],
  ['xRole', 's3:GetObjectTagging', 'xRoleToken', 's3:*', 'tls', I], // only GetObject is granted
  ['xRole', 's3:PutObject', 'xRoleToken', 's3:*', 'tls', X],
  ['xRole', 's3:PutObject', 'trustBundle', 's3:*', 'tls', X],
  ['xRole', 's3:ListBucket', 'bucket', 's3:*', 'tls', X],
  // an account that is not a reader account, even with a token tagged for it
  ['outsider', 's3:GetObject', 'outsiderToken', 'getTokens', 'tls', I],
  ['outsider', 's3:GetObject', 'ciToken', 's3:*', 'tls', X],
  // anonymous: no Allow names it. On a tagged token the read Deny does NOT apply (its
  // ${aws:PrincipalArn} cannot be resolved, so StringNotEquals is false); on an untagged object
  // it does (a missing key matches a negated operator before any value is looked at), and so do
  // the write/list Denies (a missing aws:PrincipalArn is "not the minter").
  ['anonymous', 's3:GetObject', 'ciToken', 'none', 'tls', I],
  ['anonymous', 's3:GetObject', 'untagged', 'none', 'tls', X],
  ['anonymous', 's3:ListBucket', 'bucket', 'none', 'tls', X],
  ['anonymous', 's3:PutObject', 'trustBundle', 'none', 'tls', X],
  // the minter (with its identity policy) writes, lists and reads everything
  ['minter', 's3:PutObject', 'ciToken', 'minter', 'tls', A],
  ['minter', 's3:PutObjectTagging', 'xUserToken', 'minter', 'tls', A],
  ['minter', 's3:PutObject', 'trustBundle', 'minter', 'tls', A],
  ['minter', 's3:DeleteObject', 'aliceToken', 'minter', 'tls', A],
  ['minter', 's3:ListBucket', 'bucket', 'minter', 'tls', A],
  ['minter', 's3:GetObject', 'ciToken', 'minter', 'tls', A],
  ['minter', 's3:GetObject', 'xUserToken', 'minter', 'tls', A],
  ['minter', 's3:GetObject', 'untagged', 'minter', 'tls', A],
  ['minter', 's3:GetObject', 'ciToken', 'none', 'tls', I], // the bucket grants the minter nothing
  // an object with no owner tag: closed to everyone but the minter
  ['ci', 's3:GetObject', 'untagged', 'getTokens', 'tls', X],
  ['ci', 's3:GetObject', 'untagged', 's3:*', 'tls', X],
  ['xRole', 's3:GetObject', 'untagged', 'getTokens', 'tls', X],
  // the run state (a fanned-out run's shard files, the lock): the minters' only
  ['ci', 's3:GetObject', 'shardFile', 's3:*', 'tls', X],
  ['ci', 's3:GetObjectAttributes', 'shardFile', 's3:*', 'tls', X],
  ['ci', 's3:GetObject', 'lock', 's3:*', 'tls', X],
  ['webInstance', 's3:GetObject', 'shardFile', 's3:*', 'tls', X],
  ['xRole', 's3:GetObject', 'shardFile', 's3:*', 'tls', X],
  ['xRole', 's3:GetObject', 'shardFile', 'getTokens', 'tls', X],
  ['anonymous', 's3:GetObject', 'shardFile', 'none', 'tls', X],
  ['minter', 's3:GetObject', 'shardFile', 'minter', 'tls', A],
  ['minter', 's3:PutObject', 'shardFile', 'minter', 'tls', A],
  // plain HTTP is refused to everyone, owner and minter included
  ['ci', 's3:GetObject', 'ciToken', 'getTokens', 'plain', X],
  ['xRole', 's3:GetObject', 'xRoleToken', 'getTokens', 'plain', X],
  ['minter', 's3:PutObject', 'ciToken', 'minter', 'plain', X],
];

describe.each([false, true])('token bucket policy (Block Public Access %s)', (bpa) => {
  it.each(TABLE)(
    '%s %s %s [identity %s, %s] → %s',
    async (caller, action, object, identity, transport, expected) => {
      const outcome = await decide(POLICY, caller, object, action, identity, transport, bpa);
      expect(outcome.result).toBe(expected);
      // The policy is not public, so BPA never has to step in.
      expect(outcome.blockedBy ?? []).not.toContain('s3-bpa');
    },
  );
});

/** What the attack does, caller, action, object, identity policy, decision today, secure one. */
type HoleRow = readonly [
  string,
  CallerName,
  string,
  ObjectName,
  IdentityName,
  EvaluationResult,
  EvaluationResult,
];
/**
 * Holes in the decided action lists, found with the evaluator. Each row records what the
 * evaluator says TODAY (an attack that succeeds) next to what it should say. Once the lists are
 * fixed, flip `today` to `secure`; the test then guards the fix.
 */
const KNOWN_HOLES: readonly HoleRow[] = [
  // re-tag someone else's token as your own (versionId=null works on an unversioned bucket)
  ['take over a token', 'ci', 's3:PutObjectVersionTagging', 'aliceToken', 'cdkReadWrite', A, X],
  ['lock the owner out', 'ci', 's3:DeleteObjectVersionTagging', 'aliceToken', 'cdkReadWrite', A, X],
  // a same-account replication role (source bucket of the caller's choosing) plants objects
  ['plant a trust bundle', 'ci', 's3:ReplicateObject', 'trustBundle', 'replication', A, X],
  ['plant an owner tag', 'ci', 's3:ReplicateTags', 'aliceToken', 'replication', A, X],
  ['delete by replication', 'ci', 's3:ReplicateDelete', 'aliceToken', 'replication', A, X],
  ['change encryption', 'ci', 's3:UpdateObjectEncryption', 'aliceToken', 's3:*', A, X],
  // low risk: needs a replication rule on this bucket (bucket admin) or a multipart upload
  ['read by replication', 'ci', 's3:GetObjectVersionForReplication', 'aliceToken', 's3:*', A, X],
  ['list upload parts', 'ci', 's3:ListMultipartUploadParts', 'aliceToken', 's3:*', A, X],
];

describe('actions a named list would miss are denied too (the lists use wildcards)', () => {
  it.each(KNOWN_HOLES)(
    '%s: %s %s %s [identity %s] was %s with named lists, is %s',
    async (_what, caller, action, object, identity, _named, secure) => {
      expect((await decide(POLICY, caller, object, action, identity)).result).toBe(secure);
    },
  );

  it('a role with read-write rights cannot re-tag another principal’s token as its own', async () => {
    expect(
      (await decide(POLICY, 'ci', 'aliceToken', 's3:PutObjectVersionTagging', 'cdkReadWrite'))
        .result,
    ).toBe(X);
    expect(
      (await decide(POLICY, 'ci', 'aliceToken', 's3:PutObjectTagging', 'cdkReadWrite')).result,
    ).toBe(X);
  });
});

describe('evaluator behaviour the table relies on', () => {
  it('does not derive aws:PrincipalArn from the principal, so every caller states it', async () => {
    // Without the key the Deny's ${aws:PrincipalArn} cannot resolve, StringNotEquals is false,
    // and an s3:* identity reads someone else's token. On AWS the key is always present for
    // IAM users, roles and sessions; the table never leaves it out.
    const r = await runSimulation(
      {
        request: {
          principal: ARN.ci,
          action: 's3:GetObject',
          resource: {
            resource: `arn:aws:s3:::${BUCKET}/${OBJECTS.aliceToken.key}`,
            accountId: BUCKET_ACCOUNT,
          },
          contextVariables: {
            'aws:SecureTransport': 'true',
            's3:ExistingObjectTag/owner': ARN.alice,
          },
        },
        identityPolicies: IDENTITY['s3:*'],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: POLICY,
      },
      {},
    );
    expect(r.resultType === 'single' && r.overallResult).toBe(A);
  });

  it('treats a missing owner tag as "not equal", so the read Deny covers untagged objects', async () => {
    expect((await decide(POLICY, 'ci', 'untagged', 's3:GetObject', 's3:*')).result).toBe(X);
  });
});

describe('Block Public Access', () => {
  it('names only fixed account roots as principals of Allow statements', () => {
    const allows = POLICY.Statement.filter((s) => s.Effect === 'Allow');
    expect(allows).toHaveLength(1);
    for (const s of allows) {
      expect(s.Principal).not.toBe('*');
      const aws = s.Principal === '*' ? [] : s.Principal.AWS;
      expect(aws.length).toBeGreaterThan(0);
      for (const p of aws) expect(p).toMatch(/^arn:aws:iam::\d{12}:root$/);
    }
  });

  it('is live in the evaluator: a Principal "*" variant of the Allow is blocked cross-account', async () => {
    // Control: proves the BPA runs above would have caught a public policy.
    const pub: PolicyDocument = {
      ...POLICY,
      Statement: POLICY.Statement.map((s) =>
        s.Effect === 'Allow' ? { ...s, Principal: '*' as const } : s,
      ),
    };
    const off = await decide(pub, 'xRole', 'xRoleToken', 's3:GetObject', 'getTokens', 'tls', false);
    const on = await decide(pub, 'xRole', 'xRoleToken', 's3:GetObject', 'getTokens', 'tls', true);
    expect(off.result).toBe(A);
    expect(on).toEqual({ result: X, blockedBy: ['s3-bpa'] });
  });
});

describe('buildTokenBucketPolicy', () => {
  it('has the six statements in a fixed order', () => {
    expect(POLICY.Statement.map((s) => s.Sid)).toEqual([
      'TlsOnly',
      'ReadOwnToken',
      'DenyOtherTokens',
      'DenyRunStateExceptMinter',
      'DenyWritesExceptMinter',
      'DenyListingExceptMinter',
      'DenyAccessPoints',
    ]);
    expect(POLICY.Statement[1]).toMatchObject({
      Principal: { AWS: ['arn:aws:iam::111122223333:root', 'arn:aws:iam::444455556666:root'] },
      Action: ['s3:GetObject'],
      Resource: ['arn:aws:s3:::tokens-bucket/tokens/*'],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
      Condition: { StringEquals: { 's3:ExistingObjectTag/owner': '${aws:PrincipalArn}' } },
    });
  });

  it('stays under 20 KB for 10,000 principals and does not grow with their number', () => {
    const arns = Array.from({ length: 10_000 }, (_, i) => {
      const account = String(100000000000 + (i % 50) * 7919);
      return `arn:aws:iam::${account}:${i % 3 ? 'role/team/svc' : 'user/u'}-${i}`;
    });
    expect(new Set(arns).size).toBe(10_000);
    const accountsOf = (list: readonly string[]) =>
      list.map((a) => {
        const p = parsePrincipal(a);
        if (!p.ok) throw new Error(p.reason);
        return p.value.account;
      });
    const many = buildTokenBucketPolicy({ ...INPUT, readerAccounts: accountsOf(arns) });
    const few = buildTokenBucketPolicy({ ...INPUT, readerAccounts: accountsOf(arns.slice(0, 50)) });
    const reader = many.Statement.find((s) => s.Sid === 'ReadOwnToken');
    expect(reader?.Principal !== '*' && reader?.Principal.AWS).toHaveLength(50);
    expect(policyBytes(many)).toBeLessThan(MAX_BUCKET_POLICY_BYTES);
    expect(policyBytes(many)).toBe(policyBytes(few));
    expect(JSON.stringify(many)).toBe(JSON.stringify(few));
  });

  it('measures UTF-8 bytes of the compact JSON', () => {
    expect(policyBytes(POLICY)).toBe(Buffer.byteLength(JSON.stringify(POLICY), 'utf8'));
  });

  it('is deterministic: order and duplicates of the input do not matter', () => {
    const minters = [MINTER, 'arn:aws:iam::111122223333:user/break-glass'];
    const a = buildTokenBucketPolicy({
      ...INPUT,
      readerAccounts: ['444455556666', '111122223333', '444455556666'],
      minterArns: minters,
    });
    const b = buildTokenBucketPolicy({
      ...INPUT,
      readerAccounts: ['111122223333', '444455556666'],
      minterArns: [...minters].reverse().concat(MINTER),
    });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(buildTokenBucketPolicy(INPUT))).toBe(JSON.stringify(POLICY));
  });

  it('exempts every minter and nobody else', async () => {
    const twoMinters = buildTokenBucketPolicy({
      ...INPUT,
      minterArns: [MINTER, ARN.alice],
    });
    expect((await decide(twoMinters, 'alice', 'ciToken', 's3:GetObject', 's3:*')).result).toBe(A);
    expect((await decide(twoMinters, 'alice', 'trustBundle', 's3:PutObject', 's3:*')).result).toBe(
      A,
    );
    expect((await decide(twoMinters, 'minter', 'ciToken', 's3:PutObject', 'minter')).result).toBe(
      A,
    );
    expect((await decide(twoMinters, 'bob', 'ciToken', 's3:PutObject', 's3:*')).result).toBe(X);
  });

  it('puts tokens under the prefix', async () => {
    const prod = buildTokenBucketPolicy({ ...INPUT, prefix: 'prod' });
    const tokenStatements = prod.Statement.filter(
      (s) => s.Sid === 'ReadOwnToken' || s.Sid === 'DenyOtherTokens',
    );
    for (const s of tokenStatements)
      expect(s.Resource).toEqual(['arn:aws:s3:::tokens-bucket/prod/tokens/*']);
    expect(prod.Statement.find((s) => s.Sid === 'DenyRunStateExceptMinter')?.Resource).toEqual([
      'arn:aws:s3:::tokens-bucket/prod/state/*',
    ]);
    expect(prod.Statement.find((s) => s.Sid === 'DenyWritesExceptMinter')?.Resource).toEqual([
      'arn:aws:s3:::tokens-bucket/*',
    ]);
    const own = { key: `prod/${OBJECTS.xRoleToken.key}`, owner: ARN.xRole };
    expect((await decide(prod, 'xRole', own, 's3:GetObject', 'getProdTokens')).result).toBe(A);
    expect((await decide(prod, 'ci', own, 's3:GetObject', 's3:*')).result).toBe(X);
    // The un-prefixed location is outside the bucket's Allow.
    expect((await decide(prod, 'xRole', 'xRoleToken', 's3:GetObject', 's3:*')).result).toBe(I);
    const nested = buildTokenBucketPolicy({ ...INPUT, prefix: 'env/prod' });
    expect(nested.Statement[1]?.Resource).toEqual(['arn:aws:s3:::tokens-bucket/env/prod/tokens/*']);
  });

  it('uses the partition everywhere', () => {
    const json = JSON.stringify(
      buildTokenBucketPolicy({
        ...INPUT,
        partition: 'aws-cn',
        minterArns: ['arn:aws-cn:iam::111122223333:role/m'],
      }),
    );
    expect(json).toContain('arn:aws-cn:s3:::tokens-bucket/tokens/*');
    expect(json).toContain('arn:aws-cn:iam::444455556666:root');
    expect(json).not.toContain('arn:aws:');
  });

  it('leaves out the Allow when there are no reader accounts, keeping the Denies', async () => {
    const none = buildTokenBucketPolicy({ ...INPUT, readerAccounts: [] });
    expect(none.Statement.map((s) => s.Sid)).toEqual([
      'TlsOnly',
      'DenyOtherTokens',
      'DenyRunStateExceptMinter',
      'DenyWritesExceptMinter',
      'DenyListingExceptMinter',
      'DenyAccessPoints',
    ]);
    expect((await decide(none, 'xRole', 'xRoleToken', 's3:GetObject', 'getTokens')).result).toBe(I);
    expect((await decide(none, 'ci', 'aliceToken', 's3:GetObject', 's3:*')).result).toBe(X);
    expect((await decide(none, 'minter', 'ciToken', 's3:PutObject', 'minter')).result).toBe(A);
  });

  it.each([
    [{ minterArns: [] }, 'no minter ARN'],
    [{ readerAccounts: ['12345'] }, 'reader account "12345" must be 12 digits'],
    [{ readerAccounts: ['11112222333a'] }, 'must be 12 digits'],
    [{ bucket: '' }, 'bucket name is empty'],
    [{ bucket: 'tokens-*' }, 'bucket name "tokens-*"'],
    [{ prefix: '/prod' }, 'prefix "/prod"'],
    [{ prefix: 'prod/' }, 'prefix "prod/"'],
    [{ prefix: 'a//b' }, 'prefix "a//b"'],
    [{ prefix: 'p*' }, 'prefix "p*"'],
    [{ prefix: '$' + '{aws:username}' }, 'prefix'],
    [{ minterArns: ['arn:aws:iam::111122223333:role/*'] }, 'contains a wildcard'],
    [{ minterArns: ['arn:aws:sts::111122223333:assumed-role/m/s'] }, 'name the role instead'],
    [{ minterArns: ['arn:aws-cn:iam::111122223333:role/m'] }, 'partition "aws-cn"'],
  ] as const)('refuses %j', (patch, message) => {
    expect(() => buildTokenBucketPolicy({ ...INPUT, ...patch })).toThrow(message);
  });
});

describe('access points', () => {
  // The evaluator does not model requests through access points (it ignores
  // s3:DataAccessPointArn), so the statement is checked as written; docs/aws.md says so.
  it('refuses every request that comes through an access point, the minter included', () => {
    expect(POLICY.Statement.find((s) => s.Sid === 'DenyAccessPoints')).toEqual({
      Sid: 'DenyAccessPoints',
      Effect: 'Deny',
      Principal: '*',
      Action: ['s3:*'],
      Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`],
      Condition: { Null: { 's3:DataAccessPointArn': 'false' } },
    });
  });
});

describe('storePrefixOf: which token store a bucket policy protects', () => {
  const policyFor = (prefix: string) =>
    JSON.stringify(buildTokenBucketPolicy({ ...INPUT, prefix }));
  it.each([
    ['the root store', policyFor(''), BUCKET, ''],
    ['a store under a prefix', policyFor('prod'), BUCKET, 'prod'],
    ['a store under a deeper prefix', policyFor('a/b'), BUCKET, 'a/b'],
    ["another bucket's policy", policyFor('prod'), 'other-bucket', undefined],
    [
      "a policy that is not regtoken's",
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'X', Effect: 'Allow' }] }),
      BUCKET,
      undefined,
    ],
    ['no JSON', 'not json', BUCKET, undefined],
  ])('%s', (_name, text, bucket, prefix) => {
    expect(storePrefixOf(text, bucket)).toBe(prefix);
  });
});
