#!/usr/bin/env node
// The `regtoken` command. It runs the compiled CLI, which `npm ci` builds (the "prepare" script).
import { launch } from './launch.js';

await launch('../dist/lambda/cli/main.js');
