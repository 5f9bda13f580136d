/**
 * Who is calling: maps the ARN that STS GetCallerIdentity returns to the IAM user or role that
 * owns a token, and so to the token's key (`tokens/ACCOUNT/role|user/NAME.json`).
 *
 * - An IAM user `arn:aws:iam::ACCOUNT:user/PATH/NAME` owns `tokens/ACCOUNT/user/NAME.json`.
 * - A role session `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` (`aws sso login`, an
 *   assumed role, an EC2 instance profile, Lambda, ECS) is its role's: `tokens/ACCOUNT/role/NAME.json`.
 *   The session ARN does not carry the role's path, which is why the key leaves it out.
 * - The root user and federated-user sessions (`sts:GetFederationToken`) own no token.
 */

import { PARTITIONS, type ParseResult, type Partition, tokenKey } from './principal.js';
import { quote } from './text.js';

/** The IAM user or role behind a caller identity. */
export interface Caller {
  /** The caller ARN exactly as STS returned it. */
  readonly arn: string;
  readonly partition: Partition;
  readonly account: string;
  readonly type: 'role' | 'user';
  /** Role or user name (no path). */
  readonly name: string;
  /** The session name, for a role session. */
  readonly session?: string;
  /**
   * The owner's ARN when the caller ARN shows all of it (an IAM user, with its path). A role
   * session does not show its role's path, so this is undefined there.
   */
  readonly principalArn?: string;
}

const ARN_RE = /^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$/;
const NAME_RE = /^[A-Za-z0-9+=,.@_-]{1,64}$/;

/** Parses a caller ARN; on failure `reason` says why this identity has no token and what to use. */
export function callerFromArn(arn: string): ParseResult<Caller> {
  const fail = (reason: string) => ({ ok: false, reason }) as const;
  const m = ARN_RE.exec(arn);
  if (!m) return fail(`${quote(arn)} is not an AWS ARN`);
  const [, partition = '', service = '', , account = '', resource = ''] = m;
  if (!(PARTITIONS as readonly string[]).includes(partition))
    return fail(`${arn} is in partition ${quote(partition)}, where regtoken mints no tokens`);
  if (!/^\d{12}$/.test(account)) return fail(`${arn} has no 12-digit account`);
  const use = 'sign in as an IAM user or a role named in the grants file';
  if (service === 'iam' && resource === 'root')
    return fail(
      `${arn} is the root user of account ${account}, which has no registry token: ${use}`,
    );
  if (service === 'sts' && resource.startsWith('federated-user/'))
    return fail(
      `${arn} is a federated-user session (sts:GetFederationToken), which has no registry token: ${use}`,
    );
  const base = { arn, partition: partition as Partition, account };
  if (service === 'sts' && resource.startsWith('assumed-role/')) {
    const [, name = '', ...session] = resource.split('/');
    if (!NAME_RE.test(name) || session.length === 0 || session.join('/') === '')
      return fail(`${arn} is not a role session ARN (expected assumed-role/ROLE/SESSION)`);
    return { ok: true, value: { ...base, type: 'role', name, session: session.join('/') } };
  }
  if (service === 'iam' && (resource.startsWith('user/') || resource.startsWith('role/'))) {
    const segments = resource.split('/');
    const type = segments[0] === 'user' ? 'user' : 'role';
    const name = segments[segments.length - 1] ?? '';
    if (segments.length < 2 || !NAME_RE.test(name) || segments.slice(1, -1).includes(''))
      return fail(`${arn} is not a valid IAM ${type} ARN`);
    return { ok: true, value: { ...base, type, name, principalArn: arn } };
  }
  return fail(`${arn} is neither an IAM user nor a role session, so it owns no registry token`);
}

/** The key of the caller's token under the token location (no IAM path: see the module doc). */
export function callerTokenKey(caller: Caller): string {
  return tokenKey(caller);
}

/** How to name the owner in messages: its ARN when known, else `role NAME in account ACCOUNT`. */
export function describeOwner(caller: Caller): string {
  return caller.principalArn ?? `${caller.type} ${caller.name} in account ${caller.account}`;
}
