/**
 * The grant helpers give identity-side permissions only (the token bucket policy belongs to the
 * function), each on exactly the objects the reader needs.
 */

import { describe, expect, it } from '@jest/globals';
import { Duration, aws_iam as iam, type Stack } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { RegistryTokenMinter } from '../../infra/minter.js';
import { synth } from '../helpers/cdk.js';

/** The statements of the policy attached to `attached` (a role, user or group reference). */
function statementsOf(template: Template, key: 'Roles' | 'Users' | 'Groups', ref: unknown) {
  const found = Object.values(template.findResources('AWS::IAM::Policy')).filter(
    (p) =>
      JSON.stringify((p as { Properties: Record<string, unknown> }).Properties[key]) ===
      JSON.stringify([ref]),
  ) as { Properties: { PolicyDocument: { Statement: unknown[] } } }[];
  expect(found).toHaveLength(1);
  return found[0]?.Properties.PolicyDocument.Statement;
}

function setup(
  grant: (minter: RegistryTokenMinter, stack: Stack) => { grants: iam.Grant[]; check: unknown },
) {
  let result: { grants: iam.Grant[]; check: unknown } | undefined;
  let minter: RegistryTokenMinter | undefined;
  const { stack, template } = synth((s) => {
    minter = new RegistryTokenMinter(s, 'Minter', {
      minTokenTtl: Duration.hours(12),
      tokenPrefix: 'prod',
    });
    result = grant(minter, s);
  });
  if (!result || !minter) throw new Error('not built');
  return { stack, template, minter, ...result, r: (v: unknown) => stack.resolve(v) };
}

describe('grantReadOwnToken', () => {
  it('a same-account role reads exactly its own token object', () => {
    let role: iam.Role | undefined;
    const { template, minter, grants, r, stack } = setup((m, s) => {
      role = new iam.Role(s, 'Instance', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      });
      return { grants: [m.grantReadOwnToken(role)], check: role };
    });
    expect(grants[0]?.success).toBe(true);
    expect(statementsOf(template, 'Roles', r(role?.roleName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: r(
          minter.tokenBucket.arnForObjects(
            `prod/tokens/${stack.account}/role/${role?.roleName}.json`,
          ),
        ),
      },
    ]);
  });

  it("anything that grants through a role (an instance, a function) gets that role's token", () => {
    let role: iam.Role | undefined;
    const { template, minter, r, stack } = setup((m, s) => {
      role = new iam.Role(s, 'FunctionRole', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      const viaRole: iam.IGrantable = { grantPrincipal: role };
      return { grants: [m.grantReadOwnToken(viaRole)], check: role };
    });
    expect(statementsOf(template, 'Roles', r(role?.roleName))).toEqual([
      expect.objectContaining({
        Resource: r(
          minter.tokenBucket.arnForObjects(
            `prod/tokens/${stack.account}/role/${role?.roleName}.json`,
          ),
        ),
      }),
    ]);
  });

  it('a user reads its token under user/', () => {
    let user: iam.User | undefined;
    const { template, minter, r, stack } = setup((m, s) => {
      user = new iam.User(s, 'Alice');
      return { grants: [m.grantReadOwnToken(user)], check: user };
    });
    expect(statementsOf(template, 'Users', r(user?.userName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: r(
          minter.tokenBucket.arnForObjects(
            `prod/tokens/${stack.account}/user/${user?.userName}.json`,
          ),
        ),
      },
    ]);
  });

  it('an explicit principal ARN (with a path) picks the token key the minter writes', () => {
    let role: iam.Role | undefined;
    const { template, minter, r } = setup((m, s) => {
      role = new iam.Role(s, 'Web', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
      return {
        grants: [m.grantReadOwnToken(role, 'arn:aws:iam::111122223333:role/web/ec2-web')],
        check: role,
      };
    });
    expect(statementsOf(template, 'Roles', r(role?.roleName))).toEqual([
      expect.objectContaining({
        Resource: r(minter.tokenBucket.arnForObjects('prod/tokens/111122223333/role/ec2-web.json')),
      }),
    ]);
  });

  it('a grantee that is neither a role nor a user gets tokens/* (the bucket policy narrows it)', () => {
    let group: iam.Group | undefined;
    const { template, minter, r } = setup((m, s) => {
      group = new iam.Group(s, 'Developers');
      return { grants: [m.grantReadOwnToken(group)], check: group };
    });
    expect(statementsOf(template, 'Groups', r(group?.groupName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: r(minter.tokenBucket.arnForObjects('prod/tokens/*')),
      },
    ]);
  });

  it('rejects a principal ARN the grants file would reject', () => {
    expect(() =>
      setup((m, s) => ({
        grants: [m.grantReadOwnToken(new iam.Group(s, 'G'), 'arn:aws:iam::111122223333:group/x')],
        check: undefined,
      })),
    ).toThrow(/^grantReadOwnToken: /);
  });

  it('never adds a bucket policy to the token bucket', () => {
    const { template } = setup((m, s) => ({
      grants: [
        m.grantReadOwnToken(new iam.User(s, 'U')),
        m.grantReadTrustBundle(new iam.User(s, 'V')),
      ],
      check: undefined,
    }));
    template.resourceCountIs('AWS::S3::BucketPolicy', 2); // access logs + config bucket only
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^MinterConfigBucket') },
    });
  });
});

describe('grantReadTrustBundle, grantReadConfig, grantUploadConfig', () => {
  it('a registry host reads the trust bundle and the JWKS, nothing else', () => {
    let role: iam.Role | undefined;
    const { template, minter, r } = setup((m, s) => {
      role = new iam.Role(s, 'Registry', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      });
      return { grants: [m.grantReadTrustBundle(role)], check: role };
    });
    expect(statementsOf(template, 'Roles', r(role?.roleName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [
          r(minter.tokenBucket.arnForObjects('prod/trust/bundle.pem')),
          r(minter.tokenBucket.arnForObjects('prod/trust/jwks.json')),
        ],
      },
    ]);
  });

  it('reading the config is GetObject on the grants object plus ListBucket (404, not 403)', () => {
    let role: iam.Role | undefined;
    const { template, minter, r } = setup((m, s) => {
      role = new iam.Role(s, 'Plan', { assumedBy: new iam.AccountRootPrincipal() });
      return { grants: [m.grantReadConfig(role)], check: role };
    });
    expect(statementsOf(template, 'Roles', r(role?.roleName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: r(minter.configBucket.arnForObjects('grants.yaml')),
      },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: r(minter.configBucket.bucketArn) },
    ]);
  });

  it('uploading the config is PutObject on the grants object only', () => {
    let role: iam.Role | undefined;
    const { template, minter, r } = setup((m, s) => {
      role = new iam.Role(s, 'Upload', { assumedBy: new iam.AccountRootPrincipal() });
      return { grants: [m.grantUploadConfig(role)], check: role };
    });
    expect(statementsOf(template, 'Roles', r(role?.roleName))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: r(minter.configBucket.arnForObjects('grants.yaml')),
      },
    ]);
  });
});
