import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, PodSpec, Service } from 'kubernetes-types/core/v1.js';
import { describe, expect, it } from 'vitest';
import { validateK8sObjects } from '../test/operator/k8s-models.js';
import { covers, mergePatchFor } from './apply.js';
import { MANAGED_KINDS, type DesiredObject, type OperatorSettings } from './desired.js';
import { testCluster, testDn } from '../test/operator/fixtures.js';
import { planCluster } from './plan.js';

const settings: OperatorSettings = { defaultNatsUrl: 'nats://operator-nats:4222', serviceMonitor: true };

function find<T extends DesiredObject>(objects: DesiredObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered`);
  return found as T;
}

function podSpecs(objects: DesiredObject[]): [string, PodSpec][] {
  return objects
    .filter((o): o is Deployment | StatefulSet => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => [o.metadata?.name ?? '', o.spec?.template.spec as PodSpec]);
}

describe('planCluster (reconcile as a pure function)', () => {
  const cluster = testCluster('site-a', 'telephony', { media: { replicas: 2, portMin: 41000, portMax: 41999 } });
  const dns = [testDn('site-a', '7001'), testDn('site-a', '9000', 'telephony', { type: 'Trunk', options: { contact: 'sip:10.0.0.9:5060' } }), testDn('site-b', '7001')];
  const plan = planCluster(cluster, dns, settings);

  it('renders objects that kubernetes-models accepts', async () => {
    expect(plan.objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
      'ConfigMap/site-a-env',
      'Service/site-a-sip',
      'Service/site-a-gateway',
      'Service/site-a-media',
      'Service/site-a-metrics',
      'Deployment/site-a-signaling',
      'StatefulSet/site-a-media',
      'Deployment/site-a-gateway',
      'PodDisruptionBudget/site-a-signaling',
      'PodDisruptionBudget/site-a-media',
      'PodDisruptionBudget/site-a-gateway',
      'ServiceMonitor/site-a-metrics',
    ]);
    expect(await validateK8sObjects(plan.objects)).toEqual([]);
  });

  it('makes every object owned by the SipCluster, in its namespace', () => {
    for (const o of plan.objects) {
      expect(o.metadata?.namespace).toBe('telephony');
      expect(o.metadata?.ownerReferences).toEqual([
        { apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipCluster', name: 'site-a', uid: 'uid-site-a', controller: true, blockOwnerDeletion: true },
      ]);
    }
  });

  it('renders only MANAGED_KINDS, every object carrying the labels pruning selects on', () => {
    const kinds = (objects: DesiredObject[]) => [...new Set(objects.map((o) => `${o.apiVersion} ${o.kind}`))].sort();
    expect(kinds(plan.objects)).toEqual(MANAGED_KINDS.map((k) => `${k.apiVersion} ${k.kind}`).sort());
    expect(kinds(planCluster(cluster, [], { ...settings, serviceMonitor: false }).objects)).not.toContain('monitoring.coreos.com/v1 ServiceMonitor');
    for (const o of plan.objects) expect(o.metadata?.labels).toMatchObject({ 'app.kubernetes.io/instance': 'site-a', 'app.kubernetes.io/managed-by': 'huddle-operator' });
  });

  it('runs every container non-root with a read-only root filesystem, resources and probes', () => {
    const specs = podSpecs(plan.objects);
    expect(specs).toHaveLength(3);
    for (const [name, pod] of specs) {
      expect(pod.securityContext?.runAsNonRoot, name).toBe(true);
      for (const c of pod.containers) {
        expect(c.securityContext?.readOnlyRootFilesystem, `${name}/${c.name}`).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, `${name}/${c.name}`).toBe(false);
        expect(c.resources?.requests?.cpu, `${name}/${c.name}`).toBeDefined();
        expect(c.resources?.limits?.memory, `${name}/${c.name}`).toBeDefined();
        expect(c.readinessProbe, `${name}/${c.name}`).toBeDefined();
        expect(c.livenessProbe, `${name}/${c.name}`).toBeDefined();
      }
    }
    const signaling = find<Deployment>(plan.objects, 'Deployment', 'site-a-signaling').spec?.template.spec?.containers[0];
    expect(signaling?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(signaling?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  });

  it('exposes SIP over UDP and TCP, and media pods with rtpengine beside media-controller on the port range', () => {
    const sip = find<Service>(plan.objects, 'Service', 'site-a-sip');
    expect(sip.spec?.ports?.map((p) => `${p.name}:${p.protocol}:${p.port}`)).toEqual(['sip-udp:UDP:5060', 'sip-tcp:TCP:5060']);
    const media = find<StatefulSet>(plan.objects, 'StatefulSet', 'site-a-media');
    expect(media.spec?.replicas).toBe(2);
    expect(media.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['rtpengine', 'media-controller']);
    const rtpengine = media.spec?.template.spec?.containers[0];
    expect(rtpengine?.args).toEqual(expect.arrayContaining(['--port-min=41000', '--port-max=41999', '--table=-1']));
    expect(rtpengine?.args?.some((a) => a.startsWith('--num-threads'))).toBe(false);
    const oneThread = planCluster(testCluster('site-a', 'telephony', { media: { replicas: 2, portMin: 41000, portMax: 41999, rtpengineThreads: 1 } }), dns, settings);
    expect(find<StatefulSet>(oneThread.objects, 'StatefulSet', 'site-a-media').spec?.template.spec?.containers[0]?.args).toContain('--num-threads=1');
    expect(media.spec?.template.spec?.containers[1]?.env).toEqual(expect.arrayContaining([{ name: 'HUDDLE_RTPENGINE', value: '127.0.0.1:2223' }]));
  });

  it('binds DNs by spec.cluster and gives a number claimed twice to the oldest SipDN', () => {
    const older = { ...testDn('site-a', '7002'), metadata: { ...testDn('site-a', '7002').metadata, name: 'a-older', creationTimestamp: '2026-01-01T00:00:00Z' } };
    const newer = { ...testDn('site-a', '7002'), metadata: { ...testDn('site-a', '7002').metadata, name: 'b-newer', creationTimestamp: '2026-02-01T00:00:00Z' } };
    const p = planCluster(cluster, [newer, older, ...dns], settings);
    expect(p.config.dns.map((d) => d.spec.number).sort()).toEqual(['7001', '7002', '9000']);
    expect(p.rejected.map((r) => [r.dn.metadata.name, r.reason])).toEqual([['b-newer', 'number 7002 is already configured by SipDN a-older']]);
    expect(p.config.cluster.metadata).toEqual({ name: 'site-a' });
    expect(p.config.cluster.spec.options['music-listen-disconnect']).toBe('music/on_hold');
  });

  it('keeps options and DNs out of the pod templates: editing them changes no object', () => {
    const edited = testCluster('site-a', 'telephony', {
      media: { replicas: 2, portMin: 41000, portMax: 41999 },
      options: { 'music-listen-disconnect': 'music/other', 'sip-enable-call-info': true },
    });
    const after = planCluster(edited, [...dns, testDn('site-a', '7009', 'telephony', { options: { 'sip-enable-moh': false } })], settings);
    expect(after.objects).toEqual(plan.objects);
    expect(after.config.cluster.spec.options['music-listen-disconnect']).toBe('music/other');
  });

  it('rolls pods when the NATS connection changes (env ConfigMap hash in the template)', () => {
    const moved = planCluster(testCluster('site-a', 'telephony', { media: { replicas: 2, portMin: 41000, portMax: 41999 }, nats: { url: 'nats://elsewhere:4222' } }), dns, settings);
    const hash = (p: typeof plan) => find<Deployment>(p.objects, 'Deployment', 'site-a-signaling').spec?.template.metadata?.annotations?.['sip.huddle.dev/env-hash'];
    expect(hash(moved)).not.toBe(hash(plan));
    expect(find<ConfigMap>(moved.objects, 'ConfigMap', 'site-a-env').data?.HUDDLE_NATS_URL).toBe('nats://elsewhere:4222');
    const noUrl = planCluster(testCluster('site-c'), [], { ...settings, serviceMonitor: false });
    expect(find<ConfigMap>(noUrl.objects, 'ConfigMap', 'site-c-env').data?.HUDDLE_NATS_URL).toBe('nats://nats.telephony:4222');
    expect(noUrl.objects.some((o) => o.kind === 'ServiceMonitor')).toBe(false);
  });

  it('gives the gateway its JWT keys from the Secrets named in spec.gateway.jwt', () => {
    const p = planCluster(testCluster('site-a', 'telephony', { gateway: { jwt: { hs256Secret: { name: 'jwt', key: 'hs256' } } } }), [], settings);
    const gw = find<Deployment>(p.objects, 'Deployment', 'site-a-gateway').spec?.template.spec?.containers[0];
    expect(gw?.args).toEqual(['dist/bin/tlib-gateway.js']);
    expect(gw?.env).toEqual(expect.arrayContaining([{ name: 'HUDDLE_GATEWAY_JWT_HS256_SECRET', valueFrom: { secretKeyRef: { name: 'jwt', key: 'hs256' } } }]));
  });

  it('mounts the agent tokens of spec.gateway.tokensSecret in gateway pods only, and tells the gateway where', async () => {
    const p = planCluster(testCluster('site-a', 'telephony', { gateway: { tokensSecret: 'agent-tokens' } }), [], settings);
    const pod = find<Deployment>(p.objects, 'Deployment', 'site-a-gateway').spec?.template.spec;
    expect(pod?.volumes?.find((v) => v.name === 'agent-tokens')?.secret).toEqual({ secretName: 'agent-tokens', items: [{ key: 'tokens.yaml', path: 'tokens.yaml' }] });
    expect(pod?.containers[0]?.volumeMounts?.find((m) => m.name === 'agent-tokens')).toEqual({ name: 'agent-tokens', mountPath: '/etc/huddle/gateway-tokens', readOnly: true });
    expect(pod?.containers[0]?.env).toEqual(expect.arrayContaining([{ name: 'HUDDLE_GATEWAY_TOKENS_FILE', value: '/etc/huddle/gateway-tokens/tokens.yaml' }]));
    const signaling = find<Deployment>(p.objects, 'Deployment', 'site-a-signaling').spec?.template.spec;
    expect(signaling?.volumes?.some((v) => v.name === 'agent-tokens')).toBe(false);
    expect(await validateK8sObjects(p.objects)).toEqual([]);
  });

  it('mounts music from a ConfigMap and NATS credentials from a Secret', () => {
    const p = planCluster(testCluster('site-a', 'telephony', { music: { configMap: 'music' }, nats: { credentialsSecret: 'nats-creds' } }), [], settings);
    const pod = find<Deployment>(p.objects, 'Deployment', 'site-a-signaling').spec?.template.spec;
    expect(pod?.volumes?.map((v) => v.name)).toEqual(['tmp', 'music', 'nats-creds']);
    expect(pod?.containers[0]?.volumeMounts?.find((m) => m.name === 'music')?.mountPath).toBe('/etc/huddle/music');
  });
});

describe('merge patches hold only what differs', () => {
  it('ignores fields the server added and patches a drifted field', () => {
    const desired = { spec: { replicas: 1, template: { containers: [{ name: 'a', image: 'x' }] } } };
    const live = { metadata: { uid: 'u' }, spec: { replicas: 1, revisionHistoryLimit: 10, template: { containers: [{ name: 'a', image: 'x', imagePullPolicy: 'IfNotPresent' }] } } };
    expect(covers(live, desired)).toBe(true);
    expect(mergePatchFor(live, desired)).toBeUndefined();
    const drifted = structuredClone(live);
    drifted.spec.replicas = 3;
    drifted.spec.template.containers[0]!.image = 'y';
    expect(mergePatchFor(drifted, desired)).toEqual({ spec: { replicas: 1, template: { containers: [{ name: 'a', image: 'x' }] } } });
  });
});
