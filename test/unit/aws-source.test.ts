/**
 * Who the caller is without asking AWS: the credential source that keys the credential
 * helper's identity cache, following the AWS SDK's default chain, and the claims STS must
 * confirm before a key is trusted. A table of environments and profiles, each one line.
 */

import { describe, expect, it } from '@jest/globals';
import {
  type CredentialSource,
  claimHolds,
  environmentSource,
  type ProfileSettings,
  profileSource,
  resolvedSource,
  selectedProfile,
} from '../../lambda/core/aws-source.js';
import { callerFromArn } from '../../lambda/core/identity.js';
import type { AwsEnv } from '../../lambda/env.js';

const NONE: AwsEnv = {
  profile: undefined,
  accessKeyId: undefined,
  secretAccessKeySet: false,
  roleArn: undefined,
  webIdentityTokenFile: undefined,
  configFile: undefined,
  credentialsFile: undefined,
  endpoints: [],
};
const KEYS: AwsEnv = { ...NONE, accessKeyId: 'AKIAEXAMPLE', secretAccessKeySet: true };

const PROFILES: Record<string, ProfileSettings> = {
  default: { region: 'eu-west-1' },
  static: { aws_access_key_id: 'AKIASTATIC', aws_secret_access_key: 'secret', region: 'eu-west-1' },
  deploy: { role_arn: 'arn:aws:iam::111122223333:role/ci/deploy', source_profile: 'static' },
  instance: {
    role_arn: 'arn:aws:iam::111122223333:role/deploy',
    credential_source: 'Ec2InstanceMetadata',
  },
  both: {
    role_arn: 'arn:aws:iam::111122223333:role/deploy',
    source_profile: 'static',
    credential_source: 'Environment',
  },
  web: {
    role_arn: 'arn:aws:iam::111122223333:role/irsa',
    web_identity_token_file: '/var/run/token',
  },
  sso: {
    sso_session: 'corp',
    sso_account_id: '111122223333',
    sso_role_name: 'Developer',
    region: 'eu-west-1',
  },
  'sso-legacy': { sso_start_url: 'https://corp.awsapps.com/start', sso_region: 'eu-west-1' },
  process: { credential_process: '/usr/local/bin/aws-vault export --format=json x' },
  login: { login_session: 'arn:aws:iam::111122223333:user/me' },
  'bad-role': { role_arn: 'not-an-arn', source_profile: 'static' },
};

/** kind, description and claim of a source, for one-line expectations. */
const shape = (s: CredentialSource) =>
  s.kind === 'resolve'
    ? 'resolve'
    : `${s.description}${s.claim ? ` ${JSON.stringify(s.claim)}` : ''}`;

function source(aws: AwsEnv, explicit?: string): CredentialSource {
  const env = environmentSource(aws, explicit);
  if (env) return env;
  return profileSource(
    aws,
    selectedProfile(aws, explicit),
    (explicit ?? aws.profile) !== undefined,
    PROFILES,
  );
}

describe('the credential source, as the SDK would pick it', () => {
  // what, environment, explicit profile → shape
  it.each([
    ['access keys in the environment', KEYS, undefined, 'AWS_ACCESS_KEY_ID'],
    [
      'a key id without its secret is not a source',
      { ...KEYS, secretAccessKeySet: false },
      undefined,
      'resolve',
    ],
    [
      'a profile selected by AWS_PROFILE wins over keys (as in the SDK)',
      { ...KEYS, profile: 'static' },
      undefined,
      'AWS profile static',
    ],
    [
      "a registry's profile wins over keys",
      KEYS,
      'deploy',
      'AWS profile deploy {"kind":"role","account":"111122223333","name":"deploy"}',
    ],
    ['static keys in a profile', NONE, 'static', 'AWS profile static'],
    [
      'a role with source_profile (the name, without its path)',
      NONE,
      'deploy',
      'AWS profile deploy {"kind":"role","account":"111122223333","name":"deploy"}',
    ],
    [
      'a role with credential_source',
      NONE,
      'instance',
      'AWS profile instance {"kind":"role","account":"111122223333","name":"deploy"}',
    ],
    [
      'source_profile and credential_source together are not an assume-role profile',
      NONE,
      'both',
      'resolve',
    ],
    [
      'a web identity profile',
      NONE,
      'web',
      'AWS profile web {"kind":"role","account":"111122223333","name":"irsa"}',
    ],
    [
      'an SSO profile with account and role',
      NONE,
      'sso',
      'AWS profile sso {"kind":"sso","account":"111122223333","permissionSet":"Developer"}',
    ],
    ['an SSO profile without a role: resolved', NONE, 'sso-legacy', 'resolve'],
    ['credential_process: resolved', NONE, 'process', 'resolve'],
    ['a login session: resolved', NONE, 'login', 'resolve'],
    ['a role ARN that is not one: resolved', NONE, 'bad-role', 'resolve'],
    [
      'a selected profile that does not exist: resolved (the SDK reports it)',
      NONE,
      'nope',
      'resolve',
    ],
    [
      'the default profile without credentials, nothing else: resolved (instance metadata)',
      NONE,
      undefined,
      'resolve',
    ],
    [
      'the default profile without credentials, then web identity variables',
      { ...NONE, roleArn: 'arn:aws:iam::111122223333:role/irsa', webIdentityTokenFile: '/t' },
      undefined,
      'AWS_ROLE_ARN {"kind":"role","account":"111122223333","name":"irsa"}',
    ],
    [
      'a selected profile without credentials does not fall to web identity',
      { ...NONE, roleArn: 'arn:aws:iam::111122223333:role/irsa', webIdentityTokenFile: '/t' },
      'nope',
      'resolve',
    ],
  ])('%s', (_what, aws, explicit, expected) => {
    expect(shape(source(aws as AwsEnv, explicit))).toBe(expected);
  });

  it('the default profile with credentials is used when nothing is selected', () => {
    const withDefault = { ...PROFILES, default: PROFILES.static as ProfileSettings };
    expect(shape(profileSource(NONE, 'default', false, withDefault))).toBe('AWS profile default');
  });
});

describe('the key material', () => {
  const material = (s: CredentialSource) => (s.kind === 'known' ? s.material : 'resolve');

  it('differs by access key, profile settings, files and endpoint', () => {
    const keys = [
      material(source(KEYS)),
      material(source({ ...KEYS, accessKeyId: 'AKIAOTHER' })),
      material(source({ ...KEYS, endpoints: ['http://127.0.0.1:5000'] })),
      material(source(NONE, 'deploy')),
      material(source(NONE, 'instance')),
      material(source({ ...NONE, configFile: '/etc/aws/config' }, 'deploy')),
      material(resolvedSource('ASIAONE', NONE)),
      material(resolvedSource('ASIATWO', NONE)),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('never holds a secret, and ignores the region', () => {
    const text = material(source(NONE, 'static'));
    expect(text).toContain('AKIASTATIC');
    expect(text).not.toContain('secret');
    const moved = { ...PROFILES, static: { ...PROFILES.static, region: 'us-east-1' } };
    expect(material(profileSource(NONE, 'static', true, moved))).toBe(text);
  });
});

describe('STS must confirm the claim before it is remembered', () => {
  const caller = (arn: string) => {
    const c = callerFromArn(arn);
    if (!c.ok) throw new Error(c.reason);
    return c.value;
  };
  const role = { kind: 'role', account: '111122223333', name: 'deploy' } as const;
  const sso = { kind: 'sso', account: '111122223333', permissionSet: 'Developer' } as const;

  it.each([
    [undefined, 'arn:aws:iam::111122223333:user/alice', true],
    [role, 'arn:aws:sts::111122223333:assumed-role/deploy/session', true],
    [role, 'arn:aws:sts::111122223333:assumed-role/other/session', false],
    [role, 'arn:aws:sts::444455556666:assumed-role/deploy/session', false],
    [role, 'arn:aws:iam::111122223333:user/deploy', false],
    [
      sso,
      'arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Developer_0123abcd/me@example.com',
      true,
    ],
    [sso, 'arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DeveloperPlus_0123abcd/me', false],
    [sso, 'arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Developer_0123abcd/me', false],
  ])('claim %j, caller %s → %s', (claim, arn, holds) => {
    expect(claimHolds(claim, caller(arn))).toBe(holds);
  });
});
