/**
 * The signing root: a KMS key fit to certify regtoken's tokens, and the key policy that lets
 * one function, and nobody else, sign with it, and named administrators, and nobody else,
 * manage it.
 */

import {
  DefaultStackSynthesizer,
  Fn,
  aws_iam as iam,
  aws_kms as kms,
  RemovalPolicy,
  Stack,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/**
 * What a key administrator may do: CDK's key-admin actions (manage, tag, enable and disable,
 * change the policy, schedule deletion), none of which signs. An administrator could still
 * rewrite the key policy and so remove the `NobodyElseSigns` deny: which is why these go to
 * named principals only, never to the account (so never to any role that IAM allows `kms:*`).
 */
const ADMIN_ACTIONS = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

/**
 * The role CloudFormation deploys `scope`'s stack with (the CDK bootstrap's execution role), or
 * undefined when its synthesizer does not use one (then the caller's credentials deploy).
 */
export function deploymentRoleArn(scope: Construct): string | undefined {
  const synthesizer = Stack.of(scope).synthesizer;
  // The ARN keeps CloudFormation's ${AWS::Partition} placeholder, which only Fn::Sub expands.
  return synthesizer instanceof DefaultStackSynthesizer
    ? Fn.sub(synthesizer.cloudFormationExecutionRoleArn)
    : undefined;
}

/**
 * Creates an asymmetric KMS key fit to be a regtoken root (ECC_NIST_P256, SIGN_VERIFY,
 * retained when removed from the stack). Its key policy lets named administrators manage the
 * key, and nobody else: the role that deploys the stack (which must keep the right to update
 * the policy, or KMS refuses it) and `admins`. The account as a whole gets nothing, so a role
 * with broad KMS rights from IAM alone (PowerUserAccess) can neither administer the key nor
 * sign. The minter that uses the key adds the only `kms:Sign` permission, for its function
 * ({@link allowOnlyToSign}).
 *
 * Throws when the stack's synthesizer deploys without an execution role and no admin is given:
 * nobody could ever change the key policy again.
 */
export function createRootKey(
  scope: Construct,
  id: string,
  admins: readonly iam.IRole[] = [],
): kms.Key {
  const deployer = deploymentRoleArn(scope);
  const principals = [
    ...(deployer ? [new iam.ArnPrincipal(deployer)] : []),
    ...admins.map((r) => new iam.ArnPrincipal(r.roleArn)),
  ];
  if (principals.length === 0)
    throw new Error(
      `createRootKey ${id}: the stack deploys without a CloudFormation execution role; name a key administrator role`,
    );
  // An explicit policy replaces CDK's default one, which grants the account root `kms:*` and
  // so lets any IAM principal with KMS rights administer the key, grant itself use, and sign.
  const policy = new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'KeyAdministration',
        principals,
        actions: ADMIN_ACTIONS,
        resources: ['*'],
      }),
    ],
  });
  return new kms.Key(scope, id, {
    description: `regtoken signing root (${id}): the registry trusts tokens certified by this key`,
    keySpec: kms.KeySpec.ECC_NIST_P256,
    keyUsage: kms.KeyUsage.SIGN_VERIFY,
    removalPolicy: RemovalPolicy.RETAIN,
    policy,
  });
}

/** The identity statement that lets the function sign with `keys` (and read their public keys). */
export function signingStatement(sid: string, keys: readonly kms.IKey[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: ['kms:GetPublicKey', 'kms:Sign'],
    resources: keys.map((k) => k.keyArn),
  });
}

/**
 * For a key created in this stack: the key policy lets the functions (their roles `signers`) use
 * the key and denies `kms:Sign` to every other principal, grants included. The function is named in
 * conditions on `aws:PrincipalArn`, not as a Principal: KMS rejects a policy naming a role IAM
 * has not propagated yet, which a role created in the same deployment may be. So the account is
 * the principal, and the function's identity statement ({@link signingStatement}) completes the
 * grant. Keys from elsewhere keep their own policy (addToResourcePolicy is a no-op on them).
 */
export function allowOnlyToSign(key: kms.IKey, signers: readonly iam.IRole[]): void {
  if (!(key instanceof kms.Key)) return;
  const arns = signers.map((s) => s.roleArn);
  const isFunction = { 'aws:PrincipalArn': arns.length === 1 ? arns[0] : arns };
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'MinterSigns',
      principals: [new iam.AccountRootPrincipal()],
      actions: ['kms:GetPublicKey', 'kms:Sign'],
      resources: ['*'],
      conditions: { ArnEquals: isFunction },
    }),
  );
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'NobodyElseSigns',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:Sign'],
      resources: ['*'],
      conditions: { ArnNotEquals: isFunction },
    }),
  );
}
