/**
 * The minter's account, as the IAM check needs it: asked of STS once per access key and client
 * (lambda/adapters/sts.ts), so a warm container's scheduled runs make no STS call. A stand-in
 * client, since the point is which calls are made, not what STS answers.
 */

import type { STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from '@jest/globals';
import { StsCallerIdentity } from '../../lambda/adapters/sts.js';

/** An STS client whose credentials are `keys()` and whose GetCallerIdentity answers `account`. */
function stsClient(keys: () => string, account: () => string) {
  let calls = 0;
  const client = {
    config: { credentials: async () => ({ accessKeyId: keys(), secretAccessKey: 'secret' }) },
    send: async () => {
      calls += 1;
      return { Arn: `arn:aws:sts::${account()}:assumed-role/minter/run`, Account: account() };
    },
  };
  return { client: client as unknown as STSClient, calls: () => calls };
}

describe("the caller's account", () => {
  it('is asked once per access key and client', async () => {
    let key = 'ASIAFIRST';
    let account = '111122223333';
    const sts = stsClient(
      () => key,
      () => account,
    );
    expect(await new StsCallerIdentity(sts.client).account()).toBe('111122223333');
    // Another run of the same container: a new identity object, the same client and key.
    expect(await new StsCallerIdentity(sts.client).account()).toBe('111122223333');
    expect(sts.calls()).toBe(1);
    // New credentials (another key, here of another account): asked again.
    key = 'ASIASECOND';
    account = '444455556666';
    expect(await new StsCallerIdentity(sts.client).account()).toBe('444455556666');
    expect(sts.calls()).toBe(2);
    // Another client knows nothing of the first one's answers.
    const other = stsClient(
      () => key,
      () => account,
    );
    await new StsCallerIdentity(other.client).account();
    expect(other.calls()).toBe(1);
  });

  it('is asked of STS every time when the credentials cannot be resolved first', async () => {
    const sts = stsClient(
      () => {
        throw new Error('Could not load credentials from any providers');
      },
      () => '111122223333',
    );
    const identity = new StsCallerIdentity(sts.client);
    expect(await identity.account()).toBe('111122223333');
    expect(await identity.account()).toBe('111122223333');
    expect(sts.calls()).toBe(2);
  });
});
