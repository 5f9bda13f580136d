/**
 * cdk-nag v3 AWS Solutions checks: zero unacknowledged findings for the stack the app deploys,
 * with every option on, and in a concrete environment; every acknowledgement carries a reason
 * and answers a finding that really exists (none is stale or too broad).
 */

import { describe, expect, it } from '@jest/globals';
import { type App, aws_s3 as s3, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { propsFromContext, RegtokenStack, type RegtokenStackProps } from '../../infra/stack.js';
import { acknowledgements, EVERY_OPTION, nagFindings, newApp } from '../helpers/cdk.js';

/** An app with the stack, and cdk-nag registered the way infra/app.ts registers it. */
function appWith(props: RegtokenStackProps | 'from context'): App {
  const app = newApp();
  new RegtokenStack(app, 'Regtoken', props === 'from context' ? propsFromContext(app.node) : props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

describe.each([
  ['the app as deployed by default', 'from context' as const],
  ['every option on', EVERY_OPTION],
  [
    'every option on, in a concrete account and region',
    {
      ...EVERY_OPTION,
      env: { account: '111122223333', region: 'eu-west-1' },
    },
  ],
])('AwsSolutionsChecks on %s', (_, props) => {
  const app = appWith(props);

  it('has no unacknowledged finding', () => {
    expect(nagFindings(app)).toEqual([]);
  });

  it('synthesizes with the checks registered as a validation plugin', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('acknowledges each finding with a reason, and only findings that exist', () => {
    const all = nagFindings(app, { ignoreAcknowledgements: true });
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect({ id: ack.id, reason: ack.reason.length >= 40 }).toEqual({ id: ack.id, reason: true });
      const answered = all.some(
        (f) => f.rule === ack.id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)),
      );
      expect({ ack: `${ack.path} ${ack.id}`, answered }).toEqual({
        ack: `${ack.path} ${ack.id}`,
        answered: true,
      });
    }
  });
});

describe('the checks are live', () => {
  it('an unacknowledged finding fails synth', () => {
    const app = appWith('from context');
    new s3.Bucket(app.node.findChild('Regtoken'), 'Careless');
    expect(nagFindings(app).map((f) => f.rule)).toEqual(
      expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']),
    );
    expect(() => app.synth()).toThrow(/AwsSolutions-S1/);
  });

  it('lists the acknowledgements of the default stack (review them with this list)', () => {
    const ids = acknowledgements(appWith('from context'))
      .map((a) => `${a.path.replace(/^Regtoken\//, '')}: ${a.id}`)
      .sort();
    expect(ids).toEqual([
      'BucketNotificationsHandler050a0587b7544547bf325f094a3db834: AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'Minter/FailedInvocations: AwsSolutions-SQS3',
      'Minter/Function: AwsSolutions-L1',
      'Minter/Role: AwsSolutions-IAM5[Resource::*]',
      'Minter/Role: AwsSolutions-IAM5[Resource::<MinterTokenBucketD2F40F8B.Arn>/tokens/*]',
      'Minter/ScheduleRole: AwsSolutions-IAM5[Resource::<MinterFunctionD2A57B74.Arn>:*]',
      'Minter/TokenBucket: AwsSolutions-S10',
    ]);
  });
});
