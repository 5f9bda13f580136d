/**
 * The `recordTokenReads` option at synth time: CloudTrail S3 data events (reads) for the token
 * bucket's `tokens/` prefix, on a dedicated trail or on a trail of the app. What the trail's
 * bucket policy allows is evaluated in test/infra/policies.test.ts.
 */

import { describe, expect, it } from '@jest/globals';
import { aws_cloudtrail as cloudtrail, Duration, aws_logs as logs } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { RegistryTokenMinter, type RegistryTokenMinterProps } from '../../infra/minter.js';
import { propsFromContext, RegtokenStack } from '../../infra/stack.js';
import { newApp, synth } from '../helpers/cdk.js';

const TTL = { minTokenTtl: Duration.hours(12) };

function build(props: RegistryTokenMinterProps, trail = false) {
  let minter: RegistryTokenMinter | undefined;
  let accountTrail: cloudtrail.Trail | undefined;
  const { stack, template } = synth((s) => {
    if (trail) accountTrail = new cloudtrail.Trail(s, 'AccountTrail');
    minter = new RegistryTokenMinter(s, 'Minter', {
      ...props,
      ...(accountTrail ? { recordTokenReads: { trail: accountTrail } } : {}),
    });
  });
  if (!minter) throw new Error('not built');
  return { stack, template, minter, accountTrail, r: (v: unknown) => stack.resolve(v) };
}

/** The data event selector every variant must write: reads of `PREFIX/tokens/` objects. */
function tokenReads(tokenBucketArn: unknown, prefix: string, managementEvents?: false) {
  return {
    DataResources: [
      { Type: 'AWS::S3::Object', Values: [{ 'Fn::Join': ['', [tokenBucketArn, `/${prefix}`]] }] },
    ],
    ...(managementEvents === false ? { IncludeManagementEvents: false } : {}),
    ReadWriteType: 'ReadOnly',
  };
}

describe('recordTokenReads', () => {
  it('is off by default: no trail, no trail bucket, no extra log group', () => {
    const { template } = build(TTL);
    template.resourceCountIs('AWS::CloudTrail::Trail', 0);
    template.resourceCountIs('AWS::Logs::LogGroup', 1); // the function's
  });

  describe('with a dedicated trail', () => {
    const { template, minter, r } = build({ ...TTL, recordTokenReads: {} });
    const trails = template.findResources('AWS::CloudTrail::Trail');
    const trail = Object.values(trails)[0] as { Properties: Record<string, unknown> };

    it('records reads of tokens/ only: no management events, one region, no global events', () => {
      expect(Object.keys(trails)).toHaveLength(1);
      expect(trail.Properties.EventSelectors).toEqual([
        tokenReads(r(minter.tokenBucket.bucketArn), 'tokens/', false),
      ]);
      expect(trail.Properties).toMatchObject({
        IsLogging: true,
        IsMultiRegionTrail: false,
        IncludeGlobalServiceEvents: false,
        EnableLogFileValidation: true,
      });
    });

    it('delivers to a retained log group kept a year, exposed for queries', () => {
      const logGroup = minter.tokenReads?.logGroup;
      expect(logGroup).toBeDefined();
      expect(trail.Properties.CloudWatchLogsLogGroupArn).toEqual(r(logGroup?.logGroupArn));
      const id = r(logGroup?.logGroupName) as { Ref: string };
      expect(template.toJSON().Resources[id.Ref]).toMatchObject({
        Properties: { RetentionInDays: 365 },
        DeletionPolicy: 'Retain',
      });
    });

    it('delivers to its own private, TLS-only, retained bucket, access-logged, expiring with the logs', () => {
      const bucket = trail.Properties.S3BucketName as { Ref: string };
      expect(template.toJSON().Resources[bucket.Ref]).toMatchObject({
        Type: 'AWS::S3::Bucket',
        DeletionPolicy: 'Retain',
        Properties: {
          PublicAccessBlockConfiguration: {
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
          LifecycleConfiguration: { Rules: [{ ExpirationInDays: 365, Status: 'Enabled' }] },
          LoggingConfiguration: { LogFilePrefix: 'token-reads-bucket/' },
        },
      });
    });

    it('has a name fixed at synth, which its bucket policy names', () => {
      expect(trail.Properties.TrailName).toMatch(/^Test-Minter-[0-9A-F]{8}-token-reads$/);
    });
  });

  it('follows tokenPrefix', () => {
    const { template, minter, r } = build({
      ...TTL,
      tokenPrefix: 'reg/prod',
      recordTokenReads: {},
    });
    template.hasResourceProperties('AWS::CloudTrail::Trail', {
      EventSelectors: [tokenReads(r(minter.tokenBucket.bucketArn), 'reg/prod/tokens/', false)],
    });
  });

  it('keeps the events as long as asked, or for good', () => {
    const month = build({
      ...TTL,
      recordTokenReads: { retention: logs.RetentionDays.ONE_MONTH },
    }).template;
    month.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    month.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [{ ExpirationInDays: 30, Status: 'Enabled' }] },
    });
    const forever = build({
      ...TTL,
      recordTokenReads: { retention: logs.RetentionDays.INFINITE },
    });
    forever.template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: Match.absent(),
    });
    const trailBucket = (
      Object.values(forever.template.findResources('AWS::CloudTrail::Trail'))[0] as {
        Properties: { S3BucketName: { Ref: string } };
      }
    ).Properties.S3BucketName.Ref;
    expect(
      forever.template.toJSON().Resources[trailBucket].Properties.LifecycleConfiguration,
    ).toBeUndefined();
  });

  it('on a trail of the app: adds the selector to it and creates no trail, bucket or log group of its own', () => {
    const { template, minter, accountTrail, r } = build(TTL, true);
    expect(minter.tokenReads?.trail).toBe(accountTrail);
    expect(minter.tokenReads?.logGroup).toBeUndefined();
    template.resourceCountIs('AWS::CloudTrail::Trail', 1);
    template.resourceCountIs('AWS::Logs::LogGroup', 1); // the function's
    // The account trail's own settings (management events, all regions) are left alone.
    template.hasResourceProperties('AWS::CloudTrail::Trail', {
      IsMultiRegionTrail: true,
      IncludeGlobalServiceEvents: true,
      EventSelectors: [tokenReads(r(minter.tokenBucket.bucketArn), 'tokens/')],
    });
  });
});

describe('the stack’s recordTokenReads context', () => {
  const stackWith = (context: Record<string, unknown>) => {
    const app = newApp({ context });
    return new RegtokenStack(app, 'Regtoken', propsFromContext(app.node));
  };

  it('true: a dedicated trail and the output TokenReadsLogGroupName', () => {
    const stack = stackWith({ recordTokenReads: 'true' });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CloudTrail::Trail', 1);
    template.hasOutput('TokenReadsLogGroupName', {
      Value: stack.resolve(stack.minter.tokenReads?.logGroup?.logGroupName),
    });
  });

  it('unset: no trail and no output', () => {
    const template = Template.fromStack(stackWith({}));
    template.resourceCountIs('AWS::CloudTrail::Trail', 0);
    expect(Object.keys(template.findOutputs('TokenReadsLogGroupName'))).toEqual([]);
  });

  it('anything but true or false is refused', () => {
    expect(() => stackWith({ recordTokenReads: 'yes' })).toThrow(
      'context recordTokenReads="yes" must be true or false',
    );
  });
});
