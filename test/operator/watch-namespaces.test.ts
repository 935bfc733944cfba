/**
 * A namespaced operator (the chart's default: a Role per watched namespace) reconciles the
 * namespaces it is given and nothing else, through namespaced list/watch paths only: a cluster-wide
 * path would be refused by its RBAC.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNats, type TestNats } from '../support/infra.js';
import { FakeApiServer } from './apiserver.js';
import { NS, startController, waitFor } from './harness.js';

const BRANCH = 'branch';
const ELSEWHERE = 'elsewhere';

describe('operator watching a list of namespaces', () => {
  let nats: TestNats;
  let api: FakeApiServer;
  let operator: ReturnType<typeof startController>;

  beforeAll(async () => {
    nats = await startTestNats();
    api = await new FakeApiServer().start();
    operator = startController(api, nats.url, 'operator-ns', { watchNamespaces: [NS, BRANCH] });
    await waitFor('operator-ns to lead', () => operator.controller.isLeader);
  });

  afterAll(async () => {
    await operator?.controller.stop();
    await operator?.store.close();
    await api?.close();
    await nats?.stop();
  });

  it('reconciles SipClusters in the watched namespaces only, listing and watching namespaced paths', async () => {
    const custom = api.kubeConfig(NS).makeApiClient(CustomObjectsApi);
    const create = (namespace: string, name: string) =>
      custom.createNamespacedCustomObject({
        group: 'sip.huddle.dev',
        version: 'v1alpha1',
        namespace,
        plural: 'sipclusters',
        body: { apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipCluster', metadata: { name }, spec: { location: name } },
      });
    await create(ELSEWHERE, 'site-e');
    await create(NS, 'site-t');
    await create(BRANCH, 'site-b');
    await waitFor('site-t reconciled', () => api.get('apps/v1', 'Deployment', NS, 'site-t-signaling'));
    await waitFor('site-b reconciled', () => api.get('apps/v1', 'Deployment', BRANCH, 'site-b-signaling'));
    // The resync (1.5 s) has gone round every cluster the operator knows at least twice by now.
    await new Promise((r) => setTimeout(r, 3500));
    expect(api.list('apps/v1', 'Deployment', ELSEWHERE)).toEqual([]);
    expect(api.list('networking.k8s.io/v1', 'NetworkPolicy', ELSEWHERE)).toEqual([]);
    expect((api.get('sip.huddle.dev/v1alpha1', 'SipCluster', ELSEWHERE, 'site-e')?.metadata.finalizers ?? []).length).toBe(0);

    const paths = new Set(api.requests.map((r) => r.path));
    for (const clusterWide of ['/apis/sip.huddle.dev/v1alpha1/sipclusters', '/apis/sip.huddle.dev/v1alpha1/sipdns', '/apis/apps/v1/deployments', '/apis/apps/v1/statefulsets'])
      expect(paths.has(clusterWide), clusterWide).toBe(false);
    for (const ns of [NS, BRANCH])
      for (const plural of ['sipclusters', 'sipdns']) expect(paths.has(`/apis/sip.huddle.dev/v1alpha1/namespaces/${ns}/${plural}`), `${ns} ${plural}`).toBe(true);
    // The one request naming the other namespace is this test creating site-e there.
    expect(api.requests.filter((r) => r.path.includes(`/namespaces/${ELSEWHERE}/`))).toEqual([{ method: 'POST', path: `/apis/sip.huddle.dev/v1alpha1/namespaces/${ELSEWHERE}/sipclusters` }]);
  });
});
