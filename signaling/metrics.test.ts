import { describe, expect, it } from 'vitest';
import { RequestNames } from '../common/tlib/enums.js';
import { tlibRequestLabel } from './metrics.js';

describe('signaling metric labels', () => {
  it('labels T-Library requests by their name, and any other name (a forged envelope) as other', () => {
    for (const name of RequestNames) expect(tlibRequestLabel(name)).toBe(name);
    expect(tlibRequestLabel('XMXQ971U')).toBe('other');
    expect(tlibRequestLabel('__proto__')).toBe('other');
  });
});
