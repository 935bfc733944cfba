/**
 * The layer rules: the pure model does no I/O, common/ imports no process folder, no process
 * imports another's internals (enforced by eslint.config.js, proven here on probe sources), and
 * no import loop between top-level folders or between any two source files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { layerRules } from '../../eslint.config.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const sourceFolders = ['signaling', 'media-controller', 'tlib-api', 'operator', 'common', 'crds', 'bin'];

/** Messages of the layer rule for `code` as if it were the file `path` (relative to the root). */
async function layerProblems(path: string, code: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: root,
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...layerRules],
    plugins: { '@typescript-eslint': tseslint.plugin },
  });
  const [result] = await eslint.lintText(code, { filePath: join(root, path) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('layer rules in eslint.config.js', () => {
  const cases: { file: string; code: string; rejected: boolean }[] = [
    { file: 'signaling/model/probe.ts', code: "import { randomBytes } from 'node:crypto';\nexport const x = randomBytes;\n", rejected: true },
    { file: 'signaling/model/probe.ts', code: "import { MediaClient } from '../media-client.js';\nexport const x = MediaClient;\n", rejected: true },
    { file: 'signaling/model/probe.ts', code: "import { Subjects } from '../../common/nats/subjects.js';\nexport const x = Subjects;\n", rejected: true },
    { file: 'signaling/model/probe.ts', code: "import pino from 'pino';\nexport const x = pino;\n", rejected: true },
    { file: 'signaling/model/probe.ts', code: "import { ErrorCodes } from '../../common/tlib/errors.js';\nexport const x = ErrorCodes;\n", rejected: false },
    { file: 'signaling/model/probe.ts', code: "import type { NatsConnection } from '@nats-io/transport-node';\nexport type X = NatsConnection;\n", rejected: false },
    { file: 'signaling/model/probe.ts', code: "import { Engine } from './engine.js';\nexport const x = Engine;\n", rejected: false },
    { file: 'common/nats/probe.ts', code: "import { B2bua } from '../../signaling/b2bua.js';\nexport const x = B2bua;\n", rejected: true },
    { file: 'common/probe.ts', code: "import type { Gateway } from '../tlib-api/gateway/gateway.js';\nexport type X = Gateway;\n", rejected: true },
    { file: 'common/probe.ts', code: "import { freePort } from '../test/support/infra.js';\nexport const x = freePort;\n", rejected: true },
    { file: 'media-controller/probe.ts', code: "import { CallModel } from '../signaling/model/index.js';\nexport const x = CallModel;\n", rejected: true },
    { file: 'tlib-api/gateway/probe.ts', code: "import { MediaApi } from '../../media-controller/nats-api.js';\nexport const x = MediaApi;\n", rejected: true },
    { file: 'operator/probe.ts', code: "import { startSignaling } from '../signaling/component.js';\nexport const x = startSignaling;\n", rejected: true },
    { file: 'signaling/probe.ts', code: "import { Subjects } from '../common/nats/subjects.js';\nexport const x = Subjects;\n", rejected: false },
    { file: 'signaling/probe.test.ts', code: "import { startSite } from '../test/e2e/site.js';\nexport const x = startSite;\n", rejected: false },
  ];
  for (const c of cases) {
    it(`${c.rejected ? 'rejects' : 'accepts'} in ${c.file}: ${c.code.split('\n')[0]}`, async () => {
      const problems = await layerProblems(c.file, c.code);
      expect(problems.every((p) => p.startsWith('@typescript-eslint/no-restricted-imports')), problems.join('\n')).toBe(true);
      expect(problems.length > 0).toBe(c.rejected);
    });
  }
});

/** Every non-test source file and the source files it imports (type-only imports included). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'static') walk(path);
        continue;
      }
      if (!entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
      const text = readFileSync(join(root, path), 'utf8');
      const targets = [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.[^']+)'/g)].map((m) =>
        normalize(join(dirname(path), m[1]!)).replace(/\.js$/, '.ts'),
      );
      graph.set(path, targets);
    }
  };
  for (const folder of sourceFolders) walk(folder);
  return graph;
}

/** Strongly connected groups of more than one node (Tarjan), i.e. the import loops. */
function loops(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
      onStack.delete(w);
      group.push(w);
    }
    if (group.length > 1) found.push(group.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('import loops', () => {
  const graph = importGraph();

  it('reads the source tree', () => {
    expect(graph.has(join('signaling', 'sip', 'stack.ts'))).toBe(true);
    expect(graph.size).toBeGreaterThan(50);
  });

  it('none between top-level folders', () => {
    const folderOf = (file: string): string => relative(root, join(root, file)).split(/[\\/]/)[0]!;
    const folders = new Map<string, Set<string>>();
    for (const [file, targets] of graph) {
      const from = folderOf(file);
      const set = folders.get(from) ?? new Set<string>();
      for (const t of targets) if (graph.has(t) && folderOf(t) !== from) set.add(folderOf(t));
      folders.set(from, set);
    }
    expect(loops(new Map([...folders].map(([k, v]) => [k, [...v]])))).toEqual([]);
  });

  it('none between source files (signaling/sip and the model included)', () => {
    expect(loops(graph)).toEqual([]);
  });
});
