#!/usr/bin/env node
// The `regtoken-credential-provider` command (docs/client.md). It runs the built code (dist/bin/), which `npm ci` builds.
import { launch } from './launch.js';

await launch('../dist/bin/regtoken-credential-provider.mjs');
