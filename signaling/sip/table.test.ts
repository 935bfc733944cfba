import { describe, expect, it } from 'vitest';
import { Table } from './table.js';

/** Deterministic PRNG (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectSame(table: Table<number>, oracle: Map<string, number>): void {
  expect(table.size).toBe(oracle.size);
  expect(table.values().sort((a, b) => a - b)).toEqual([...oracle.values()].sort((a, b) => a - b));
  for (const [k, v] of oracle) expect(table.get(k)).toBe(v);
}

describe('Table', () => {
  it('sets, replaces, finds and deletes', () => {
    const t = new Table<string>();
    expect(t.get('a')).toBeUndefined();
    expect(t.delete('a')).toBe(false);
    t.set('a', 'x');
    t.set('a', 'y');
    t.set('', 'empty key');
    expect(t.size).toBe(2);
    expect(t.get('a')).toBe('y');
    expect(t.has('')).toBe(true);
    expect(t.delete('a')).toBe(true);
    expect(t.has('a')).toBe(false);
    expect(t.size).toBe(1);
  });

  it('agrees with a Map through random churn, growth and shrinking', () => {
    const next = rng(42);
    const t = new Table<number>();
    const oracle = new Map<string, number>();
    // Keys shaped like transaction keys, from a small space so sets and deletes hit existing ones.
    const key = () => 'z9hG4bK-' + Math.floor(next() * 3000) + '|127.0.0.1:5060|INVITE';
    for (let step = 0; step < 60_000; step++) {
      const k = key();
      // Phases: grow to ~3000 entries, churn, then drain so the table shrinks again.
      const phase = Math.floor(step / 20_000);
      const p = next();
      if (phase === 0 ? p < 0.8 : phase === 1 ? p < 0.5 : p < 0.05) {
        t.set(k, step);
        oracle.set(k, step);
      } else {
        expect(t.delete(k)).toBe(oracle.delete(k));
      }
      if (step % 5000 === 0) expectSame(t, oracle);
    }
    expectSame(t, oracle);
    for (const k of [...oracle.keys()]) t.delete(k);
    expect(t.size).toBe(0);
    expect(t.values()).toEqual([]);
  });

  it('keeps colliding keys apart across deletes (backward shift keeps runs whole)', () => {
    const t = new Table<number>();
    const oracle = new Map<string, number>();
    // 40 keys in a 64-slot table: long probe runs, then deletes from their middles.
    for (let i = 0; i < 31; i++) {
      t.set('k' + i, i);
      oracle.set('k' + i, i);
    }
    for (let i = 0; i < 31; i += 3) {
      t.delete('k' + i);
      oracle.delete('k' + i);
      expectSame(t, oracle);
    }
  });
});
