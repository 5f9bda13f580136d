/**
 * Who the caller is to AWS, as far as it can be told **without asking AWS**: the key under
 * which the credential helper remembers the caller's identity, so that a cached token is
 * answered with no AWS call at all.
 *
 * The AWS SDK's default credential chain picks the credentials; this mirrors its order
 * (@aws-sdk/credential-provider-node) and names the source by what fixes the identity:
 *
 * 1. No profile selected and `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` set: the access key
 *    id. An access key id belongs to exactly one IAM user or role session, ever.
 * 2. The selected profile (`--profile`, the registry's `profile`, `AWS_PROFILE`, else
 *    `default`) when its settings fix the identity: `role_arn` with `source_profile` or
 *    `credential_source` or `web_identity_token_file` (that role), static keys (their key id),
 *    or `sso_account_id` + `sso_role_name` (that account's permission-set role). The key is the
 *    profile's name and its settings (never a secret), so editing the profile changes it.
 * 3. `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` (EKS IRSA): that role.
 * 4. Anything else (`credential_process`, ECS task roles, EC2 instance profiles, an incomplete
 *    profile): unknown until the SDK resolves the credentials; then their access key id.
 *
 * A known key is only a claim: the first lookup under it always asks STS who the caller is,
 * and the answer is remembered only when it agrees with the claim (a role profile's session
 * must be of that role). So a different identity never reaches another identity's token: a new
 * key means a new STS call, and a key never maps to an identity STS did not confirm for it.
 */

import type { AwsEnv } from '../env.js';
import type { Caller } from './identity.js';

/** What the caller's identity must look like for a key's claim to hold. */
export type CallerClaim =
  | { readonly kind: 'role'; readonly account: string; readonly name: string }
  | { readonly kind: 'sso'; readonly account: string; readonly permissionSet: string };

/** The source of the caller's credentials, as far as it is known locally. */
export type CredentialSource =
  | {
      readonly kind: 'known';
      /** What the cache key is made of (hashed before use; never holds a secret). */
      readonly material: string;
      /** How it reads in messages (`AWS_ACCESS_KEY_ID`, `profile prod`). */
      readonly description: string;
      readonly claim?: CallerClaim;
    }
  | { readonly kind: 'resolve' };

/** One profile's settings from the AWS config and credentials files (merged, as the SDK does). */
export type ProfileSettings = Readonly<Record<string, string | undefined>>;

const ROLE_ARN_RE = /^arn:[^:]+:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;

function roleClaim(arn: string): CallerClaim | undefined {
  const m = ROLE_ARN_RE.exec(arn);
  return m ? { kind: 'role', account: m[1] as string, name: m[2] as string } : undefined;
}

/** Settings that never go into a key: secrets, and what does not change who the caller is. */
const NOT_IN_KEY = new Set([
  'aws_secret_access_key',
  'aws_session_token',
  'region',
  'output',
  'cli_pager',
]);

function known(
  parts: readonly (string | undefined)[],
  description: string,
  claim?: CallerClaim,
): CredentialSource {
  return {
    kind: 'known',
    material: JSON.stringify(parts),
    description,
    ...(claim ? { claim } : {}),
  };
}

/**
 * Step 1: the environment's static keys when no profile is selected; undefined when the
 * profile files must be looked at (they are read only then, to keep a cached answer fast).
 */
export function environmentSource(
  aws: AwsEnv,
  profile: string | undefined,
): CredentialSource | undefined {
  if ((profile ?? aws.profile) === undefined && aws.accessKeyId && aws.secretAccessKeySet)
    return known(['env', aws.accessKeyId, ...aws.endpoints], 'AWS_ACCESS_KEY_ID');
  return undefined;
}

/** The profile the SDK uses: the explicit one, AWS_PROFILE, else `default`. */
export function selectedProfile(aws: AwsEnv, profile: string | undefined): string {
  return profile ?? aws.profile ?? 'default';
}

/**
 * Steps 2 to 4, given the profiles of the AWS config files (`profiles`, by name). `explicit`
 * says whether a profile was selected (a missing `default` profile is normal; a missing
 * selected one is the SDK's error to report, after resolving).
 */
export function profileSource(
  aws: AwsEnv,
  name: string,
  explicit: boolean,
  profiles: Readonly<Record<string, ProfileSettings>>,
): CredentialSource {
  const p = profiles[name];
  const files = [aws.configFile ?? '~/.aws/config', aws.credentialsFile ?? '~/.aws/credentials'];
  const material = (kind: string) => {
    const settings = Object.entries(p ?? {})
      .filter(([k, v]) => v !== undefined && !NOT_IN_KEY.has(k))
      .sort(([a], [b]) => a.localeCompare(b));
    return ['profile', kind, name, ...files, JSON.stringify(settings), ...aws.endpoints];
  };
  const description = `AWS profile ${name}`;
  if (p) {
    const role = p.role_arn;
    const assumes = Boolean(p.source_profile) !== Boolean(p.credential_source);
    if (role && (assumes || p.web_identity_token_file)) {
      const claim = roleClaim(role);
      return claim ? known(material('role'), description, claim) : { kind: 'resolve' };
    }
    if (p.aws_access_key_id && p.aws_secret_access_key)
      return known(material('static'), description);
    if (p.credential_process || p.login_session) return { kind: 'resolve' };
    if (p.sso_account_id && p.sso_role_name)
      return known(material('sso'), description, {
        kind: 'sso',
        account: p.sso_account_id,
        permissionSet: p.sso_role_name,
      });
    if (p.sso_start_url || p.sso_session || p.sso_region) return { kind: 'resolve' };
  }
  // No credentials in the profile: the SDK goes on to web identity, then the container or
  // instance metadata. A selected profile that gives none is for the SDK to report.
  if (explicit) return { kind: 'resolve' };
  if (aws.roleArn && aws.webIdentityTokenFile) {
    const claim = roleClaim(aws.roleArn);
    if (claim)
      return known(
        ['web-identity', aws.roleArn, aws.webIdentityTokenFile, ...aws.endpoints],
        'AWS_ROLE_ARN',
        claim,
      );
  }
  return { kind: 'resolve' };
}

/** The key of credentials the SDK resolved (step 4): their access key id. */
export function resolvedSource(accessKeyId: string, aws: AwsEnv): CredentialSource {
  return known(['key', accessKeyId, ...aws.endpoints], 'the resolved AWS credentials');
}

/** True when STS's answer agrees with what the source claimed the caller to be. */
export function claimHolds(claim: CallerClaim | undefined, caller: Caller): boolean {
  if (claim === undefined) return true;
  if (caller.type !== 'role' || caller.account !== claim.account) return false;
  return claim.kind === 'role'
    ? caller.name === claim.name
    : caller.name.startsWith(`AWSReservedSSO_${claim.permissionSet}_`);
}
