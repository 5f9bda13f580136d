/**
 * What every Lambda entry point of the minter reads the same way: its settings from the
 * environment, and what started it (for the log).
 */

import { type EnvSettings, required } from './env.js';
import type { RunSettings } from './run.js';

/** Settings for the function from its environment; a missing required one fails by name. */
export function lambdaSettings(env: EnvSettings): RunSettings {
  return {
    config: required(env.config, 'REGTOKEN_CONFIG'),
    out: required(env.out, 'REGTOKEN_OUT'),
    signingKey: required(env.signingKey, 'REGTOKEN_SIGNING_KEY'),
    repositories: env.repositories,
    minterArns: env.minterArns,
    trustedKeys: env.trustedKeys,
    signingMode: env.signingMode,
    lockLease: env.lockLease,
    schedule: env.schedule,
    lifetimeMargin: env.lifetimeMargin,
  };
}

/** What started a run, in a word for the log: `s3:KEY`, an event source, or `schedule`. */
export function describeTrigger(event: unknown): string {
  const e = event as {
    Records?: { eventSource?: string; s3?: { object?: { key?: string } } }[];
    source?: string;
    detail?: { object?: { key?: string } };
  };
  const record = e?.Records?.[0];
  if (record?.eventSource === 'aws:s3') return `s3:${record.s3?.object?.key ?? '?'}`;
  // The same upload as an EventBridge event (what starts a fanned-out run).
  if (e?.source === 'aws.s3') return `s3:${e.detail?.object?.key ?? '?'}`;
  if (typeof e?.source === 'string') return e.source;
  return 'schedule';
}
