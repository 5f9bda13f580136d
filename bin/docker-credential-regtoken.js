#!/usr/bin/env node
// The `docker-credential-regtoken` command (docs/client.md). It runs the built code (dist/bin/), which `npm ci` builds.
import { launch } from './launch.js';

await launch('../dist/bin/docker-credential-regtoken.mjs');
