import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const sources = readdirSync(here).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'test-harness.ts');
/** Modules the model may load at run time: constants only. Anything else must be `import type`. */
const runtimeAllowed = new Set(['../../common/tlib/errors.js', '../../common/tlib/enums.js', '../../common/tlib/connid.js']);

describe('the call model is pure', () => {
  it('has source files to check', () => {
    expect(sources).toContain('call-model.ts');
  });

  for (const file of sources) {
    it(`${file}: no I/O, timer, clock or randomness`, () => {
      const text = readFileSync(join(here, file), 'utf8');
      const imports = [...text.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)];
      for (const [, , typeOnly, from] of imports) {
        if (typeOnly !== undefined || from === undefined) continue;
        expect(from.startsWith('./') || runtimeAllowed.has(from), `${file} imports ${from} at run time`).toBe(true);
      }
      expect(text).not.toMatch(/\bimport\s*\(|\brequire\s*\(/);
      expect(text).not.toMatch(/Date\.now|new Date|Math\.random|performance\.now|setTimeout|setInterval|setImmediate|queueMicrotask|process\.|\bconsole\./);
      expect(text).not.toMatch(/\basync\b|\bawait\b|Promise/);
    });
  }
});
