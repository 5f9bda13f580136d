/**
 * IAM for a config repository on GitHub (examples/config-repo): two roles that GitHub Actions
 * assumes with its OIDC token, so no long-lived AWS key exists anywhere.
 *
 * - the plan role, for pull requests: reads the deployed grants (`regtoken plan --from s3://…`);
 * - the upload role, for pushes to the main branch: writes the grants object, nothing else.
 */

import { aws_iam as iam } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { RegistryTokenMinter } from './minter.js';

/** The issuer of GitHub Actions' OIDC tokens. */
export const GITHUB_OIDC_URL = 'https://token.actions.githubusercontent.com';
const ISSUER = 'token.actions.githubusercontent.com';
const REPOSITORY_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const BRANCH_RE = /^[A-Za-z0-9._/-]+$/;

/** Settings of {@link GitHubConfigRoles}. */
export interface GitHubConfigRolesProps {
  /** The deployment whose grants object the roles read and write. */
  readonly minter: RegistryTokenMinter;
  /** The config repository, `OWNER/NAME`. */
  readonly repository: string;
  /**
   * The branch whose pushes may upload the grants.
   * @default 'main'
   */
  readonly branch?: string;
  /**
   * The account's GitHub OIDC provider. An account holds at most one provider per URL, so pass
   * the existing one (`iam.OidcProviderNative.fromOidcProviderArn`) if the account has it.
   * @default - a new provider for token.actions.githubusercontent.com
   */
  readonly oidcProvider?: iam.IOidcProvider;
}

/** The plan (read-only) and upload roles of a GitHub config repository. */
export class GitHubConfigRoles extends Construct {
  /** Assumed by pull request runs: reads the deployed grants object. */
  readonly planRole: iam.Role;
  /** Assumed by runs on the main branch: uploads the grants object. */
  readonly uploadRole: iam.Role;
  /** The GitHub OIDC provider the roles trust. */
  readonly oidcProvider: iam.IOidcProvider;

  constructor(scope: Construct, id: string, props: GitHubConfigRolesProps) {
    super(scope, id);
    if (!REPOSITORY_RE.test(props.repository))
      throw new Error(
        `GitHubConfigRoles: repository "${props.repository}" must be OWNER/NAME, like my-org/registry-grants`,
      );
    const branch = props.branch ?? 'main';
    if (!BRANCH_RE.test(branch))
      throw new Error(`GitHubConfigRoles: branch "${branch}" is not a plain branch name`);

    this.oidcProvider =
      props.oidcProvider ??
      new iam.OidcProviderNative(this, 'Provider', {
        url: GITHUB_OIDC_URL,
        clientIds: ['sts.amazonaws.com'],
      });
    // `sub` names the repository and the event (pull_request) or the branch; exact matches, no
    // wildcards, so no other repository, branch or fork can assume the roles.
    const github = (subject: string) =>
      new iam.WebIdentityPrincipal(this.oidcProvider.oidcProviderArn, {
        StringEquals: {
          [`${ISSUER}:aud`]: 'sts.amazonaws.com',
          [`${ISSUER}:sub`]: `repo:${props.repository}:${subject}`,
        },
      });

    this.planRole = new iam.Role(this, 'PlanRole', {
      assumedBy: github('pull_request'),
      description: `regtoken: ${props.repository} pull requests read the deployed grants`,
    });
    props.minter.grantReadConfig(this.planRole);

    this.uploadRole = new iam.Role(this, 'UploadRole', {
      assumedBy: github(`ref:refs/heads/${branch}`),
      description: `regtoken: ${props.repository} ${branch} uploads the grants`,
    });
    props.minter.grantUploadConfig(this.uploadRole);
  }
}
