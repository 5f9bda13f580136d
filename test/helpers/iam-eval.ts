/**
 * Asks an independent IAM policy evaluator (@cloud-copilot/iam-simulate) whether an S3 request
 * is allowed, given a bucket policy and the caller's identity policies. moto stores bucket
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
