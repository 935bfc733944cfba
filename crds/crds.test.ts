import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateK8sObjects } from '../test/operator/k8s-models.js';
import { CRD_DIRS, crdFiles, crdYaml, structural } from './crds.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Paths of nodes that break the structural-schema rules Kubernetes enforces. */
function structuralProblems(node: Record<string, unknown>, at: string): string[] {
  const problems: string[] = [];
  if (typeof node.type !== 'string' && node['x-kubernetes-preserve-unknown-fields'] !== true) problems.push(`${at}: no type`);
  if (node.properties && node.additionalProperties) problems.push(`${at}: properties beside additionalProperties`);
  for (const k of ['anyOf', 'oneOf', 'allOf', 'const', '$id', 'patternProperties']) if (k in node) problems.push(`${at}: ${k}`);
  for (const [k, v] of Object.entries((node.properties as Record<string, Record<string, unknown>> | undefined) ?? {}))
    problems.push(...structuralProblems(v, `${at}.${k}`));
  if (node.items) problems.push(...structuralProblems(node.items as Record<string, unknown>, `${at}[]`));
  if (typeof node.additionalProperties === 'object') problems.push(...structuralProblems(node.additionalProperties as Record<string, unknown>, `${at}{}`));
  return problems;
}

describe('CRDs generated from common/config/schema.ts', () => {
  for (const { file, crd } of crdFiles) {
    for (const dir of CRD_DIRS) {
      it(`${dir}/${file} is what \`npm run crds\` generates (run it after a schema change)`, () => {
        const committed = readFileSync(path.join(root, dir, file), 'utf8');
        expect(committed, `${dir}/${file} is stale: run npm run crds`).toBe(crdYaml(crd));
      });
    }

    it(`${file} is a valid, structural apiextensions.k8s.io/v1 CRD`, async () => {
      const doc = parse(crdYaml(crd)) as typeof crd;
      expect(await validateK8sObjects([doc])).toEqual([]);
      const version = doc.spec.versions[0];
      expect(version?.subresources?.status).toEqual({});
      const schema = version?.schema?.openAPIV3Schema as Record<string, unknown>;
      expect(structuralProblems(schema, 'openAPIV3Schema')).toEqual([]);
    });
  }

  it('drops additionalProperties beside properties and turns records into additionalProperties', () => {
    const out = structural({
      type: 'object',
      additionalProperties: false,
      $id: 'x',
      properties: { labels: { type: 'object', patternProperties: { '^(.*)$': { type: 'string' } } } },
    });
    expect(out).toEqual({ type: 'object', properties: { labels: { type: 'object', additionalProperties: { type: 'string' } } } });
  });

  it('keeps defaults, CEL rules and the printer columns kubectl shows', () => {
    const [cluster, dn] = crdFiles.map((f) => f.crd.spec.versions[0]);
    const spec = dn?.schema?.openAPIV3Schema?.properties?.spec;
    const rules = (spec as { 'x-kubernetes-validations'?: { rule: string }[] } | undefined)?.['x-kubernetes-validations'];
    expect(rules?.map((r) => r.rule)).toEqual([
      "self.type != 'Trunk' || has(self.options.contact)",
      "self.type == 'Trunk' || !self.options.sip__dash__server__dash__inter__dash__trunk",
    ]);
    const clusterSpec = cluster?.schema?.openAPIV3Schema?.properties?.spec as { 'x-kubernetes-validations'?: { rule: string; fieldPath?: string }[] } | undefined;
    expect(clusterSpec?.['x-kubernetes-validations']).toEqual([expect.objectContaining({ rule: '!self.security.requireSecretRefs || size(self.gateway.tokens) == 0', fieldPath: '.gateway.tokens' })]);
    expect(spec?.properties?.options?.properties?.['sip-enable-moh']?.default).toBe(true);
    expect(cluster?.schema?.openAPIV3Schema?.properties?.spec?.properties?.options?.properties?.['music-listen-disconnect']?.default).toBe('music/on_hold');
    expect(cluster?.additionalPrinterColumns?.map((c) => c.name)).toEqual(['Location', 'Ready', 'Signaling', 'Media', 'Gateways', 'DNs', 'Age']);
  });
});
