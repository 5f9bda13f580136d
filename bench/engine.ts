/**
 * Engine only: config text → every token signed, in memory. It runs the real mint run
 * (lambda/mint.ts: parseGrants, resolveAccess, buildClaims, signToken, token documents) with
 * in-memory ports and a local P-256 key, and compares it with its floor measured in the same
 * process: raw ES256 signing (node:crypto, `ieee-p1363`) of exactly the same signing inputs
 * (`header.claims` of the tokens the run made).
 */

import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { localSigningKey } from '../lambda/adapters/pem-signer.js';
import { parseGrants } from '../lambda/core/config.js';
import { resolveAccess } from '../lambda/core/grants.js';
import {
  type ConfigSource,
  noMetrics,
  type Signer,
  type SigningKey,
  silentLogger,
  type TokenDocument,
  type TokenStore,
} from '../lambda/core/ports.js';
import { buildClaims, signToken } from '../lambda/core/token.js';
import { mint } from '../lambda/mint.js';
import type { Workload } from './generate.js';
import { median } from './stats.js';

export interface EngineResult {
  readonly tokens: number;
  readonly reps: number;
  /** Median wall time of the whole engine, ms. */
  readonly engineMs: number;
  /** Median wall time of the floor (raw signing of the same inputs), ms. */
  readonly floorMs: number;
  readonly engineSamples: readonly number[];
  readonly floorSamples: readonly number[];
  /** Where the engine's time goes (medians, ms), measured by calling the steps directly. */
  readonly phases: {
    readonly parse: number;
    readonly resolve: number;
    readonly claimsAndSign: number;
  };
  /** Peak RSS of this process (KiB). */
  readonly maxRssKiB: number;
}

/** A token store that keeps documents in a Map. */
class MemoryStore implements TokenStore {
  readonly concurrency = 32;
  readonly docs = new Map<string, TokenDocument>();
  bundle: string | undefined;
  locate(key: string): string {
    return `mem://${key}`;
  }
  async listTokenKeys(): Promise<string[]> {
    return [...this.docs.keys()];
  }
  async putToken(key: string, doc: TokenDocument): Promise<void> {
    this.docs.set(key, doc);
  }
  async deleteToken(key: string): Promise<boolean> {
    return this.docs.delete(key);
  }
  async readTrustBundle(): Promise<string | undefined> {
    return this.bundle;
  }
  async publishTrust(t: { bundlePem: string }): Promise<{ bundle: string; jwks: string }> {
    this.bundle = t.bundlePem;
    return { bundle: 'mem://trust/bundle.pem', jwks: 'mem://trust/jwks.json' };
  }
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Measures the engine and its floor, alternating, `reps` times after `warmup` rounds. */
export async function measureEngine(
  w: Workload,
  options: { reps: number; warmup: number },
): Promise<EngineResult> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = new Date();
  // The key and its certificate are made once, as a local key file and its published bundle are.
  const key: SigningKey = await localSigningKey(privateKey, now, undefined, 'bench key');
  const signer: Signer = { prepare: async () => key };
  // A different text on every read (a trailing comment): with a grants cache an unchanged text
  // is not parsed again, and the engine must parse on every repetition, as a cold run does.
  let reads = 0;
  const config: ConfigSource = {
    name: 'bench.yaml',
    read: async () => ({ text: `${w.configText}# read ${++reads}\n` }),
  };
  const inventory = { name: 'bench inventory', list: async () => [...w.inventory] };

  const runEngine = async (): Promise<MemoryStore> => {
    const store = new MemoryStore();
    const result = await mint({
      config,
      store,
      signer,
      inventory,
      logger: silentLogger,
      metrics: noMetrics,
    });
    if (result.failed.length)
      throw new Error(`engine: ${result.failed.length} tokens failed: ${result.failed[0]?.reason}`);
    return store;
  };
  const inputsOf = (store: MemoryStore): Buffer[] =>
    [...store.docs.values()].map((d) => Buffer.from(d.token.slice(0, d.token.lastIndexOf('.'))));
  const runFloor = (inputs: readonly Buffer[], k: KeyObject): void => {
    for (const input of inputs) sign('sha256', input, { key: k, dsaEncoding: 'ieee-p1363' });
  };

  const engineSamples: number[] = [];
  const floorSamples: number[] = [];
  let tokens = 0;
  for (let i = 0; i < options.warmup + options.reps; i++) {
    gc();
    const t0 = performance.now();
    const store = await runEngine();
    const engineMs = performance.now() - t0;
    const inputs = inputsOf(store);
    tokens = inputs.length;
    gc();
    const t1 = performance.now();
    runFloor(inputs, privateKey);
    const floorMs = performance.now() - t1;
    if (i >= options.warmup) {
      engineSamples.push(engineMs);
      floorSamples.push(floorMs);
    }
  }

  // The same work step by step, to show where the time goes.
  const parse: number[] = [];
  const resolve: number[] = [];
  const claimsAndSign: number[] = [];
  for (let i = 0; i < options.reps; i++) {
    gc();
    let t = performance.now();
    const cfg = parseGrants(w.configText, 'bench.yaml');
    parse.push(performance.now() - t);
    t = performance.now();
    const resolved = resolveAccess(cfg, w.inventory);
    resolve.push(performance.now() - t);
    t = performance.now();
    for (const access of resolved)
      await signToken(
        buildClaims({
          issuer: cfg.registry.issuer,
          service: cfg.registry.service,
          subject: access.principal.arn,
          now,
          ttlSeconds: access.ttlSeconds,
          jti: 'x'.repeat(22),
          access: access.access,
        }),
        key,
      );
    claimsAndSign.push(performance.now() - t);
  }

  return {
    tokens,
    reps: options.reps,
    engineMs: median(engineSamples),
    floorMs: median(floorSamples),
    engineSamples,
    floorSamples,
    phases: {
      parse: median(parse),
      resolve: median(resolve),
      claimsAndSign: median(claimsAndSign),
    },
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}
