/**
 * The signing root: a KMS key fit to certify regtoken's tokens, and the key policy that lets
 * one function, and nobody else, sign with it.
 */

import { aws_iam as iam, aws_kms as kms, RemovalPolicy } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/**
 * Creates an asymmetric KMS key fit to be a regtoken root (ECC_NIST_P256, SIGN_VERIFY,
 * retained when removed from the stack). Its key policy lets account administrators manage
 * the key (CDK's key-admin actions, which include no signing); the minter that uses it adds the
 * only `kms:Sign` permission, for its function.
 */
export function createRootKey(scope: Construct, id: string): kms.Key {
  return new kms.Key(scope, id, {
    description: `regtoken signing root (${id}): the registry trusts tokens certified by this key`,
    keySpec: kms.KeySpec.ECC_NIST_P256,
    keyUsage: kms.KeyUsage.SIGN_VERIFY,
    removalPolicy: RemovalPolicy.RETAIN,
    // An explicit policy replaces CDK's default one, which grants the account root `kms:*` and
    // so lets any IAM principal with kms:Sign on "*" sign. Admins get management only.
    policy: new iam.PolicyDocument(),
    admins: [new iam.AccountRootPrincipal()],
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
