/**
 * Our parser on the grammar-derived corpus: every message gets the answer RFC 3261 §25 calls
 * for, except the tolerances the corpus names (and README.md lists). The committed corpus.json
 * is what generate.ts writes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMessage } from '../parser.js';
import { buildCorpus, corpusJson, type CorpusMessage } from './corpus.js';

const corpus = buildCorpus();

/** Our parser's verdict in the corpus's terms. */
function parserVerdict(m: CorpusMessage): CorpusMessage['expect'] | number {
  const r = parseMessage(Buffer.from(m.text));
  if (r.ok) return 'accept';
  return m.kind === 'response' ? 'drop' : r.status;
}

describe('grammar-derived corpus', () => {
  it('corpus.json is what generate.ts writes (npx tsx signaling/sip/corpus/generate.ts)', () => {
    expect(readFileSync(new URL('corpus.json', import.meta.url), 'utf8')).toBe(corpusJson(corpus));
  });

  it('covers the request line, the status line and every header the stack reads, valid and invalid', () => {
    const rules = new Set(corpus.map((m) => m.rule));
    for (const rule of ['Request-Line', 'Request-URI', 'Status-Line', 'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'Contact', 'Content-Length', 'Content-Type', 'Expires', 'Route', 'Authorization', 'Event', 'Subscription-State']) {
      expect(rules, rule).toContain(rule);
      expect(corpus.filter((m) => m.rule === rule).map((m) => m.grammar), rule).toEqual(expect.arrayContaining(['valid', 'invalid']));
    }
    expect(new Set(corpus.map((m) => m.id)).size).toBe(corpus.length);
  });

  it.each(corpus.map((m) => [m.id, m] as const))('%s', (_id, m) => {
    expect(parserVerdict(m)).toBe(m.tolerated ? 'accept' : m.expect);
  });
});
