import { describe, expect, it } from '@jest/globals';
import { callerFromArn, callerTokenKey, describeOwner } from '../../lambda/core/identity.js';

const A = '111122223333';

describe('callerFromArn: a caller identity maps to the token of its user or role', () => {
  // caller ARN (as STS GetCallerIdentity returns it) → token key, owner as shown in messages
  it.each([
    [
      'IAM user',
      `arn:aws:iam::${A}:user/alice`,
      `tokens/${A}/user/alice.json`,
      `arn:aws:iam::${A}:user/alice`,
    ],
    [
      'IAM user with a path (the path is not in the key)',
      `arn:aws:iam::${A}:user/team/dev/bob`,
      `tokens/${A}/user/bob.json`,
      `arn:aws:iam::${A}:user/team/dev/bob`,
    ],
    [
      'assumed-role session',
      `arn:aws:sts::${A}:assumed-role/ci-runner/build-42`,
      `tokens/${A}/role/ci-runner.json`,
      `role ci-runner in account ${A}`,
    ],
    [
      'EC2 instance-profile session',
      `arn:aws:sts::${A}:assumed-role/ec2-web/i-0abc123def`,
      `tokens/${A}/role/ec2-web.json`,
      `role ec2-web in account ${A}`,
    ],
    [
      'IAM Identity Center (SSO) session: email as session name',
      `arn:aws:sts::${A}:assumed-role/AWSReservedSSO_Dev_0123abcd/jane@example.com`,
      `tokens/${A}/role/AWSReservedSSO_Dev_0123abcd.json`,
      `role AWSReservedSSO_Dev_0123abcd in account ${A}`,
    ],
    [
      'GovCloud partition',
      `arn:aws-us-gov:sts::${A}:assumed-role/r/s`,
      `tokens/${A}/role/r.json`,
      `role r in account ${A}`,
    ],
    [
      'a role ARN itself',
      `arn:aws:iam::${A}:role/web/ec2-web`,
      `tokens/${A}/role/ec2-web.json`,
      `arn:aws:iam::${A}:role/web/ec2-web`,
    ],
  ])('%s', (_what, arn, key, owner) => {
    const r = callerFromArn(arn);
    if (!r.ok) throw new Error(r.reason);
    expect(callerTokenKey(r.value)).toBe(key);
    expect(describeOwner(r.value)).toBe(owner);
    expect(r.value.arn).toBe(arn);
  });

  it('keeps the session name of a role session', () => {
    const r = callerFromArn(`arn:aws:sts::${A}:assumed-role/ci/a/b`);
    expect(r).toMatchObject({ ok: true, value: { type: 'role', name: 'ci', session: 'a/b' } });
  });

  // identities that own no token → the exact reason given to the user
  it.each([
    [
      `arn:aws:iam::${A}:root`,
      `arn:aws:iam::${A}:root is the root user of account ${A}, which has no registry token: sign in as an IAM user or a role named in the grants file`,
    ],
    [
      `arn:aws:sts::${A}:federated-user/carol`,
      `arn:aws:sts::${A}:federated-user/carol is a federated-user session (sts:GetFederationToken), which has no registry token: sign in as an IAM user or a role named in the grants file`,
    ],
    [
      `arn:aws:sts::${A}:user/moto`,
      `arn:aws:sts::${A}:user/moto is neither an IAM user nor a role session, so it owns no registry token`,
    ],
    [
      `arn:aws:sts::${A}:assumed-role/only-role`,
      `arn:aws:sts::${A}:assumed-role/only-role is not a role session ARN (expected assumed-role/ROLE/SESSION)`,
    ],
    [
      `arn:aws-iso:sts::${A}:assumed-role/r/s`,
      `arn:aws-iso:sts::${A}:assumed-role/r/s is in partition "aws-iso", where regtoken mints no tokens`,
    ],
    ['arn:aws:iam::12345:user/x', 'arn:aws:iam::12345:user/x has no 12-digit account'],
    [`arn:aws:iam::${A}:user//x`, `arn:aws:iam::${A}:user//x is not a valid IAM user ARN`],
    ['not-an-arn', '"not-an-arn" is not an AWS ARN'],
  ])('%s owns no token', (arn, reason) => {
    expect(callerFromArn(arn)).toEqual({ ok: false, reason });
  });
});
