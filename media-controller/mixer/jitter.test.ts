import { describe, expect, it } from 'vitest';
import { DecodeTables, EncodeTables } from './g711.js';
import { FRAME_SAMPLES, JitterBuffer } from './jitter.js';

const table = DecodeTables.PCMU;
function frame(value: number, samples = FRAME_SAMPLES): Uint8Array {
  return new Uint8Array(samples).fill(EncodeTables.PCMU[value + 32768]!);
}
const decoded = (v: number) => table[EncodeTables.PCMU[v + 32768]!]!;

/** Pulls ticks until real audio comes out (bounded), returning that frame. */
function firstAudio(jb: JitterBuffer, out: Int16Array): number {
  for (let i = 0; i < 10; i++) if (jb.pull(out) > 0) return i;
  throw new Error('no audio after 10 ticks');
}

describe('JitterBuffer', () => {
  it('plays packets in timestamp order after a short prefill, reordered or not', () => {
    const jb = new JitterBuffer();
    const out = new Int16Array(FRAME_SAMPLES);
    jb.push(1, 1000, frame(100), 0, FRAME_SAMPLES, table);
    jb.push(1, 1320, frame(300), 0, FRAME_SAMPLES, table);
    jb.push(1, 1160, frame(200), 0, FRAME_SAMPLES, table);
    const delay = firstAudio(jb, out);
    expect(delay).toBeGreaterThan(0);
    expect(out[0]).toBe(decoded(100));
    jb.pull(out);
    expect(out[0]).toBe(decoded(200));
    jb.pull(out);
    expect(out[159]).toBe(decoded(300));
  });

  it('gives silence for a missing packet and accepts other packet sizes', () => {
    const jb = new JitterBuffer();
    const out = new Int16Array(FRAME_SAMPLES);
    jb.push(7, 0, frame(500, 80), 0, 80, table);
    jb.push(7, 80, frame(500, 80), 0, 80, table);
    jb.push(7, 320, frame(600), 0, FRAME_SAMPLES, table);
    firstAudio(jb, out);
    expect(out[0]).toBe(decoded(500));
    expect(out[159]).toBe(decoded(500));
    expect(jb.pull(out)).toBe(0);
    expect(out.every((v) => v === 0)).toBe(true);
    expect(jb.pull(out)).toBe(FRAME_SAMPLES);
    expect(out[0]).toBe(decoded(600));
  });

  it('follows a new SSRC or a timestamp jump instead of going quiet', () => {
    const jb = new JitterBuffer();
    const out = new Int16Array(FRAME_SAMPLES);
    jb.push(1, 5000, frame(100), 0, FRAME_SAMPLES, table);
    firstAudio(jb, out);
    jb.push(2, 99_999_999, frame(700), 0, FRAME_SAMPLES, table);
    firstAudio(jb, out);
    expect(out[0]).toBe(decoded(700));
    jb.push(2, 12345, frame(900), 0, FRAME_SAMPLES, table);
    firstAudio(jb, out);
    expect(out[0]).toBe(decoded(900));
    expect(jb.resyncs).toBe(2);
  });

  it('drops a late packet, and resynchronises after a run of them', () => {
    const jb = new JitterBuffer();
    const out = new Int16Array(FRAME_SAMPLES);
    jb.push(1, 0, frame(100), 0, FRAME_SAMPLES, table);
    firstAudio(jb, out);
    for (let i = 0; i < 5; i++) jb.pull(out);
    expect(jb.push(1, 160, frame(200), 0, FRAME_SAMPLES, table)).toBe(false);
    expect(jb.late).toBe(1);
    jb.push(1, 320, frame(200), 0, FRAME_SAMPLES, table);
    expect(jb.push(1, 480, frame(300), 0, FRAME_SAMPLES, table)).toBe(true);
    expect(jb.resyncs).toBe(1);
    firstAudio(jb, out);
    expect(out[0]).toBe(decoded(300));
  });

  it('wraps the 32-bit timestamp', () => {
    const jb = new JitterBuffer();
    const out = new Int16Array(FRAME_SAMPLES);
    jb.push(1, 0xffffff00, frame(100), 0, FRAME_SAMPLES, table);
    jb.push(1, (0xffffff00 + 160) >>> 0, frame(200), 0, FRAME_SAMPLES, table);
    firstAudio(jb, out);
    expect(jb.pull(out)).toBe(FRAME_SAMPLES);
    expect(out[0]).toBe(decoded(200));
    expect(jb.resyncs).toBe(0);
  });
});
