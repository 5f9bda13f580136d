/**
 * The run lock's timing decisions, by S3's clock only (lambda/core/lease.ts): a table of lock
 * states, and a lease's write deadline on an injected monotonic clock.
 */

import { describe, expect, it } from '@jest/globals';
import { judgeLock, Lease, LeaseFence, leaseMarginMs } from '../../lambda/core/lease.js';
import { LeaseExpiredError } from '../../lambda/errors.js';

const T = Date.parse('2026-01-02T03:04:05Z');

describe('judgeLock: may a run take the lock it read?', () => {
  // [case, Last-Modified, S3 now, lease, released, decision]
  it.each([
    ['given back', T, T + 1_000, 60_000, true, { kind: 'free' }],
    ['live', T, T + 59_999, 60_000, false, { kind: 'held', until: T + 60_000 }],
    [
      'just run out: wait out the margin',
      T,
      T + 60_000,
      60_000,
      false,
      { kind: 'wait', ms: 20_000 },
    ],
    ['run out, margin nearly over', T, T + 79_999, 60_000, false, { kind: 'wait', ms: 1 }],
    ['run out and past the margin', T, T + 80_000, 60_000, false, { kind: 'free' }],
  ] as const)('%s', (_name, lastModified, serverNow, leaseMs, released, decision) => {
    expect(judgeLock({ lastModified, serverNow, leaseMs, released }, 20_000)).toEqual(decision);
  });
});

describe('a lease', () => {
  const at = (ms: number) => () => ms;
  const lease = (now: () => number) =>
    new Lease({
      sentAt: 1_000,
      receivedAt: 1_200,
      serverAt: T,
      leaseMs: 60_000,
      marginMs: leaseMarginMs(5_000),
      where: 's3://b/state/lock.json',
      monotonic: now,
    });

  it('allows writes until its margin starts, counted from when the taking write was sent', () => {
    expect(() => lease(at(1_000 + 60_000 - 10_000 - 1)).check()).not.toThrow();
    expect(() => lease(at(1_000 + 60_000 - 10_000)).check()).toThrow(LeaseExpiredError);
  });

  it("tells AWS's time from the answer that granted it", () => {
    expect(lease(at(1_200 + 2_500)).now()).toEqual(new Date(T + 2_500));
  });

  it('refuses every write once released, and a fence with no lease refuses too', () => {
    const fence = new LeaseFence();
    expect(() => fence.check()).toThrow('no run lock is held; the run may not write');
    fence.arm(lease(at(2_000)));
    expect(() => fence.check()).not.toThrow();
    fence.disarm();
    expect(() => fence.check()).toThrow(LeaseExpiredError);
  });
});
