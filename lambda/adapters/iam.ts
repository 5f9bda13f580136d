/**
 * Checks configured principals against IAM, in bulk: one STS call to learn the minter's
 * account, then `ListRoles` and `ListUsers` pages (up to 1,000 each, the two listings side by
 * side) — never one call per principal. Principals in other accounts cannot be checked without credentials there; they
 * are reported as unverified and still get a token (docs/aws.md, "Principals").
 */

import { type IAMClient, ListRolesCommand, ListUsersCommand } from '@aws-sdk/client-iam';
import type { PrincipalCheck, PrincipalDirectory } from '../core/ports.js';
import type { Principal } from '../core/principal.js';
import type { StsCallerIdentity } from './sts.js';

/** Maps lower-cased names to the ARN IAM reports (IAM names are unique ignoring case). */
async function listArns(iam: IAMClient, type: 'role' | 'user'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let marker: string | undefined;
  do {
    if (type === 'role') {
      const r = await iam.send(new ListRolesCommand({ Marker: marker, MaxItems: 1000 }));
      for (const role of r.Roles ?? [])
        if (role.RoleName && role.Arn) out.set(role.RoleName.toLowerCase(), role.Arn);
      marker = r.IsTruncated ? r.Marker : undefined;
    } else {
      const r = await iam.send(new ListUsersCommand({ Marker: marker, MaxItems: 1000 }));
      for (const user of r.Users ?? [])
        if (user.UserName && user.Arn) out.set(user.UserName.toLowerCase(), user.Arn);
      marker = r.IsTruncated ? r.Marker : undefined;
    }
  } while (marker);
  return out;
}

/** A {@link PrincipalDirectory} backed by IAM in the caller's account. */
export class IamPrincipalDirectory implements PrincipalDirectory {
  constructor(
    private readonly iam: IAMClient,
    private readonly caller: StsCallerIdentity,
  ) {}

  async check(principals: readonly Principal[]): Promise<PrincipalCheck> {
    const account = await this.caller.account();
    const local = principals.filter((p) => p.account === account);
    const unverified = principals.filter((p) => p.account !== account);
    // The two listings are independent: side by side, one round trip apart is saved per page.
    // A failure is reported as if they had run in sequence (roles first).
    const none = Promise.resolve(new Map<string, string>());
    const [listedRoles, listedUsers] = await Promise.allSettled([
      local.some((p) => p.type === 'role') ? listArns(this.iam, 'role') : none,
      local.some((p) => p.type === 'user') ? listArns(this.iam, 'user') : none,
    ]);
    if (listedRoles.status === 'rejected') throw listedRoles.reason;
    if (listedUsers.status === 'rejected') throw listedUsers.reason;
    const roles = listedRoles.value;
    const users = listedUsers.value;
    const unknown: { principal: Principal; reason: string }[] = [];
    for (const p of local) {
      const actual = (p.type === 'role' ? roles : users).get(p.name.toLowerCase());
      if (!actual)
        unknown.push({ principal: p, reason: `no such ${p.type} in account ${account}` });
      else if (actual !== p.arn)
        // The owner tag must equal aws:PrincipalArn exactly, so a token for the configured
        // spelling would be unreadable.
        unknown.push({
          principal: p,
          reason: `IAM knows it as ${actual}; write the ARN exactly like that (path and case must match)`,
        });
    }
    return { unknown, unverified };
  }
}
