#!/usr/bin/env node
// The `regtoken-credential-provider` command (docs/client.md). It runs the compiled code, which `npm ci` builds.
import { launch } from './launch.js';

await launch('../dist/lambda/cli/credential-provider.js');
