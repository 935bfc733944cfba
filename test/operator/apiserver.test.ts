/** The emulator's Kubernetes semantics, checked through @kubernetes/client-node over HTTP. */
import { AppsV1Api, CustomObjectsApi, makeInformer, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer } from './apiserver.js';
import { evalCel, parseCel, unescapeProperty } from './cel.js';
import { waitFor } from './harness.js';

const NS = 'lab';
const cr = { group: 'sip.huddle.dev', version: 'v1alpha1', namespace: NS };
const cluster = (name: string) => ({ apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipCluster', metadata: { name }, spec: { location: 'Lab' } });

describe('Kubernetes API server emulator', () => {
  let api: FakeApiServer;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;

  beforeAll(async () => {
    api = await new FakeApiServer().start();
    custom = api.kubeConfig(NS).makeApiClient(CustomObjectsApi);
    apps = api.kubeConfig(NS).makeApiClient(AppsV1Api);
  });
  afterAll(async () => {
    await api.close();
  });

  it('defaults from the CRD schema and prunes unknown fields on create', async () => {
    const created = (await custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: { ...cluster('one'), spec: { location: 'Lab', bogus: 1 } } })) as {
      spec: { bogus?: number; options: Record<string, unknown>; sip: { listen: unknown[] } };
      metadata: { generation: number; uid: string };
    };
    expect(created.spec.bogus).toBeUndefined();
    expect(created.spec.options['music-listen-disconnect']).toBe('music/on_hold');
    expect(created.spec.sip.listen).toHaveLength(2);
    expect(created.metadata.generation).toBe(1);
    expect(created.metadata.uid).toMatch(/[0-9a-f-]{36}/);
  });

  it('answers 409 for a stale resourceVersion and for a name that exists', async () => {
    const current = (await custom.getNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one' })) as { metadata: { resourceVersion: string } };
    await custom.replaceNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one', body: { ...current, spec: { location: 'Lab2' } } });
    await expect(custom.replaceNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one', body: { ...current, spec: { location: 'Lab3' } } })).rejects.toMatchObject({ code: 409 });
    await expect(custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: cluster('one') })).rejects.toMatchObject({ code: 409 });
  });

  it('bumps generation on spec changes only; status goes through the status subresource only', async () => {
    const before = (await custom.getNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one' })) as { metadata: { generation: number; labels?: object } };
    expect(before.metadata.generation).toBe(2);
    const labelled = (await custom.replaceNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one', body: { ...before, metadata: { ...before.metadata, labels: { a: 'b' } }, status: { dnCount: 9 } } })) as {
      metadata: { generation: number };
      status?: unknown;
    };
    expect(labelled.metadata.generation).toBe(2);
    expect(labelled.status).toBeUndefined();
    const withStatus = (await custom.replaceNamespacedCustomObjectStatus({ ...cr, plural: 'sipclusters', name: 'one', body: { ...labelled, spec: { location: 'Elsewhere' }, status: { dnCount: 3 } } })) as {
      metadata: { generation: number };
      spec: { location: string };
      status: { dnCount: number };
    };
    expect(withStatus.status.dnCount).toBe(3);
    expect(withStatus.spec.location).toBe('Lab2');
    expect(withStatus.metadata.generation).toBe(2);
  });

  it('keeps an object with finalizers until they are removed, then deletes it and what it owns', async () => {
    const owner = (await custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: { ...cluster('two'), metadata: { name: 'two', finalizers: ['x/y'] } } })) as {
      metadata: { uid: string };
    };
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipCluster', name: 'two', uid: owner.metadata.uid }] },
        spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
      },
    });
    await custom.deleteNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'two' });
    const terminating = (await custom.getNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'two' })) as { metadata: { deletionTimestamp?: string; finalizers: string[] } };
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    expect(api.get('apps/v1', 'Deployment', NS, 'owned')).toBeDefined();
    await custom.replaceNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'two', body: { ...terminating, metadata: { ...terminating.metadata, finalizers: [] } } });
    expect(api.get('sip.huddle.dev/v1alpha1', 'SipCluster', NS, 'two')).toBeUndefined();
    expect(api.get('apps/v1', 'Deployment', NS, 'owned')).toBeUndefined();
  });

  it('rejects invalid resources with 422 naming the field, CEL rules included', async () => {
    const dn = (spec: object) => ({ apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipDN', metadata: { name: 'dn' }, spec: { cluster: 'one', number: '1', ...spec } });
    await expect(custom.createNamespacedCustomObject({ ...cr, plural: 'sipdns', body: dn({ type: 'Phone' }) })).rejects.toMatchObject({ code: 422, body: expect.stringMatching(/spec\.type: Unsupported value/) });
    await expect(custom.createNamespacedCustomObject({ ...cr, plural: 'sipdns', body: dn({ type: 'Trunk' }) })).rejects.toMatchObject({
      code: 422,
      body: expect.stringMatching(/spec\.options\.contact: Invalid value: a Trunk needs options\.contact/),
    });
  });

  it('refuses inline agent tokens on a SipCluster that requires Secret references (the CRD CEL rule)', async () => {
    const site = (name: string, spec: object) => ({ ...cluster(name), spec: { location: 'Lab', ...spec } });
    const tokens = [{ name: 'agent', token: 'agent-token-1', dns: ['*'] }];
    await expect(
      custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: site('inline', { security: { requireSecretRefs: true }, gateway: { tokens } }) }),
    ).rejects.toMatchObject({ code: 422, body: expect.stringMatching(/spec\.gateway\.tokens: Invalid value: security\.requireSecretRefs: give agent tokens in gateway\.tokensSecret/) });
    expect(api.get('sip.huddle.dev/v1alpha1', 'SipCluster', NS, 'inline')).toBeUndefined();
    await custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: site('by-ref', { security: { requireSecretRefs: true }, gateway: { tokensSecret: 'agent-tokens' } }) });
    // Without the policy (local-style configs) inline tokens stay allowed.
    await custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: site('inline-allowed', { gateway: { tokens } }) });
    // Turning the policy on later is refused too while inline tokens remain.
    await expect(api.mergePatch(`/apis/sip.huddle.dev/v1alpha1/namespaces/${NS}/sipclusters/inline-allowed`, { spec: { security: { requireSecretRefs: true } } })).rejects.toThrow(
      /422 .*spec\.gateway\.tokens/,
    );
    const stored = api.get('sip.huddle.dev/v1alpha1', 'SipCluster', NS, 'by-ref') as { spec: { security: { requireSecretRefs: boolean }; networkPolicy: { enabled: boolean } } } | undefined;
    expect(stored?.spec.security.requireSecretRefs).toBe(true);
    expect(stored?.spec.networkPolicy).toEqual({ enabled: true, monitoringNamespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' } });
  });

  it('serves list/watch to client-node informers: re-list after 410 Gone, an error on a dropped watch', async () => {
    const kc = api.kubeConfig(NS);
    const seen = new Set<string>();
    const informer = makeInformer<KubernetesObject>(kc, `/apis/sip.huddle.dev/v1alpha1/namespaces/${NS}/sipclusters`, () =>
      custom.listNamespacedCustomObject({ ...cr, plural: 'sipclusters' }) as never,
    );
    const errors: unknown[] = [];
    informer.on('add', (o) => seen.add(o.metadata?.name ?? ''));
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    try {
      await custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: cluster('three') });
      await waitFor('watch ADDED three', () => seen.has('three'));
      // Compaction forces 410 Gone: client-node re-lists by itself and sees what came meanwhile.
      api.compact();
      await custom.createNamespacedCustomObject({ ...cr, plural: 'sipclusters', body: cluster('four') });
      await waitFor('four after the re-list', () => seen.has('four'));
      expect(errors).toEqual([]);
      expect(api.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/sipclusters')).length).toBeGreaterThanOrEqual(3);
      expect(informer.list().map((o) => o.metadata?.name)).toEqual(expect.arrayContaining(['one', 'three', 'four']));
      // An abrupt drop stops a plain informer with an error (operator/informer.ts restarts it).
      await waitFor('the informer watching again', () => api.watchCount > 0);
      api.dropWatches();
      await waitFor('the informer error after a dropped watch', () => errors.length > 0);
    } finally {
      await informer.stop();
    }
  });

  it('injects faults for matching requests, a bounded number of times', async () => {
    api.injectFault({ method: 'GET', path: /sipclusters\/one$/, status: 500, times: 1 });
    await expect(custom.getNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one' })).rejects.toMatchObject({ code: 500 });
    await expect(custom.getNamespacedCustomObject({ ...cr, plural: 'sipclusters', name: 'one' })).resolves.toBeDefined();
  });
});

describe('CEL subset', () => {
  it('evaluates the rules our CRDs carry and refuses what it does not know', () => {
    const trunkRule = parseCel("self.type != 'Trunk' || has(self.options.contact)");
    expect(evalCel(trunkRule, { type: 'Trunk', options: {} })).toBe(false);
    expect(evalCel(trunkRule, { type: 'Trunk', options: { contact: 'sip:x' } })).toBe(true);
    expect(evalCel(trunkRule, { type: 'Extension', options: {} })).toBe(true);
    const interTrunk = parseCel("self.type == 'Trunk' || !self.options.sip__dash__server__dash__inter__dash__trunk");
    expect(evalCel(interTrunk, { type: 'Extension', options: { 'sip-server-inter-trunk': true } })).toBe(false);
    expect(evalCel(interTrunk, { type: 'Extension', options: { 'sip-server-inter-trunk': false } })).toBe(true);
    const tokensRule = parseCel('!self.security.requireSecretRefs || size(self.gateway.tokens) == 0');
    expect(evalCel(tokensRule, { security: { requireSecretRefs: true }, gateway: { tokens: [{ name: 'a' }] } })).toBe(false);
    expect(evalCel(tokensRule, { security: { requireSecretRefs: true }, gateway: { tokens: [] } })).toBe(true);
    expect(evalCel(tokensRule, { security: { requireSecretRefs: false }, gateway: { tokens: [{ name: 'a' }] } })).toBe(true);
    expect(evalCel(parseCel("size(self.a) == 2 && size(self.s) == 3 && size(self.m) == 1"), { a: [1, 2], s: 'abc', m: { k: 'v' } })).toBe(true);
    expect(() => evalCel(parseCel('size(self.n) == 0'), { n: true })).toThrow(/size/);
    expect(() => parseCel('self.items.all(x, x > 1)')).toThrow(/CEL subset/);
    // The API server refuses index syntax on object properties; so does the emulator.
    expect(() => parseCel("!self.options['sip-server-inter-trunk']")).toThrow(/CEL subset/);
    expect(unescapeProperty('a__dash__b__dot__c__slash__d__e')).toBe('a-b.c/d_e');
  });
});
