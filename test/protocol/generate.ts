/** `npm run docs:protocol`: writes the generated part of tlib-api/README.md (see reference.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate, splice } from './reference.js';

const README = fileURLToPath(new URL('../../tlib-api/README.md', import.meta.url));
const before = readFileSync(README, 'utf8');
const after = splice(before, generate());
if (after === before) {
  process.stdout.write('tlib-api/README.md is up to date\n');
} else {
  writeFileSync(README, after);
  process.stdout.write('tlib-api/README.md: request reference written\n');
}
