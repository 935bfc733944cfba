/**
 * pruneStale over real HTTP against the API server emulator, here one without the
 * prometheus-operator CRDs (no ServiceMonitor API).
 */
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { desiredObjects, labelsFor, ownerReference } from '../../operator/desired.js';
import { pruneStale } from '../../operator/prune.js';
import { FakeApiServer } from './apiserver.js';
import { testCluster } from './fixtures.js';
import { NS } from './harness.js';

describe('pruneStale', () => {
  let api: FakeApiServer;
  let objects: KubernetesObjectApi;
  const cluster = testCluster('site-a', NS);
  const other = testCluster('site-b', NS);
  const desired = desiredObjects(cluster, { defaultNatsUrl: 'nats://127.0.0.1:4222', serviceMonitor: false }, []);

  const create = (apiVersion: string, kind: string, name: string, metadata: KubernetesObject['metadata'], spec?: object) =>
    objects.create({ apiVersion, kind, metadata: { name, namespace: NS, ...metadata }, ...(spec ? { spec } : { data: {} }) } as KubernetesObject);
  const exists = (apiVersion: string, kind: string, name: string) => api.get(apiVersion, kind, NS, name) !== undefined;

  beforeAll(async () => {
    api = await new FakeApiServer({ without: ['ServiceMonitor'] }).start();
    objects = KubernetesObjectApi.makeApiClient(api.kubeConfig(NS));
  });

  afterAll(async () => {
    await api?.close();
  });

  it('deletes only owned, labelled objects no longer desired; a kind the server does not serve is skipped', async () => {
    const owned = { labels: labelsFor(cluster), ownerReferences: [ownerReference(cluster)] };
    const env = desired.find((o) => o.kind === 'ConfigMap');
    await create('v1', 'ConfigMap', env?.metadata?.name ?? '', owned);
    await create('v1', 'ConfigMap', 'site-a-old', owned);
    await create('apps/v1', 'Deployment', 'site-a-old-signaling', owned, { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } }, spec: { containers: [] } } });
    // Look-alikes: same labels but made by someone else, or owned by another SipCluster; owned but unlabelled.
    await create('v1', 'ConfigMap', 'site-a-mine', { labels: labelsFor(cluster) });
    await create('v1', 'ConfigMap', 'site-a-foreign', { labels: labelsFor(cluster), ownerReferences: [ownerReference(other)] });
    await create('v1', 'ConfigMap', 'site-a-unlabelled', { ownerReferences: [ownerReference(cluster)] });

    const first = await pruneStale(objects, cluster, desired);
    expect(first.failures).toEqual([]);
    expect(first.deleted).toEqual([
      { kind: 'ConfigMap', name: 'site-a-old' },
      { kind: 'Deployment', name: 'site-a-old-signaling' },
    ]);
    expect(exists('v1', 'ConfigMap', 'site-a-old')).toBe(false);
    expect(exists('apps/v1', 'Deployment', 'site-a-old-signaling')).toBe(false);
    for (const name of [env?.metadata?.name ?? '', 'site-a-mine', 'site-a-foreign', 'site-a-unlabelled']) expect(exists('v1', 'ConfigMap', name), name).toBe(true);
    expect(api.requests.some((r) => r.path.startsWith('/apis/monitoring.coreos.com/v1'))).toBe(true);

    expect(await pruneStale(objects, cluster, desired)).toEqual({ deleted: [], failures: [] });
  });

  it('reports a kind it cannot list, naming it, and still prunes the others', async () => {
    await create('v1', 'Service', 'site-a-old', { labels: labelsFor(cluster), ownerReferences: [ownerReference(cluster)] }, { ports: [{ port: 80 }] });
    api.injectFault({ method: 'GET', path: /\/poddisruptionbudgets$/, status: 500, times: 1 });
    const result = await pruneStale(objects, cluster, desired);
    expect(result.deleted).toEqual([{ kind: 'Service', name: 'site-a-old' }]);
    expect(result.failures).toEqual([expect.stringMatching(/^listing PodDisruptionBudget to prune failed: HTTP 500/)]);
  });
});
