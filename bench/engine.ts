/**
 * Engine only: config text → every token signed, in memory. It runs the real mint run
 * (lambda/mint.ts: parseGrants, resolveAccess, claimsEncoder, signEncoded, token documents) with
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
import { claimsEncoder, signEncoded } from '../lambda/core/token.js';
import { mint } from '../lambda/mint.js';
import { GrantsCache } from '../lambda/steps/plan.js';
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
  /**
   * Median CPU time (user + system, every thread of the process: the garbage collector's
   * helpers too) of the engine and of the floor, ms: on a shared machine wall time also counts
   * the time other processes had the core.
   */
  readonly engineCpuMs: number;
  readonly floorCpuMs: number;
  /** Where the engine's time goes (medians, ms), measured by calling the steps directly. */
  readonly phases: {
    readonly parse: number;
    readonly resolve: number;
    readonly claimsAndSign: number;
  };
  /** Peak RSS of this process (KiB). */
  readonly maxRssKiB: number;
}

/**
 * A token store that writes each token's bytes into one buffer outside the JavaScript heap, as
 * a real store writes them out (a file, an S3 object): a run's tokens are garbage once written,
 * and a store that kept 10,000 token strings alive would make the garbage collector copy them,
 * a cost no real store has. Beyond copying the bytes out it only notes where each token is (for
 * the floor's signing inputs, read back from the buffer) and its key, so that the measurement
 * is the engine's work, not the stand-in's. The buffer is made (and its pages touched) once,
 * outside the measurement, and reused by every run.
 */
class MemoryStore implements TokenStore {
  readonly concurrency = 32;
  #keys: string[] = [];
  #bytes: Buffer;
  #used = 0;
  /** Where each token starts in the buffer, and where its signing input ends. */
  readonly #ranges: number[] = [];
  bundle: string | undefined;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }
  /** The buffer, grown if a run needed more: the next run reuses it. */
  get bytes(): Buffer {
    return this.#bytes;
  }
  locate(key: string): string {
    return `mem://${key}`;
  }
  async listTokenKeys(): Promise<string[]> {
    return [...new Set(this.#keys)];
  }
  async putToken(key: string, doc: TokenDocument): Promise<void> {
    const token = doc.token;
    if (this.#used + token.length > this.#bytes.length) {
      const bigger = Buffer.alloc(2 * this.#bytes.length + token.length);
      this.#bytes.copy(bigger, 0, 0, this.#used);
      this.#bytes = bigger;
    }
    this.#bytes.write(token, this.#used, 'latin1');
    this.#ranges.push(this.#used, this.#used + token.lastIndexOf('.'));
    this.#used += token.length;
    this.#keys.push(key);
  }
  async deleteToken(key: string): Promise<boolean> {
    const before = this.#keys.length;
    this.#keys = this.#keys.filter((k) => k !== key);
    return this.#keys.length < before;
  }
  async readTrustBundle(): Promise<string | undefined> {
    return this.bundle;
  }
  async publishTrust(t: { bundlePem: string }): Promise<{ bundle: string; jwks: string }> {
    this.bundle = t.bundlePem;
    return { bundle: 'mem://trust/bundle.pem', jwks: 'mem://trust/jwks.json' };
  }
  /** Each token's signing input (`header.claims`), copied out of the buffer. */
  signingInputs(): Buffer[] {
    const inputs: Buffer[] = [];
    for (let i = 0; i < this.#ranges.length; i += 2)
      inputs.push(Buffer.from(this.#bytes.subarray(this.#ranges[i], this.#ranges[i + 1])));
    return inputs;
  }
}

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Measures the engine and its floor, alternating, `reps` times after `warmup` rounds. */
export async function measureEngine(
  w: Workload,
  options: { reps: number; warmup: number; unchanged?: boolean },
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
    read: async () => ({
      text: options.unchanged ? w.configText : `${w.configText}# read ${++reads}\n`,
    }),
  };
  // Unchanged grants: the model a warm container keeps (GrantsCache), parsed once.
  const grantsCache = options.unchanged ? new GrantsCache() : undefined;
  const inventory = { name: 'bench inventory', list: async () => [...w.inventory] };

  // 10,000 tokens take about 26 MB.
  let bytes: Buffer = Buffer.alloc(64 * 1024 * 1024);
  const runEngine = async (): Promise<MemoryStore> => {
    const store = new MemoryStore(bytes);
    const result = await mint({
      config,
      store,
      signer,
      inventory,
      logger: silentLogger,
      metrics: noMetrics,
      grantsCache,
    });
    if (result.failed.length)
      throw new Error(`engine: ${result.failed.length} tokens failed: ${result.failed[0]?.reason}`);
    bytes = store.bytes;
    return store;
  };
  const runFloor = (inputs: readonly Buffer[], k: KeyObject): void => {
    for (const input of inputs) sign('sha256', input, { key: k, dsaEncoding: 'ieee-p1363' });
  };

  const engineSamples: number[] = [];
  const floorSamples: number[] = [];
  const engineCpu: number[] = [];
  const floorCpu: number[] = [];
  let tokens = 0;
  for (let i = 0; i < options.warmup + options.reps; i++) {
    gc();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const store = await runEngine();
    const engineMs = performance.now() - t0;
    const engineCpuMs = cpuMs(process.cpuUsage(c0));
    const inputs = store.signingInputs();
    tokens = inputs.length;
    gc();
    const c1 = process.cpuUsage();
    const t1 = performance.now();
    runFloor(inputs, privateKey);
    const floorMs = performance.now() - t1;
    const floorCpuMs = cpuMs(process.cpuUsage(c1));
    if (i >= options.warmup) {
      engineSamples.push(engineMs);
      floorSamples.push(floorMs);
      engineCpu.push(engineCpuMs);
      floorCpu.push(floorCpuMs);
    }
  }

  // The same work step by step, to show where the time goes.
  const parse: number[] = [];
  const resolve: number[] = [];
  const claimsAndSign: number[] = [];
  for (let i = 0; i < options.reps; i++) {
    gc();
    let t = performance.now();
    const cfg = await parseGrants(w.configText, 'bench.yaml');
    parse.push(performance.now() - t);
    t = performance.now();
    const resolved = resolveAccess(cfg, w.inventory);
    resolve.push(performance.now() - t);
    t = performance.now();
    const encode = claimsEncoder({
      issuer: cfg.registry.issuer,
      service: cfg.registry.service,
      now,
    });
    for (const access of resolved)
      await signEncoded(
        encode({
          subject: access.principal.arn,
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
    engineCpuMs: median(engineCpu),
    floorCpuMs: median(floorCpu),
    phases: {
      parse: median(parse),
      resolve: median(resolve),
      claimsAndSign: median(claimsAndSign),
    },
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}
