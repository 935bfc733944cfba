import { describe, expect, it } from 'vitest';
import { DecodeTables, EncodeTables, alawToLinear, linearToAlaw, linearToUlaw, ulawToLinear } from './g711.js';

describe('G.711', () => {
  it('round-trips every code word through linear (µ-law and A-law)', () => {
    for (let b = 0; b < 256; b++) {
      // 0x7f and 0xff are the two µ-law zeros; both decode to 0, which encodes to 0xff.
      if (b !== 0x7f) expect(linearToUlaw(ulawToLinear(b))).toBe(b);
      expect(linearToAlaw(alawToLinear(b))).toBe(b);
    }
  });

  it('has the reference values at the extremes and silence', () => {
    expect(ulawToLinear(0xff)).toBe(0);
    expect(ulawToLinear(0x00)).toBe(-32124);
    expect(ulawToLinear(0x80)).toBe(32124);
    expect(alawToLinear(0xd5)).toBe(8);
    expect(alawToLinear(0xaa)).toBe(32256);
    expect(alawToLinear(0x2a)).toBe(-32256);
  });

  it('quantises within G.711 error bounds and the tables agree with the functions', () => {
    for (let s = -32768; s < 32768; s += 7) {
      const u = DecodeTables.PCMU[EncodeTables.PCMU[s + 32768]!]!;
      const a = DecodeTables.PCMA[EncodeTables.PCMA[s + 32768]!]!;
      const bound = Math.max(16, Math.abs(s) / 16);
      expect(Math.abs(u - s)).toBeLessThanOrEqual(Math.max(bound, Math.abs(s) > 32124 ? Math.abs(s) - 32124 + 1024 : 0));
      expect(Math.abs(a - s)).toBeLessThanOrEqual(Math.max(bound, Math.abs(s) > 32256 ? Math.abs(s) - 32256 + 1024 : 0));
      expect(EncodeTables.PCMU[s + 32768]).toBe(linearToUlaw(s));
    }
  });
});
