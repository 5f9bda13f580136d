/**
 * STS: who the caller is. One `GetCallerIdentity` call, which needs no permission at all, so it
 * tells "no or bad credentials" apart from "not granted".
 */

import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { StoreError } from '../errors.js';
import { credentialsError, describeAwsError } from './aws.js';

/** The account of the access key each STS client last asked about (see {@link StsCallerIdentity.account}). */
const accounts = new WeakMap<STSClient, { keyId: string; account: string }>();

/** The caller's identity as STS reports it. */
export class StsCallerIdentity {
  constructor(private readonly sts: STSClient) {}

  /** The caller ARN (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, `arn:aws:iam::ACCOUNT:user/NAME`, …). */
  async callerArn(): Promise<string> {
    return (await this.identity()).arn;
  }

  /**
   * The access key id of the credentials the SDK resolved for this client (the same ones its
   * calls sign with). Resolving may itself call AWS (an SSO or assume-role profile) or the
   * instance metadata; it calls STS for nothing.
   */
  async accessKeyId(): Promise<string> {
    try {
      return (await this.sts.config.credentials()).accessKeyId;
    } catch (err) {
      throw (
        credentialsError(err) ??
        new StoreError(describeAwsError(err, 'AWS credentials'), { cause: err })
      );
    }
  }

  /**
   * The caller's account. An access key belongs to one user or role, so to one account: it is
   * asked of STS once per access key and client, and a warm Lambda container (whose client
   * lives across invocations) asks once. Credentials that cannot be resolved are left to the
   * STS call, which reports them as before.
   */
  async account(): Promise<string> {
    const keyId = await this.accessKeyId().catch(() => undefined);
    const known = accounts.get(this.sts);
    if (keyId !== undefined && known?.keyId === keyId) return known.account;
    const { account } = await this.identity();
    if (keyId !== undefined) accounts.set(this.sts, { keyId, account });
    return account;
  }

  private async identity(): Promise<{ arn: string; account: string }> {
    try {
      const r = await this.sts.send(new GetCallerIdentityCommand({}));
      if (!r.Arn || !r.Account)
        throw new StoreError('sts:GetCallerIdentity returned no ARN or account');
      return { arn: r.Arn, account: r.Account };
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw (
        credentialsError(err) ??
        new StoreError(describeAwsError(err, 'sts:GetCallerIdentity'), { cause: err })
      );
    }
  }
}
