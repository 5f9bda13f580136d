/**
 * A fanned-out run's worker reads its shard file before it certifies a key or writes a token:
 * a file it cannot read as this version's format (version 2: each principal with its token key
 * and its rank in ARN order) is refused with one line naming the file, and nothing is written.
 */

import { describe, expect, it } from '@jest/globals';
import { type RunFiles, silentLogger, type TransferableLock } from '../../lambda/core/ports.js';
import { shardFileName } from '../../lambda/core/shards.js';
import { StoreError } from '../../lambda/errors.js';
import { mintShard } from '../../lambda/fan-out.js';
import { MemoryStore } from '../helpers/memory-ports.js';

const RUN = 'run-1';
const SHARD = { index: 1, account: '111122223333', principals: 1 };
const WHERE = `mem://${RUN}/${shardFileName(1)}`;

/** A worker's ports around a shard file with this body (undefined: no file). */
function worker(body: unknown) {
  const store = new MemoryStore();
  let certified = 0;
  const files: RunFiles = {
    write: async () => 'mem://written',
    read: async (run, name) => (run === RUN && name === shardFileName(1) ? body : undefined),
    remove: async () => undefined,
    locate: (run, name) => `mem://${run}/${name}`,
  };
  const lock: TransferableLock = {
    acquire: async () => undefined,
    release: async () => undefined,
    heldTag: '"tag"',
    join: async () => ({ now: () => new Date(), check: () => undefined }),
    adopt: () => undefined,
  };
  const signer = {
    prepare: async () => Promise.reject(new Error('a worker prepares no key')),
    prepareRoot: async () => Promise.reject(new Error('a worker prepares no root')),
    certify: async () => {
      certified += 1;
      return Promise.reject(new Error('not reached'));
    },
  };
  const run = () =>
    mintShard(
      { run: RUN, lock: { tag: '"tag"', writesEndAt: Date.now() + 60_000 }, item: SHARD },
      { logger: silentLogger, store, signer, files },
      lock,
    );
  return { run, store, certified: () => certified };
}

const settings = {
  issuer: 'iss',
  service: 'svc',
  host: 'registry.test',
  maxTokenBytes: 8192,
  issuedAt: '2026-11-30T00:00:00.000Z',
  inventory: undefined,
};
const root = { keyId: 'arn:aws:kms:us-east-1:111122223333:key/k', publicKey: 'AAAA' };

describe("a worker's shard file", () => {
  it.each([
    ['the previous format (version 1)', { version: 1, settings, root, principals: [] }],
    ['without a version', { settings, root, principals: [] }],
    ['without principals', { version: 2, settings, root }],
    ['without settings', { version: 2, root, principals: [] }],
    ['without a root', { version: 2, settings, principals: [] }],
    ['a string instead of an object', 'shard'],
  ])('is refused: %s, before a key is certified or a token written', async (_name, body) => {
    const w = worker(body);
    const failure = w.run();
    await expect(failure).rejects.toBeInstanceOf(StoreError);
    await expect(failure).rejects.toThrow(
      `${WHERE}: not a shard file this version of regtoken reads`,
    );
    expect(w.certified()).toBe(0);
    expect(w.store.writes).toBe(0);
  });

  it('is reported missing by name', async () => {
    const w = worker(undefined);
    await expect(w.run()).rejects.toThrow(`${WHERE}: no such shard file`);
    expect(w.certified()).toBe(0);
  });
});
