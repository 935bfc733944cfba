/**
 * Reconcile as a pure function: a SipCluster and the SipDNs in its namespace in, everything the
 * operator should make true out — the owned Kubernetes objects and the config documents for the
 * NATS KV bucket — plus the DNs it had to refuse and why.
 */
import type { SipCluster, SipDN } from '../common/config/schema.js';
import { desiredObjects, type DesiredObject, type OperatorSettings } from './desired.js';
import { toConfigDocument, type SipClusterResource, type SipDNResource } from './resources.js';

export interface ClusterPlan {
  objects: DesiredObject[];
  /** What publishConfig writes: signaling reads options and DNs from here at the moment of use. */
  config: { cluster: SipCluster; dns: SipDN[] };
  accepted: SipDNResource[];
  rejected: { dn: SipDNResource; reason: string }[];
}

function age(dn: SipDNResource): string {
  return `${dn.metadata.creationTimestamp ? String(dn.metadata.creationTimestamp as unknown) : ''}/${dn.metadata.name}`;
}

/** The DNs bound to this cluster (spec.cluster), oldest first; a number claimed twice goes to the oldest SipDN. */
export function planCluster(cluster: SipClusterResource, allDns: SipDNResource[], settings: OperatorSettings): ClusterPlan {
  const bound = allDns
    .filter((dn) => dn.metadata.namespace === cluster.metadata.namespace && dn.spec.cluster === cluster.metadata.name && !dn.metadata.deletionTimestamp)
    .sort((a, b) => age(a).localeCompare(age(b)));
  const accepted: SipDNResource[] = [];
  const rejected: ClusterPlan['rejected'] = [];
  const owner = new Map<string, string>();
  for (const dn of bound) {
    const first = owner.get(dn.spec.number);
    if (first) rejected.push({ dn, reason: `number ${dn.spec.number} is already configured by SipDN ${first}` });
    else {
      owner.set(dn.spec.number, dn.metadata.name);
      accepted.push(dn);
    }
  }
  return {
    objects: desiredObjects(cluster, settings),
    config: {
      cluster: toConfigDocument(cluster) as SipCluster,
      dns: accepted.map((dn) => toConfigDocument(dn) as SipDN),
    },
    accepted,
    rejected,
  };
}
