/**
 * The CustomResourceDefinitions, built from the TypeBox schemas in common/config/schema.ts.
 * `npm run crds` (crds/generate.ts) writes them as YAML; crds/crds.test.ts fails when the
 * committed files differ from what this module builds.
 */
import type { CustomResourceDefinition, CustomResourceColumnDefinition, JSONSchemaProps } from 'kubernetes-types/apiextensions/v1.js';
import { stringify } from 'yaml';
import { API_GROUP, API_VERSION, SipClusterSpec, SipClusterStatus, SipDNSpec, SipDNStatus } from '../common/config/schema.js';

/** Keywords a structural schema accepts; everything else TypeBox emits ($id, const, ...) is dropped. */
const KEPT = new Set([
  'type',
  'description',
  'default',
  'enum',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'required',
  'nullable',
  'x-kubernetes-validations',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
]);

/**
 * Turns a TypeBox JSON Schema into a Kubernetes structural schema: `properties` and
 * `additionalProperties` may not appear together (unknown fields are pruned instead), and
 * records (patternProperties) become `additionalProperties`.
 */
export function structural(schema: unknown): JSONSchemaProps {
  const src = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(src)) {
    if (KEPT.has(key)) out[key] = structuredClone(value);
  }
  if (src.properties) {
    out.properties = Object.fromEntries(Object.entries(src.properties as Record<string, unknown>).map(([k, v]) => [k, structural(v)]));
  } else if (src.patternProperties) {
    const [valueSchema] = Object.values(src.patternProperties as Record<string, unknown>);
    out.additionalProperties = structural(valueSchema);
  }
  if (src.items) out.items = structural(src.items);
  return out as JSONSchemaProps;
}

function crd(args: {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: unknown;
  status: unknown;
  columns: CustomResourceColumnDefinition[];
  description: string;
}): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${args.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'huddle', 'app.kubernetes.io/part-of': 'huddle' },
    },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: { kind: args.kind, listKind: `${args.kind}List`, plural: args.plural, singular: args.singular, shortNames: args.shortNames, categories: ['huddle'] },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: args.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: args.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: structural(args.spec),
                status: structural(args.status),
              },
            },
          },
        },
      ],
    },
  };
}

const age: CustomResourceColumnDefinition = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const sipClusterCrd: CustomResourceDefinition = crd({
  kind: 'SipCluster',
  plural: 'sipclusters',
  singular: 'sipcluster',
  shortNames: ['sipc'],
  spec: SipClusterSpec,
  status: SipClusterStatus,
  description: 'A SIP Server site: signaling, rtpengine media pods, the T-Library gateway and their options.',
  columns: [
    { name: 'Location', type: 'string', jsonPath: '.spec.location' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Signaling', type: 'integer', description: 'Ready signaling replicas', jsonPath: '.status.readySignaling' },
    { name: 'Media', type: 'integer', description: 'Ready media pods', jsonPath: '.status.readyMedia' },
    { name: 'Gateways', type: 'integer', description: 'Ready T-Library gateways', jsonPath: '.status.readyGateways' },
    { name: 'DNs', type: 'integer', jsonPath: '.status.dnCount' },
    age,
  ],
});

export const sipDnCrd: CustomResourceDefinition = crd({
  kind: 'SipDN',
  plural: 'sipdns',
  singular: 'sipdn',
  shortNames: ['dn'],
  spec: SipDNSpec,
  status: SipDNStatus,
  description: 'A directory number (Extension, ACDPosition, ACDQueue, RoutingPoint, Trunk, VoIPService) of a SipCluster.',
  columns: [
    { name: 'Cluster', type: 'string', jsonPath: '.spec.cluster' },
    { name: 'Number', type: 'string', jsonPath: '.spec.number' },
    { name: 'Type', type: 'string', jsonPath: '.spec.type' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    age,
  ],
});

export const crdFiles: { file: string; crd: CustomResourceDefinition }[] = [
  { file: 'sipclusters.yaml', crd: sipClusterCrd },
  { file: 'sipdns.yaml', crd: sipDnCrd },
];

/** Where the generated YAML is committed, relative to the repository root (Helm installs charts/<chart>/crds/ itself). */
export const CRD_DIRS = ['crds', 'charts/huddle-operator/crds'] as const;

export function crdYaml(value: CustomResourceDefinition): string {
  return `# Generated from common/config/schema.ts by \`npm run crds\`. Do not edit.\n${stringify(value, { lineWidth: 0 })}`;
}
