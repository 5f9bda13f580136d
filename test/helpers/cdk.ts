/**
 * Builds CDK apps for the infra tests the way `npx cdk synth` builds them: with the context
 * (feature flags) from the repository's cdk.json. Bundling the function is skipped unless asked
 * for: most tests look at the template, and one test bundles for real (synth.test.ts).
 */

import { readFileSync } from 'node:fs';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import type { RegtokenStackProps } from '../../infra/stack.js';

/** The repository root. */
export const ROOT = new URL('../../', import.meta.url).pathname;

/** The `context` of cdk.json: what every `cdk synth` of this repository runs with. */
export function cdkJsonContext(): Record<string, unknown> {
  const json = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return json.context ?? {};
}

/** A new App with cdk.json's context, extra context, and bundling skipped unless `bundle`. */
export function newApp(options: { context?: Record<string, unknown>; bundle?: boolean } = {}) {
  return new App({
    context: {
      ...cdkJsonContext(),
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...options.context,
    },
  });
}

/** A stack built by `build` in a fresh app, and its synthesized template. */
export function synth(build: (stack: Stack) => void): { stack: Stack; template: Template } {
  const app = newApp();
  const stack = new Stack(app, 'Test');
  build(stack);
  return { stack, template: Template.fromStack(stack) };
}

/** One cdk-nag finding: the rule (with its finding id) and where. */
export interface Finding {
  readonly rule: string;
  readonly path: string;
}

/**
 * Runs cdk-nag's AWS Solutions pack over `scope` and returns its findings. With
 * `ignoreAcknowledgements`, acknowledged findings are reported too (to prove that every
 * acknowledgement answers a real finding).
 */
export function nagFindings(
  scope: Construct,
  options: { ignoreAcknowledgements?: boolean } = {},
): Finding[] {
  const pack = new AwsSolutionsChecks();
  if (options.ignoreAcknowledgements)
    // isAcknowledged is private in cdk-nag; replacing it is the only way to see every finding.
    (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack
    .validateScope(scope)
    .violations.flatMap((v) =>
      v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath ?? '?' })),
    );
}

/** Every acknowledgement recorded with Validations.of(…).acknowledge under `scope`. */
export function acknowledgements(
  scope: Construct,
): { readonly path: string; readonly id: string; readonly reason: string }[] {
  const out: { path: string; id: string; reason: string }[] = [];
  for (const c of scope.node.findAll())
    for (const entry of c.node.metadata)
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY && entry.data)
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
          out.push({ path: c.node.path, id: id.replace(/^annotation::/i, ''), reason });
  return out;
}

/**
 * Template JSON as the assertions read it: deeply nested CloudFormation whose shape is exactly
 * what the tests check, so it is not typed further.
 */
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON; the tests assert its shape
export type CfnJson = any;

/** A stack with every option set (the infra tests' "everything" case). */
export const EVERY_OPTION: RegtokenStackProps = {
  grantsFile: `${ROOT}examples/config-repo/grants.yaml`,
  rootKeys: ['1', '2'],
  signingKey: '2',
  alarmEmail: 'ops@example.com',
  githubRepository: 'my-org/registry-grants',
  registryBucket: 'registry-storage',
  registryPrefix: 'prod',
  additionalMinterArns: ['arn:aws:iam::111122223333:role/ops/break-glass'],
  realm: true,
  recordTokenReads: true,
};
