import { describe, expect, it } from 'vitest';
import { OrderedWrites } from './ordered-writes.js';

/** A write that completes when the test says so. */
function gate<T>(): { promise: Promise<T>; open: (value: T) => void; fail: (err: Error) => void } {
  let open!: (value: T) => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<T>((resolve, reject) => ((open = resolve), (fail = reject)));
  return { promise, open, fail };
}

function writes(waitMs: number) {
  const delayed: number[] = [];
  const failures: string[] = [];
  const w = new OrderedWrites({ waitMs, onDelayed: (ms) => delayed.push(ms), onLateFailure: (err) => failures.push(err.message) });
  return { w, delayed, failures };
}

describe('OrderedWrites', () => {
  it('answers with the write when it is done within the wait', async () => {
    const { w, delayed } = writes(200);
    expect(await w.run(async () => 'stored', 'meanwhile', () => undefined)).toBe('stored');
    await expect(w.run(() => Promise.reject(new Error('refused')), 'meanwhile', () => undefined)).rejects.toThrow('refused');
    expect(delayed).toEqual([]);
  });

  it('goes on after the wait, runs later writes behind the slow one, and hands the late result over', async () => {
    const { w, delayed } = writes(30);
    const slow = gate<string>();
    const order: string[] = [];
    const late: string[] = [];
    const first = w.run(() => slow.promise.then((r) => (order.push('first'), r)), 'meanwhile', (r) => late.push(r));
    const second = w.run(async () => (order.push('second'), 'second'), 'meanwhile', (r) => late.push(r));
    expect(await first).toBe('meanwhile');
    expect(await second).toBe('meanwhile');
    expect(order).toEqual([]);
    expect(w.depth).toBe(2);
    expect(await w.settled(10)).toBe(false);
    slow.open('first');
    expect(await w.settled(1000)).toBe(true);
    expect(order).toEqual(['first', 'second']);
    expect(late).toEqual(['first', 'second']);
    expect(delayed).toEqual([30, 30]);
    expect(w.depth).toBe(0);
  });

  it('reports a write that fails after the caller went on, and the next write still runs', async () => {
    const { w, failures } = writes(20);
    const slow = gate<string>();
    expect(await w.run(() => slow.promise, 'meanwhile', () => undefined)).toBe('meanwhile');
    let ran = false;
    void w.run(async () => (ran = true), false, () => undefined);
    slow.fail(new Error('no leader'));
    expect(await w.settled(1000)).toBe(true);
    expect(failures).toEqual(['no leader']);
    expect(ran).toBe(true);
  });

  it('does not wait at all when asked so (stopping)', async () => {
    const { w } = writes(10_000);
    const slow = gate<string>();
    const started = Date.now();
    expect(await w.run(() => slow.promise, 'meanwhile', () => undefined, 0)).toBe('meanwhile');
    expect(Date.now() - started).toBeLessThan(1000);
    slow.open('done');
    expect(await w.settled(1000)).toBe(true);
  });
});
