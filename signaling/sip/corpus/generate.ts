/**
 * Writes the grammar-derived corpus (corpus.ts) to corpus.json, one message per line, so the
 * messages can be read, replayed (e.g. with `nc -u`) and diffed in review.
 * Run: npx tsx signaling/sip/corpus/generate.ts   (corpus.test.ts fails when the file drifts)
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildCorpus, corpusJson } from './corpus.js';

const file = fileURLToPath(new URL('corpus.json', import.meta.url));
const corpus = buildCorpus();
writeFileSync(file, corpusJson(corpus));
console.log(`wrote ${corpus.length} messages to ${file}`);
