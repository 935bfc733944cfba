import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.js';

const fast = { baseDelayMs: 10, maxDelayMs: 80, ratePerSecond: 1000, burst: 100 };

describe('WorkQueue', () => {
  it('queues a key once however often it is added', async () => {
    const q = new WorkQueue(fast);
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
    q.shutdown();
  });

  it('never hands out a key being processed; re-added meanwhile, it comes back after done', async () => {
    const q = new WorkQueue(fast);
    q.add('ns/a');
    const key = await q.get();
    q.add('ns/a');
    expect(q.depth).toBe(0);
    q.done(key ?? '');
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('ns/a');
    q.shutdown();
  });

  it('backs off exponentially per key up to the maximum, and forget resets it', () => {
    const q = new WorkQueue(fast);
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('ns/a'))).toEqual([10, 20, 40, 80, 80]);
    q.forget('ns/a');
    expect(q.addRateLimited('ns/a')).toBe(10);
    q.shutdown();
  });

  it('delivers a rate-limited retry later, and get() returns undefined after shutdown', async () => {
    const q = new WorkQueue(fast);
    q.addRateLimited('ns/a');
    expect(await q.get()).toBe('ns/a');
    const waiting = q.get();
    q.shutdown();
    expect(await waiting).toBeUndefined();
  });
});
