/**
 * The operator end to end: @kubernetes/client-node against the in-repo API server emulator over
 * real HTTP, options and DNs into a real nats-server's KV bucket.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SipCluster, SipDN } from '../../common/config/schema.js';
import { LiveConfig, openConfigBucket } from '../../common/nats/config-kv.js';
import { decodeJson } from '../../common/nats/codec.js';
import { ConfigKeys } from '../../common/nats/subjects.js';
import { covers } from '../../operator/apply.js';
import { planCluster } from '../../operator/plan.js';
import type { SipClusterResource } from '../../operator/resources.js';
import { FakeApiServer, type StoredObject } from './apiserver.js';
import { crClient, log, NS, startController, waitFor } from './harness.js';
import { freePort } from '../../common/supervisor/ports.js';
import { startTestNats, type TestNats } from '../support/infra.js';

const clusterManifest = (name: string, location: string) => ({
  apiVersion: 'sip.huddle.dev/v1alpha1',
  kind: 'SipCluster',
  metadata: { name },
  spec: { location, sip: { listen: [{ transport: 'udp', host: '0.0.0.0', port: 5060 }, { transport: 'tcp', host: '0.0.0.0', port: 5060 }] }, options: { 'sip-enable-call-info': true } },
});
const dnManifest = (cluster: string, number: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'sip.huddle.dev/v1alpha1',
  kind: 'SipDN',
  metadata: { name: `${cluster}-${number}` },
  spec: { cluster, number, type: 'Extension', ...spec },
});

function condition(obj: StoredObject | Record<string, unknown> | undefined, type: string) {
  return ((obj?.status as { conditions?: { type: string; status: string; reason: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === type);
}

describe('huddle operator against the API server emulator', () => {
  let nats: TestNats;
  let nc: NatsConnection;
  let kv: KV;
  let api: FakeApiServer;
  let a: ReturnType<typeof startController>;
  let b: ReturnType<typeof startController> | undefined;
  let c: ReturnType<typeof startController> | undefined;
  let cr: ReturnType<typeof crClient>;

  const kvDoc = async <T>(key: string): Promise<T | undefined> => {
    const e = await kv.get(key);
    return e && e.operation === 'PUT' ? (decodeJson(e.value) as T) : undefined;
  };
  const deployment = (name: string) => api.get('apps/v1', 'Deployment', NS, name);

  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
    kv = await openConfigBucket(nc);
    api = await new FakeApiServer().start();
    cr = crClient(api);
    a = startController(api, nats.url, 'operator-a');
    await waitFor('operator-a to lead', () => a.controller.isLeader);
  });

  afterAll(async () => {
    await c?.controller.stop();
    await c?.store.close();
    await b?.controller.stop();
    await b?.store.close();
    await a?.controller.stop();
    await a?.store.close();
    await api?.close();
    await nc?.drain();
    await nats?.stop();
  });

  it('create: owned objects appear, options and DNs reach the KV bucket, status turns Ready when the workloads are ready', async () => {
    await cr.create('sipclusters', clusterManifest('site-a', 'SiteA'));
    await cr.create('sipdns', dnManifest('site-a', '7001'));
    await cr.create('sipdns', dnManifest('site-a', '9100', { type: 'Trunk', options: { contact: 'sip:site-b-sip.telephony:5060', 'sip-server-inter-trunk': true, 'sip-enable-moh': false } }));

    await waitFor('the signaling Deployment', () => deployment('site-a-signaling'));
    for (const [apiVersion, kind, name] of [
      ['v1', 'ConfigMap', 'site-a-env'],
      ['v1', 'Service', 'site-a-sip'],
      ['apps/v1', 'StatefulSet', 'site-a-media'],
      ['apps/v1', 'Deployment', 'site-a-gateway'],
      ['policy/v1', 'PodDisruptionBudget', 'site-a-media'],
      ['monitoring.coreos.com/v1', 'ServiceMonitor', 'site-a-metrics'],
    ] as const)
      await waitFor(`${kind} ${name}`, () => api.get(apiVersion, kind, NS, name));
    const owner = deployment('site-a-signaling')?.metadata.ownerReferences?.[0] as { kind: string; name: string } | undefined;
    expect(owner).toMatchObject({ kind: 'SipCluster', name: 'site-a' });
    // What landed in the API server is the desired state, field for field (client-node serialization included).
    const stored = api.get('sip.huddle.dev/v1alpha1', 'SipCluster', NS, 'site-a') as unknown as SipClusterResource;
    for (const obj of planCluster(stored, [], { defaultNatsUrl: nats.url, serviceMonitor: true }).objects) {
      const live = await waitFor(`${obj.kind} ${obj.metadata?.name}`, () => api.get(obj.apiVersion ?? '', obj.kind ?? '', NS, obj.metadata?.name ?? ''));
      expect(covers(live, obj), `${obj.kind}/${obj.metadata?.name}`).toBe(true);
    }

    const trunk = await waitFor('DN 9100 in KV', () => kvDoc<SipDN>(ConfigKeys.dn('site-a', '9100')));
    expect(trunk.spec.options['sip-enable-moh']).toBe(false);
    expect((await kvDoc<SipCluster>(ConfigKeys.cluster('site-a')))?.spec.options['music-listen-disconnect']).toBe('music/on_hold');

    const progressing = await waitFor('status Progressing', async () => {
      const c = await cr.get('sipclusters', 'site-a');
      return condition(c, 'Progressing')?.status === 'True' && c;
    });
    expect(condition(progressing, 'Ready')?.status).toBe('False');
    expect((progressing.metadata as { finalizers?: string[] }).finalizers).toContain('sip.huddle.dev/cleanup');

    api.markWorkloadsReady(NS);
    const ready = await waitFor('status Ready', async () => {
      const c = await cr.get('sipclusters', 'site-a');
      return condition(c, 'Ready')?.status === 'True' && c;
    });
    expect(ready.status).toMatchObject({ readySignaling: 1, readyMedia: 1, readyGateways: 1, dnCount: 2, observedGeneration: 1 });
    expect(condition(ready, 'Degraded')?.status).toBe('False');
    const dn = await waitFor('SipDN status', async () => condition(await cr.get('sipdns', 'site-a-7001'), 'Ready'));
    expect(dn.status).toBe('True');
    const events = api.list('v1', 'Event', NS).map((e) => e.reason as string);
    expect(events).toEqual(expect.arrayContaining(['Applied', 'AllReady']));
  });

  it('edit an option or a DN: the KV bucket and a LiveConfig watcher see it, no Deployment rolls', async () => {
    const live = await LiveConfig.watch(kv, 'site-a', log);
    try {
      const before = ['site-a-signaling', 'site-a-gateway'].map((n) => deployment(n));
      const mediaBefore = api.get('apps/v1', 'StatefulSet', NS, 'site-a-media');
      await cr.patch('sipclusters', 'site-a', { spec: { options: { 'music-listen-disconnect': 'music/private_talk' } } });
      await cr.patch('sipdns', 'site-a-7001', { spec: { options: { 'sip-enable-moh': false } } });
      await waitFor('the new option in LiveConfig', () => live.cluster.spec.options['music-listen-disconnect'] === 'music/private_talk');
      await waitFor('the DN option in LiveConfig', () => live.dn('7001')?.spec.options['sip-enable-moh'] === false);
      const generation = await waitFor('observedGeneration 2', async () => {
        const c = await cr.get('sipclusters', 'site-a');
        return (c.status as { observedGeneration?: number }).observedGeneration === 2 && c;
      });
      expect(condition(generation, 'Ready')?.status).toBe('True');
      for (const [i, name] of ['site-a-signaling', 'site-a-gateway'].entries()) {
        const after = deployment(name);
        expect(after?.metadata.generation, name).toBe(before[i]?.metadata.generation);
        expect(after?.spec, name).toEqual(before[i]?.spec);
      }
      expect(api.get('apps/v1', 'StatefulSet', NS, 'site-a-media')?.metadata.generation).toBe(mediaBefore?.metadata.generation);
    } finally {
      live.stop();
    }
  });

  it('repairs drift: a Deployment scaled by hand goes back to the SipCluster replicas', async () => {
    await api.mergePatch(`/apis/apps/v1/namespaces/${NS}/deployments/site-a-gateway`, { spec: { replicas: 3 } });
    await waitFor('replicas restored', () => (deployment('site-a-gateway')?.spec as { replicas: number }).replicas === 1);
    // ConfigMaps are not watched: the periodic resync puts a deleted one back.
    const res = await fetch(`${api.url}/api/v1/namespaces/${NS}/configmaps/site-a-env`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(api.get('v1', 'ConfigMap', NS, 'site-a-env')).toBeUndefined();
    await waitFor('the env ConfigMap recreated', () => api.get('v1', 'ConfigMap', NS, 'site-a-env'));
  });

  it('rejects an invalid CR naming the field', async () => {
    await expect(cr.create('sipdns', dnManifest('site-a', '7002', { type: 'Phone' }))).rejects.toThrow(/spec\.type/);
    await expect(cr.create('sipdns', dnManifest('site-a', '9001', { type: 'Trunk' }))).rejects.toThrow(/spec\.options\.contact: .*a Trunk needs options\.contact/);
    await expect(cr.create('sipdns', dnManifest('site-a', '7003', { options: { 'sip-server-inter-trunk': true } }))).rejects.toThrow(/sip-server-inter-trunk is only valid on a Trunk/);
    await expect(cr.create('sipclusters', { ...clusterManifest('bad', 'Site A'), metadata: { name: 'bad' } })).rejects.toThrow(/spec\.location/);
    const defaulted = await cr.create('sipdns', dnManifest('site-a', '7004'));
    expect((defaulted.spec as SipDN['spec']).options).toEqual({ 'sip-enable-moh': true, 'sip-server-inter-trunk': false, 'remote-answer': false });
  });

  it('converges through API errors, dropped watches and an expired resourceVersion', async () => {
    api.injectFault({ method: 'POST', path: /\/deployments$/, status: 500, times: 2 });
    api.injectFault({ method: 'GET', path: /\/sipdns$/, status: 503, times: 2 });
    api.compact();
    await cr.create('sipclusters', clusterManifest('site-b', 'SiteB'));
    await cr.create('sipdns', dnManifest('site-b', '8001'));
    api.dropWatches();
    await waitFor('site-b signaling Deployment', () => deployment('site-b-signaling'), 30_000);
    await waitFor('site-b DN in KV', () => kvDoc<SipDN>(ConfigKeys.dn('site-b', '8001')), 30_000);
    // The emulated Deployment controller reports whatever workloads exist by now as ready.
    await waitFor(
      'site-b Ready',
      async () => {
        api.markWorkloadsReady(NS);
        return condition(await cr.get('sipclusters', 'site-b'), 'Ready')?.status === 'True';
      },
      30_000,
    );
    const metrics = await a.registry.getMetricsAsJSON();
    const errors = metrics.find((m) => m.name === 'huddle_operator_reconciles_total')?.values.find((v) => v.labels.result === 'error')?.value ?? 0;
    expect(errors).toBeGreaterThan(0);
    const restarts = metrics.find((m) => m.name === 'huddle_operator_informer_restarts_total')?.values.reduce((n, v) => n + v.value, 0) ?? 0;
    expect(restarts).toBeGreaterThan(0);
  });

  it('reports a NATS it cannot reach as Degraded, naming it, and still applies the objects', async () => {
    const deadNats = `nats://127.0.0.1:${await freePort()}`;
    await cr.create('sipclusters', { ...clusterManifest('site-x', 'SiteX'), spec: { ...clusterManifest('site-x', 'SiteX').spec, nats: { url: deadNats } } });
    await waitFor('site-x signaling Deployment', () => deployment('site-x-signaling'));
    const degraded = await waitFor('site-x Degraded', async () => condition(await cr.get('sipclusters', 'site-x'), 'Degraded'));
    expect(degraded).toMatchObject({ status: 'True', reason: 'ReconcileFailed' });
    expect((degraded as { message?: string }).message).toContain(deadNats);
    expect(api.list('v1', 'Event', NS).some((e) => e.reason === 'ReconcileFailed' && (e.involvedObject as { name: string }).name === 'site-x')).toBe(true);
  });

  it('delete a SipDN: its key leaves the KV bucket and the DN count drops', async () => {
    await waitFor('DN 7004 in KV', () => kvDoc<SipDN>(ConfigKeys.dn('site-a', '7004')));
    await cr.delete('sipdns', 'site-a-7004');
    await waitFor('DN 7004 gone from KV', async () => (await kvDoc(ConfigKeys.dn('site-a', '7004'))) === undefined);
    await waitFor('dnCount 2', async () => ((await cr.get('sipclusters', 'site-a')).status as { dnCount?: number }).dnCount === 2);
  });

  it('delete: the finalizer removes the KV configuration, then the SipCluster and what it owns go', async () => {
    expect(await kvDoc(ConfigKeys.cluster('site-b'))).toBeDefined();
    await cr.delete('sipclusters', 'site-b');
    await waitFor('site-b gone', () => !api.get('sip.huddle.dev/v1alpha1', 'SipCluster', NS, 'site-b'));
    expect(await kvDoc(ConfigKeys.cluster('site-b'))).toBeUndefined();
    expect(await kvDoc(ConfigKeys.dn('site-b', '8001'))).toBeUndefined();
    expect(deployment('site-b-signaling')).toBeUndefined();
    expect(await kvDoc(ConfigKeys.cluster('site-a'))).toBeDefined();
    expect(api.list('v1', 'Event', NS).some((e) => e.reason === 'ConfigRemoved')).toBe(true);
  });

  it('a site requiring Secret references: a NetworkPolicy per component, password Secrets mounted in signaling (a new one rolls it), an inline password refused and never published', async () => {
    const manifest = clusterManifest('site-s', 'SiteS');
    await cr.create('sipclusters', { ...manifest, spec: { ...manifest.spec, security: { requireSecretRefs: true }, networkPolicy: { sipFrom: ['203.0.113.0/24'] } } });
    await cr.create('sipdns', dnManifest('site-s', '6001', { options: { password: { secretKeyRef: { name: 'site-s-passwords', key: '6001' } } } }));
    await cr.create('sipdns', dnManifest('site-s', '6002', { options: { password: { value: 'in-plain-sight' } } }));

    for (const component of ['signaling', 'media', 'gateway']) await waitFor(`NetworkPolicy site-s-${component}`, () => api.get('networking.k8s.io/v1', 'NetworkPolicy', NS, `site-s-${component}`));
    const sipPolicy = api.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'site-s-signaling')?.spec as { podSelector: unknown; ingress: { from?: unknown[]; ports: unknown[] }[] };
    expect(sipPolicy.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/instance': 'site-s', 'app.kubernetes.io/component': 'signaling' } });
    expect(sipPolicy.ingress[0]?.from?.[0]).toEqual({ ipBlock: { cidr: '203.0.113.0/24' } });
    expect(sipPolicy.ingress[0]?.ports).toEqual([{ protocol: 'UDP', port: 5060 }, { protocol: 'TCP', port: 5060 }]);

    type Pod = { automountServiceAccountToken?: boolean; volumes?: { name: string; secret?: { secretName: string } }[]; containers: { volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }[] };
    const signalingPod = () => (deployment('site-s-signaling')?.spec as { template: { spec: Pod } } | undefined)?.template.spec;
    const mountOf = (secret: string) => {
      const pod = signalingPod();
      const volume = pod?.volumes?.find((v) => v.secret?.secretName === secret);
      return volume && pod?.containers[0]?.volumeMounts?.find((m) => m.name === volume.name);
    };
    expect(await waitFor('the password Secret mounted in signaling', () => mountOf('site-s-passwords'))).toMatchObject({ mountPath: '/etc/huddle/secrets/site-s-passwords', readOnly: true });
    expect(signalingPod()?.automountServiceAccountToken).toBe(false);

    const refused = await waitFor('SipDN 6002 refused', async () => condition(await cr.get('sipdns', 'site-s-6002'), 'Ready'));
    expect(refused).toMatchObject({ status: 'False', reason: 'InlineSecretRefused' });
    await waitFor('DN 6001 in KV', () => kvDoc<SipDN>(ConfigKeys.dn('site-s', '6001')));
    expect(await kvDoc(ConfigKeys.dn('site-s', '6002'))).toBeUndefined();
    expect(condition(await cr.get('sipdns', 'site-s-6001'), 'Ready')?.status).toBe('True');

    const generation = deployment('site-s-signaling')?.metadata.generation ?? 0;
    await cr.create('sipdns', dnManifest('site-s', '6003', { options: { password: { secretKeyRef: { name: 'site-s-branch', key: '6003' } } } }));
    expect(await waitFor('the new Secret mounted too', () => mountOf('site-s-branch'))).toMatchObject({ mountPath: '/etc/huddle/secrets/site-s-branch', readOnly: true });
    expect(deployment('site-s-signaling')?.metadata.generation).toBeGreaterThan(generation);
    expect(mountOf('site-s-passwords')).toBeDefined();

    // Later tests count the sites' ServiceMonitors: this one goes again.
    await cr.delete('sipclusters', 'site-s');
    await waitFor('site-s gone', () => !api.get('sip.huddle.dev/v1alpha1', 'SipCluster', NS, 'site-s'));
    expect(api.get('networking.k8s.io/v1', 'NetworkPolicy', NS, 'site-s-signaling')).toBeUndefined();
  });

  it('two replicas: one leader; the standby takes over when the leader stops', async () => {
    b = startController(api, nats.url, 'operator-b');
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.controller.isLeader).toBe(true);
    expect(b.controller.isLeader).toBe(false);
    expect((api.get('coordination.k8s.io/v1', 'Lease', NS, 'huddle-operator')?.spec as { holderIdentity: string }).holderIdentity).toBe('operator-a');
    await a.controller.stop();
    await waitFor('operator-b to lead', () => b?.controller.isLeader, 15_000);
    expect(a.controller.isLeader).toBe(false);
    await cr.create('sipclusters', clusterManifest('site-c', 'SiteC'));
    await waitFor('site-c reconciled by operator-b', () => deployment('site-c-signaling'));
    const applied = api.list('v1', 'Event', NS).filter((e) => (e.involvedObject as { name: string }).name === 'site-c');
    expect(applied.every((e) => e.reportingInstance === 'operator-b')).toBe(true);
  });

  it('prunes what is no longer desired: ServiceMonitors switched off go, a look-alike not owned stays, the next reconcile is a no-op', async () => {
    const monitors = () => api.list('monitoring.coreos.com/v1', 'ServiceMonitor', NS).map((m) => m.metadata.name);
    await waitFor('site-c ServiceMonitor', () => monitors().includes('site-c-metrics'));
    const owned = api.list('monitoring.coreos.com/v1', 'ServiceMonitor', NS).filter((m) => (m.metadata.ownerReferences ?? []).length > 0);
    expect(owned.map((m) => m.metadata.name).sort()).toEqual(['site-a-metrics', 'site-c-metrics', 'site-x-metrics']);
    // Same labels as the operator's, made by a person: not owned by the SipCluster, so never pruned.
    const res = await fetch(`${api.url}/apis/monitoring.coreos.com/v1/namespaces/${NS}/servicemonitors`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name: 'site-c-mine', labels: { 'app.kubernetes.io/instance': 'site-c', 'app.kubernetes.io/managed-by': 'huddle-operator' } },
        spec: { selector: { matchLabels: { 'app.kubernetes.io/instance': 'site-c' } }, endpoints: [{ port: 'metrics' }] },
      }),
    });
    expect(res.status).toBe(201);

    // The operator upgraded with the ServiceMonitor switched off: its desired set shrinks.
    await b?.controller.stop();
    c = startController(api, nats.url, 'operator-c', { settings: { defaultNatsUrl: nats.url, serviceMonitor: false } });
    await waitFor('operator-c to lead', () => c?.controller.isLeader, 15_000);
    await waitFor('owned ServiceMonitors pruned', () => monitors().length === 1);
    expect(monitors()).toEqual(['site-c-mine']);
    expect(deployment('site-c-signaling')).toBeDefined();
    for (const site of ['site-a', 'site-c', 'site-x']) {
      const pruned = await waitFor(`the Applied Event naming the pruned ServiceMonitor of ${site}`, () =>
        api.list('v1', 'Event', NS).find((e) => e.reason === 'Applied' && e.reportingInstance === 'operator-c' && (e.involvedObject as { name: string }).name === site),
      );
      expect(pruned.message).toBe(`deleted ServiceMonitor/${site}-metrics`);
    }
    const deletedCount = async () =>
      (await c?.registry.getMetricsAsJSON())?.find((m) => m.name === 'huddle_operator_objects_applied_total')?.values.find((v) => v.labels.kind === 'ServiceMonitor' && v.labels.action === 'deleted')?.value;
    expect(await deletedCount()).toBe(owned.length);

    // Further reconciles (resync every 1.5 s) list again and find nothing to create, patch or delete.
    const successes = async () => (await c?.registry.getMetricsAsJSON())?.find((m) => m.name === 'huddle_operator_reconciles_total')?.values.find((v) => v.labels.result === 'success')?.value ?? 0;
    const from = api.requests.length;
    const eventsBefore = api.list('v1', 'Event', NS).filter((e) => e.reason === 'Applied').length;
    const successesBefore = await successes();
    await waitFor('two more successful reconciles of each healthy cluster', async () => (await successes()) >= successesBefore + 4, 15_000);
    const since = api.requests.slice(from);
    expect(since.some((r) => r.method === 'GET' && r.path === `/apis/monitoring.coreos.com/v1/namespaces/${NS}/servicemonitors`)).toBe(true);
    const managed = /\/(configmaps|services|deployments|statefulsets|poddisruptionbudgets|networkpolicies|servicemonitors)(\/|$)/;
    expect(since.filter((r) => r.method !== 'GET' && managed.test(r.path))).toEqual([]);
    expect(api.list('v1', 'Event', NS).filter((e) => e.reason === 'Applied').length).toBe(eventsBefore);
    expect(await deletedCount()).toBe(owned.length);
    expect(monitors()).toEqual(['site-c-mine']);
  });
});
