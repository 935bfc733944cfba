/**
 * Pruning: what a SipCluster made and no longer wants (its ServiceMonitor once they are switched
 * off, anything its desired set stops rendering) is deleted. ownerReferences only clean up when
 * the SipCluster itself goes, so a shrinking desired set needs this. An object is deleted only
 * when it carries the cluster's labels AND an ownerReference to the cluster's uid: a look-alike
 * someone else made stays.
 */
import type { KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import { describeError, statusCode } from './apply.js';
import { MANAGED_KINDS, type DesiredObject } from './desired.js';
import type { SipClusterResource } from './resources.js';

export interface PruneResult {
  deleted: { kind: string; name: string }[];
  failures: string[];
}

const ref = (apiVersion: string, kind: string, name: string) => `${apiVersion} ${kind}/${name}`;

export async function pruneStale(api: KubernetesObjectApi, cluster: SipClusterResource, desired: DesiredObject[]): Promise<PruneResult> {
  const { name: instance, namespace, uid } = cluster.metadata;
  const result: PruneResult = { deleted: [], failures: [] };
  if (!uid) return result;
  const wanted = new Set(desired.map((o) => ref(o.apiVersion ?? '', o.kind ?? '', o.metadata?.name ?? '')));
  const selector = `app.kubernetes.io/instance=${instance},app.kubernetes.io/managed-by=huddle-operator`;
  for (const { apiVersion, kind } of MANAGED_KINDS) {
    let items: KubernetesObject[];
    try {
      items = (await api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, selector)).items;
    } catch (err) {
      // The kind's API is not served (no prometheus-operator CRDs): nothing of it can exist.
      if (statusCode(err) !== 404) result.failures.push(`listing ${kind} to prune failed: ${describeError(err)}`);
      continue;
    }
    for (const item of items) {
      const name = item.metadata?.name ?? '';
      const owned = item.metadata?.ownerReferences?.some((r) => r.uid === uid) ?? false;
      if (!owned || item.metadata?.deletionTimestamp || wanted.has(ref(apiVersion, kind, name))) continue;
      try {
        // The uid precondition keeps a same-named object created meanwhile from being deleted.
        await api.delete({ apiVersion, kind, metadata: { name, namespace } }, undefined, undefined, undefined, undefined, 'Background', { preconditions: { uid: item.metadata?.uid } });
        result.deleted.push({ kind, name });
      } catch (err) {
        if (statusCode(err) !== 404) result.failures.push(`deleting ${kind}/${name} failed: ${describeError(err)}`);
      }
    }
  }
  return result;
}
