#!/usr/bin/env node
// The `regtoken` command. It runs the built CLI (dist/bin/), which `npm ci` builds (the "prepare" script).
import { launch } from './launch.js';

await launch('../dist/bin/regtoken.mjs');
