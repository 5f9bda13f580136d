/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy`; cdk.json runs it with tsx). Settings come
 * from CDK context, see {@link propsFromContext} and docs/deploy.md. cdk-nag's AWS Solutions
 * checks run on every synth: an unacknowledged finding fails it.
 */

import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { propsFromContext, RegtokenStack } from './stack.js';

const app = new App();
const stackName = String(app.node.tryGetContext('stackName') ?? 'Regtoken');
new RegtokenStack(app, stackName, propsFromContext(app.node));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
