#!/usr/bin/env node
// The `docker-credential-regtoken` command (docs/client.md). It runs the compiled code, which `npm ci` builds.
import { launch } from './launch.js';

await launch('../dist/lambda/cli/docker-credential-helper.js');
