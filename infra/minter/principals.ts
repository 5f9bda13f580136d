/** The construct's view of IAM roles and users it is handed as props or grantees. */

import type * as iam from 'aws-cdk-lib/aws-iam';

/** The ARN of a role or user, as the token bucket policy compares it with aws:PrincipalArn. */
export function principalArn(p: iam.IRole | iam.IUser): string {
  return 'roleArn' in p ? p.roleArn : p.userArn;
}

/** The account, type and name of a grantee that is an IAM role or user, else undefined. */
export function ownPrincipal(
  p: iam.IPrincipal,
): { account: string; type: 'role' | 'user'; name: string } | undefined {
  const r = p as Partial<iam.IRole> & Partial<iam.IUser>;
  if (typeof r.roleName === 'string' && typeof r.roleArn === 'string' && r.env)
    return { account: r.env.account, type: 'role', name: r.roleName };
  if (typeof r.userName === 'string' && typeof r.userArn === 'string' && r.env)
    return { account: r.env.account, type: 'user', name: r.userName };
  return undefined;
}
