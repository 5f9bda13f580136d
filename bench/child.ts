/**
 * One measurement in a fresh process, so its peak RSS is its own: `engine N OUT.json` or
 * `e2e N OUT.json SETUP_JSON`. The parent (bench/run.ts) bundles this file to plain JavaScript
 * before running it, so no TypeScript loader sits in the measured process.
 */

import { writeFileSync } from 'node:fs';
import type { AwsSetup } from './e2e.js';
import { measureE2E } from './e2e.js';
import { measureEngine } from './engine.js';
import { generateWorkload } from './generate.js';
import type { ServerCpu } from './server-cpu.js';

const [mode, size, out, extra] = process.argv.slice(2);
const n = Number(size);
if (!out || !Number.isInteger(n) || (mode !== 'engine' && mode !== 'e2e'))
  throw new Error('usage: child engine|e2e N OUT.json [OPTIONS_JSON]');
const options = JSON.parse(extra ?? '{}') as {
  reps: number;
  warmup?: number;
  unchanged?: boolean;
  direct?: boolean;
  setup?: AwsSetup;
  server?: ServerCpu;
};
const workload = generateWorkload(n);
const result =
  mode === 'engine'
    ? await measureEngine(workload, {
        reps: options.reps,
        warmup: options.warmup ?? 2,
        unchanged: options.unchanged ?? false,
      })
    : await measureE2E(workload, options.setup as AwsSetup, {
        reps: options.reps,
        direct: options.direct ?? false,
        ...(options.server ? { server: options.server } : {}),
      });
writeFileSync(out, JSON.stringify(result));
