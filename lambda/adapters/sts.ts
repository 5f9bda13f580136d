/**
 * STS: who the caller is. One `GetCallerIdentity` call, which needs no permission at all, so it
 * tells "no or bad credentials" apart from "not granted".
 */

import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { StoreError } from '../errors.js';
import { credentialsError, describeAwsError } from './aws.js';

/** The caller's identity as STS reports it. */
export class StsCallerIdentity {
  constructor(private readonly sts: STSClient) {}

  /** The caller ARN (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, `arn:aws:iam::ACCOUNT:user/NAME`, …). */
  async callerArn(): Promise<string> {
    return (await this.identity()).arn;
  }

  /** The caller's account. */
  async account(): Promise<string> {
    return (await this.identity()).account;
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
