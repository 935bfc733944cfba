/**
 * SipCluster and SipDN as they come from the Kubernetes API: the config documents of
 * common/config/schema.ts with full object metadata (uid, generation, finalizers...).
 */
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { API_GROUP, API_GROUP_VERSION, type SipCluster, type SipDN } from '../common/config/schema.js';

export interface ResourceMeta extends ObjectMeta {
  name: string;
  namespace: string;
}

export type SipClusterResource = Omit<SipCluster, 'metadata'> & { metadata: ResourceMeta };
export type SipDNResource = Omit<SipDN, 'metadata'> & { metadata: ResourceMeta };

export const CRD_PLURALS = { SipCluster: 'sipclusters', SipDN: 'sipdns' } as const;
export const FINALIZER = `${API_GROUP}/cleanup`;
export const FIELD_MANAGER = 'huddle-operator';
export { API_GROUP, API_GROUP_VERSION };

/** Work-queue key of a cluster: "namespace/name". */
export function clusterKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The config document written to the KV bucket: what signaling reads, without Kubernetes bookkeeping. */
export function toConfigDocument<T extends SipClusterResource | SipDNResource>(res: T): Omit<T, 'metadata' | 'status'> & { metadata: { name: string; labels?: Record<string, string> } } {
  const { metadata, status: _status, ...rest } = res;
  return { ...rest, metadata: { name: metadata.name, ...(metadata.labels ? { labels: metadata.labels } : {}) } };
}
