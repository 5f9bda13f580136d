/**
 * Asks an independent IAM policy evaluator (@cloud-copilot/iam-simulate) whether a request is
 * allowed, given a resource policy (bucket, topic, key policy) and the caller's identity
 * policies: {@link decideS3} for S3, {@link decide} for any service. moto stores resource
 * policies but never evaluates them, so policy semantics are checked here.
 *
 * The evaluator derives nothing: `aws:PrincipalArn` (for a role session, the role ARN with its
 * path), the object's tags and `aws:SecureTransport` are stated on every request, as AWS
 * would set them. See test/unit/policy.test.ts for how this modelling was validated.
 */

import { anonymousPrincipal, runSimulation } from '@cloud-copilot/iam-simulate';

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

export interface S3Request {
  readonly bucketPolicy: unknown;
  readonly bucket: string;
  readonly bucketAccount: string;
  /** The request principal (a session ARN for role sessions); undefined for anonymous. */
  readonly principal?: string;
  /** What AWS puts in aws:PrincipalArn (role ARN with path for sessions). */
  readonly principalArn?: string;
  readonly action: string;
  /** Object key, or undefined for a bucket-level action. */
  readonly key?: string;
  /** The object's `owner` tag, as the minter set it. */
  readonly ownerTag?: string;
  readonly identityPolicies?: readonly unknown[];
  readonly secureTransport?: boolean;
  readonly blockPublicAccess?: boolean;
  /** More request context, e.g. aws:SourceArn and aws:SourceAccount of a service principal. */
  readonly context?: Readonly<Record<string, string>>;
}

/** An identity policy allowing `actions` on `resources`. */
export function allow(actions: string | string[], resources: string | string[]): unknown {
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: actions, Resource: resources }],
  };
}

/** The evaluator's decision for one S3 request. */
export async function decideS3(req: S3Request): Promise<Decision> {
  const contextVariables: Record<string, string> = {
    'aws:SecureTransport': req.secureTransport === false ? 'false' : 'true',
  };
  if (req.principalArn) contextVariables['aws:PrincipalArn'] = req.principalArn;
  if (req.ownerTag !== undefined) contextVariables['s3:ExistingObjectTag/owner'] = req.ownerTag;
  Object.assign(contextVariables, req.context);
  const resource = req.key ? `arn:aws:s3:::${req.bucket}/${req.key}` : `arn:aws:s3:::${req.bucket}`;
  const r = await runSimulation(
    {
      request: {
        principal: req.principal ?? anonymousPrincipal,
        action: req.action,
        resource: { resource, accountId: req.bucketAccount },
        contextVariables,
      },
      identityPolicies: (req.identityPolicies ?? []).map((policy, i) => ({
        name: `identity-${i}`,
        policy,
      })) as never,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: req.bucketPolicy as never,
      additionalSettings: { s3: { blockPublicAccess: req.blockPublicAccess ?? true } },
    },
    {},
  );
  if (r.resultType !== 'single') throw new Error(`evaluator: ${JSON.stringify(r)}`);
  // A context key the evaluator ignored would silently change the question being asked.
  const ignored = r.result.ignoredContextKeys ?? [];
  const mustUse = ['aws:PrincipalArn', 'aws:SecureTransport'];
  if (req.action === 's3:GetObject') mustUse.push('s3:ExistingObjectTag/owner');
  for (const key of mustUse)
    if (key in contextVariables && ignored.includes(key))
      throw new Error(`evaluator ignored ${key} for ${req.action}`);
  return r.overallResult as Decision;
}

/** A request to any service, for {@link decide}. */
export interface Request {
  /**
   * Who asks: a role session or user ARN, a service principal (`cloudwatch.amazonaws.com`), or
   * undefined for anonymous.
   */
  readonly principal?: string;
  readonly action: string;
  /** The resource ARN, and the account that owns it. */
  readonly resource: string;
  readonly resourceAccount: string;
  readonly resourcePolicy: unknown;
  readonly identityPolicies?: readonly unknown[];
  /**
   * The request context AWS would set: aws:PrincipalArn for a role session, aws:SourceArn and
   * aws:SourceAccount for a service acting for a resource, aws:SecureTransport. Stated, never
   * derived; a key the evaluator ignores fails the call, as in {@link decideS3}.
   */
  readonly context?: Readonly<Record<string, string>>;
}

/** The evaluator's decision for one request to any service. */
export async function decide(req: Request): Promise<Decision> {
  const contextVariables: Record<string, string> = { ...req.context };
  const r = await runSimulation(
    {
      request: {
        principal: req.principal ?? anonymousPrincipal,
        action: req.action,
        resource: { resource: req.resource, accountId: req.resourceAccount },
        contextVariables,
      },
      identityPolicies: (req.identityPolicies ?? []).map((policy, i) => ({
        name: `identity-${i}`,
        policy,
      })) as never,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: req.resourcePolicy as never,
    },
    {},
  );
  if (r.resultType !== 'single') throw new Error(`evaluator: ${JSON.stringify(r)}`);
  const ignored = r.result.ignoredContextKeys ?? [];
  for (const key of Object.keys(contextVariables))
    if (ignored.includes(key)) throw new Error(`evaluator ignored ${key} for ${req.action}`);
  return r.overallResult as Decision;
}
