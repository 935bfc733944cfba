/**
 * Runtime validation of SipCluster / SipDN documents from the schemas in schema.ts.
 * Errors name the field path (spec.options.music-listen-disconnect) and the reason.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { SipCluster, SipDN, type SipClusterSpec, type SipDNSpec } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly source: string,
  ) {
    super(`${source}: invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false, coerceTypes: false, validateFormats: false });
const validators = {
  SipCluster: ajv.compile(SipCluster) as ValidateFunction,
  SipDN: ajv.compile(SipDN) as ValidateFunction,
};

function fieldPath(instancePath: string): string {
  return instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.').replace(/~1/g, '/').replace(/~0/g, '~');
}

function describe(err: ErrorObject): string {
  const base = fieldPath(err.instancePath);
  switch (err.keyword) {
    case 'required':
      return `${[base, (err.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.')}: is required`;
    case 'additionalProperties':
      return `${[base, (err.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join('.')}: is not a known field`;
    case 'enum':
      return `${base || '(document)'}: must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${base || '(document)'}: must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`;
    case 'minLength':
      return `${base}: must not be empty${(err.params as { limit: number }).limit > 1 ? ` (at least ${(err.params as { limit: number }).limit} characters)` : ''}`;
    default:
      return `${base || '(document)'}: ${err.message ?? err.keyword}`;
  }
}

/** Validates in place (fills defaults) and returns the problems, empty when valid. */
export function validateDocument(kind: 'SipCluster' | 'SipDN', doc: unknown): string[] {
  const validate = validators[kind];
  const problems: string[] = [];
  if (!validate(doc)) {
    for (const err of validate.errors ?? []) {
      if (err.keyword === 'if') continue;
      const text = describe(err);
      if (!problems.includes(text)) problems.push(text);
    }
    return problems;
  }
  if (kind === 'SipDN') problems.push(...dnRules((doc as SipDN).spec));
  else problems.push(...clusterRules((doc as SipCluster).spec));
  return problems;
}

/** The x-kubernetes-validations rule of SipClusterSpec, evaluated here so local configs get it too. */
export function clusterRules(spec: SipClusterSpec): string[] {
  if (spec.security.requireSecretRefs && spec.gateway.tokens.length > 0)
    return ['spec.gateway.tokens: security.requireSecretRefs: give agent tokens in gateway.tokensSecret, not inline in gateway.tokens'];
  return [];
}

/** The x-kubernetes-validations rules of SipDNSpec, evaluated here so local configs get them too. */
export function dnRules(spec: SipDNSpec): string[] {
  const problems: string[] = [];
  if (spec.type === 'Trunk' && !spec.options.contact) problems.push('spec.options.contact: a Trunk needs options.contact (its peer address)');
  if (spec.type !== 'Trunk' && spec.options['sip-server-inter-trunk'])
    problems.push("spec.options.sip-server-inter-trunk: sip-server-inter-trunk is only valid on a Trunk");
  return problems;
}
