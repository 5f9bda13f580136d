/**
 * In-memory ports for unit tests of the mint run and its steps: a grants source whose content
 * can change between reads, a token store that can be told to fail writes, a signer with the
 * fixed test key, a lock that records what happened, and metrics that record what was counted.
 */

import { localSigningKey } from '../../lambda/adapters/pem-signer.js';
import type {
  ConfigSource,
  Metrics,
  ReleaseNote,
  RunLease,
  RunLock,
  Signer,
  TokenDocument,
  TokenStore,
} from '../../lambda/core/ports.js';
import { fixedEcKey } from './keys.js';

/** A config source whose content can change between reads, like an S3 object being replaced. */
export class MemoryConfig implements ConfigSource {
  readonly name = 'mem://grants.yaml';
  reads = 0;
  constructor(
    public text: string,
    public version = 'v1',
    private readonly onRead?: (self: MemoryConfig) => void,
  ) {}
  async read() {
    this.reads += 1;
    const result = { text: this.text, version: this.version };
    this.onRead?.(this);
    return result;
  }
  async currentVersion() {
    return this.version;
  }
}

/** Token documents in a Map; keys in `failing` fail their writes, `failingDeletes` their deletes. */
export class MemoryStore implements TokenStore {
  readonly concurrency = 4;
  docs = new Map<string, TokenDocument>();
  bundle: string | undefined;
  failing = new Set<string>();
  failingDeletes = new Set<string>();
  writes = 0;
  deletes: string[] = [];
  listings = 0;
  locate(key: string) {
    return `mem://${key}`;
  }
  async listTokenKeys() {
    this.listings += 1;
    return [...this.docs.keys()].sort();
  }
  async putToken(key: string, doc: TokenDocument) {
    this.writes += 1;
    if (this.failing.has(key)) throw new Error('SlowDown (HTTP 503)');
    this.docs.set(key, doc);
  }
  async deleteToken(key: string) {
    this.deletes.push(key);
    if (this.failingDeletes.has(key)) throw new Error(`cannot delete ${key}`);
    return this.docs.delete(key);
  }
  async readTrustBundle() {
    return this.bundle;
  }
  async publishTrust(t: { bundlePem: string }) {
    this.bundle = t.bundlePem;
    return { bundle: 'mem://trust/bundle.pem', jwks: 'mem://trust/jwks.json' };
  }
}

/** A store with a read policy, recording the reader accounts it was given. */
export class PolicyStore extends MemoryStore {
  policies: (readonly string[])[] = [];
  /** Accounts the store refuses to name in its policy, as S3 refuses an unknown account. */
  refused = new Set<string>();
  async applyReadPolicy(accounts: readonly string[]) {
    this.policies.push(accounts.filter((a) => !this.refused.has(a)));
    return accounts.filter((a) => this.refused.has(a));
  }
}

/** Signs with the fixed test key (a self-signed certificate per bundle, as the PEM signer does). */
export const fixedSigner: Signer = {
  prepare: ({ now, publishedBundle }) =>
    localSigningKey(fixedEcKey(), now, publishedBundle, 'fixed key'),
};

/**
 * A lock that records what happened; `busy` makes acquire fail. With `handsBack`, it hands its
 * last release (and the note left with it) to the next acquire, as S3RunLock does within one
 * process, until {@link takenElsewhere}.
 */
export class FakeLock implements RunLock {
  events: string[] = [];
  /** The release the next acquire takes over, with its note. */
  released: { note: ReleaseNote | undefined } | undefined;
  /** The clock the lease reports (AWS's time for the run); the system clock by default. */
  constructor(
    public busy = false,
    private readonly leaseNow: () => Date = () => new Date(),
    private readonly handsBack = false,
  ) {}
  async acquire(): Promise<RunLease | undefined> {
    this.events.push(this.busy ? 'acquire:busy' : 'acquire');
    if (this.busy) return undefined;
    const released = this.released;
    this.released = undefined;
    return {
      now: this.leaseNow,
      check: () => undefined,
      sinceOwnRelease: released !== undefined,
      note: released?.note,
    };
  }
  async release(note?: ReleaseNote) {
    this.events.push('release');
    if (this.handsBack) this.released = { note };
  }
  /** Another process took the lock (and gave it back) since this one's release. */
  takenElsewhere() {
    this.released = undefined;
  }
}

/** Metrics that keep every call, in order, as `kind name value`. */
export class RecordingMetrics implements Metrics {
  readonly calls: string[] = [];
  count(name: string, value: number) {
    this.calls.push(`count ${name} ${value}`);
  }
  duration(name: string) {
    this.calls.push(`duration ${name}`);
  }
  metadata(key: string, value: string) {
    this.calls.push(`metadata ${key} ${value}`);
  }
}
