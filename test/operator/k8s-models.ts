/**
 * Validates rendered Kubernetes objects with kubernetes-models (core and prometheus-operator
 * kinds) and huddle's own kinds with the config schema. Unknown kinds are an error: every
 * object we render must be checked by something.
 */
import { validateDocument } from '../../common/config/validate.js';

interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
}

type ModelClass = new (data: unknown) => { validate(): void };

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const specifier =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : group === ''
        ? `kubernetes-models/${version}/${kind}`
        : `kubernetes-models/${group}/${version}/${kind}`;
  try {
    const mod = (await import(specifier)) as Record<string, ModelClass | undefined>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

/** Returns problems ("Kind/name: message"), empty when every object is valid. */
export async function validateK8sObjects(objects: unknown[]): Promise<string[]> {
  const problems: string[] = [];
  for (const raw of objects) {
    const obj = raw as K8sObject;
    const label = `${obj.kind ?? '?'}/${obj.metadata?.name ?? '?'}`;
    if (!obj.apiVersion || !obj.kind) {
      problems.push(`${label}: apiVersion and kind are required`);
      continue;
    }
    if (obj.kind === 'SipCluster' || obj.kind === 'SipDN') {
      for (const p of validateDocument(obj.kind, structuredClone(raw))) problems.push(`${label}: ${p}`);
      continue;
    }
    const Model = await modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      problems.push(`${label}: no kubernetes-models schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(structuredClone(raw)).validate();
    } catch (err) {
      problems.push(`${label}: ${(err as Error).message}`);
    }
  }
  return problems;
}
