import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, PodSpec, Service } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { describe, expect, it } from 'vitest';
import { validateK8sObjects } from '../test/operator/k8s-models.js';
import { covers, mergePatchFor } from './apply.js';
import { MANAGED_KINDS, RTPENGINE_CLI, RTPENGINE_NG, SECRETS_DIR, type DesiredObject, type OperatorSettings } from './desired.js';
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
      'NetworkPolicy/site-a-signaling',
      'NetworkPolicy/site-a-media',
      'NetworkPolicy/site-a-gateway',
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

describe('Kubernetes posture of the rendered site', () => {
  const cluster = testCluster('site-a', 'telephony', {
    sip: { listen: [{ transport: 'udp', host: '0.0.0.0', port: 5060 }, { transport: 'tcp', host: '0.0.0.0', port: 5070 }] },
    media: { portMin: 41000, portMax: 41999 },
    gateway: { listen: '0.0.0.0:7000' },
  });
  const objects = planCluster(cluster, [], settings).objects;
  const policy = (component: string) => find<NetworkPolicy>(objects, 'NetworkPolicy', `site-a-${component}`).spec;
  const site = { podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'site-a', 'app.kubernetes.io/managed-by': 'huddle-operator' } } };
  const monitoring = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };

  it('renders an ingress NetworkPolicy per component: SIP, RTP and T-Library from anywhere by default, metrics from the monitoring namespace only', () => {
    expect(policy('signaling')).toEqual({
      podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'site-a', 'app.kubernetes.io/component': 'signaling' } },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'UDP', port: 5060 }, { protocol: 'TCP', port: 5070 }] },
        { from: [monitoring], ports: [{ protocol: 'TCP', port: 9464 }] },
      ],
    });
    expect(policy('media')?.ingress).toEqual([
      { ports: [{ protocol: 'UDP', port: 41000, endPort: 41999 }] },
      { from: [monitoring], ports: [{ protocol: 'TCP', port: 9465 }] },
    ]);
    expect(policy('gateway')?.ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 7000 }] },
      { from: [monitoring], ports: [{ protocol: 'TCP', port: 9464 }] },
    ]);
    // Every pod of the site is selected by exactly one policy.
    for (const component of ['signaling', 'media', 'gateway'])
      expect(policy(component)?.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/instance': 'site-a', 'app.kubernetes.io/component': component });
  });

  it('narrows SIP, RTP and T-Library to the CIDRs the spec lists (and the site itself), metrics to the namespaces it names; renders none when switched off', async () => {
    const narrowed = planCluster(
      testCluster('site-a', 'telephony', {
        networkPolicy: { sipFrom: ['203.0.113.0/24', '2001:db8::/32'], rtpFrom: ['198.51.100.0/24'], tlibFrom: ['10.20.0.0/16'], monitoringNamespaceLabels: { 'huddle.dev/scrapes': 'true' } },
      }),
      [],
      settings,
    ).objects;
    const rules = (component: string) => find<NetworkPolicy>(narrowed, 'NetworkPolicy', `site-a-${component}`).spec?.ingress;
    expect(rules('signaling')?.[0]?.from).toEqual([{ ipBlock: { cidr: '203.0.113.0/24' } }, { ipBlock: { cidr: '2001:db8::/32' } }, site]);
    expect(rules('media')?.[0]?.from).toEqual([{ ipBlock: { cidr: '198.51.100.0/24' } }, site]);
    expect(rules('gateway')?.[0]?.from).toEqual([{ ipBlock: { cidr: '10.20.0.0/16' } }, site]);
    expect(rules('gateway')?.[1]?.from).toEqual([{ namespaceSelector: { matchLabels: { 'huddle.dev/scrapes': 'true' } } }]);
    expect(await validateK8sObjects(narrowed)).toEqual([]);
    const off = planCluster(testCluster('site-a', 'telephony', { networkPolicy: { enabled: false } }), [], settings).objects;
    expect(off.some((o) => o.kind === 'NetworkPolicy')).toBe(false);
  });

  it('mounts no service-account token in signaling, media or gateway pods (none of them calls the Kubernetes API)', () => {
    const specs = podSpecs(objects);
    expect(specs.map(([name]) => name)).toEqual(['site-a-signaling', 'site-a-media', 'site-a-gateway']);
    for (const [name, pod] of specs) expect(pod.automountServiceAccountToken, name).toBe(false);
  });

  it('binds rtpengine ng and CLI to loopback, serves no rtpengine HTTP, and media-controller metrics on the node address, never 0.0.0.0', () => {
    const pod = find<StatefulSet>(objects, 'StatefulSet', 'site-a-media').spec?.template.spec;
    expect(pod?.hostNetwork).toBe(true);
    const [rtpengine, controller] = pod?.containers ?? [];
    expect(RTPENGINE_NG).toBe('127.0.0.1:2223');
    expect(RTPENGINE_CLI).toBe('127.0.0.1:9900');
    expect(rtpengine?.args).toEqual(expect.arrayContaining(['--listen-ng=127.0.0.1:2223', '--listen-cli=127.0.0.1:9900', '--interface=$(POD_IP)']));
    const listeners = rtpengine?.args?.filter((a) => a.startsWith('--listen')) ?? [];
    expect(listeners).toEqual(['--listen-ng=127.0.0.1:2223', '--listen-cli=127.0.0.1:9900']);
    expect(rtpengine?.readinessProbe?.exec?.command).toEqual(['rtpengine-ctl', '-ip', '127.0.0.1', '-port', '9900', 'list', 'numsessions']);
    const env = controller?.env ?? [];
    const metrics = env.findIndex((e) => e.name === 'HUDDLE_METRICS_LISTEN');
    const podIp = env.findIndex((e) => e.name === 'POD_IP');
    expect(env[metrics]?.value).toBe('$(POD_IP):9465');
    // Kubernetes expands $(POD_IP) only from a variable defined earlier in the list.
    expect(podIp).toBeGreaterThanOrEqual(0);
    expect(podIp).toBeLessThan(metrics);
    expect(env[podIp]?.valueFrom?.fieldRef?.fieldPath).toBe('status.podIP');
    for (const c of pod?.containers ?? []) expect(JSON.stringify(c), c.name).not.toContain('0.0.0.0');
  });
});

describe('SipDN password Secrets', () => {
  const cluster = testCluster('site-a', 'telephony');
  const withSecret = (number: string, name: string, key = number) => testDn('site-a', number, 'telephony', { options: { password: { secretKeyRef: { name, key } } } });
  const signalingPod = (p: ReturnType<typeof planCluster>) => find<Deployment>(p.objects, 'Deployment', 'site-a-signaling').spec?.template.spec;

  it('mounts each Secret a SipDN password names, read-only, where signaling reads <dir>/<name>/<key>', async () => {
    const p = planCluster(cluster, [withSecret('7001', 'sip-passwords'), withSecret('7002', 'sip-passwords'), withSecret('7003', 'branch-passwords'), testDn('site-a', '7004')], settings);
    const pod = signalingPod(p);
    const secretVolumes = pod?.volumes?.filter((v) => v.secret) ?? [];
    expect(secretVolumes.map((v) => v.secret)).toEqual([
      { secretName: 'branch-passwords', optional: true },
      { secretName: 'sip-passwords', optional: true },
    ]);
    const mounts = pod?.containers[0]?.volumeMounts ?? [];
    for (const v of secretVolumes) {
      expect(mounts.find((m) => m.name === v.name)).toEqual({ name: v.name, mountPath: `${SECRETS_DIR}/${v.secret?.secretName}`, readOnly: true });
    }
    expect(SECRETS_DIR).toBe('/etc/huddle/secrets');
    expect(pod?.containers[0]?.env).toEqual(expect.arrayContaining([{ name: 'HUDDLE_SECRETS_DIR', value: '/etc/huddle/secrets' }]));
    for (const [name, other] of podSpecs(p.objects).filter(([n]) => n !== 'site-a-signaling'))
      expect(other.volumes?.some((v) => v.secret?.secretName === 'sip-passwords'), name).toBe(false);
    expect(await validateK8sObjects(p.objects)).toEqual([]);
  });

  it('a SipDN naming a new Secret changes the signaling pod template (a new volume); a new key of a mounted Secret changes nothing', () => {
    const before = planCluster(cluster, [withSecret('7001', 'sip-passwords')], settings);
    const newKey = planCluster(cluster, [withSecret('7001', 'sip-passwords'), withSecret('7002', 'sip-passwords')], settings);
    expect(newKey.objects).toEqual(before.objects);
    const newSecret = planCluster(cluster, [withSecret('7001', 'sip-passwords'), withSecret('7005', 'more-passwords')], settings);
    expect(signalingPod(newSecret)).not.toEqual(signalingPod(before));
    expect(signalingPod(newSecret)?.volumes?.some((v) => v.secret?.secretName === 'more-passwords')).toBe(true);
  });

  it('does not mount a Secret named only by a refused SipDN', () => {
    const older = { ...withSecret('7001', 'sip-passwords'), metadata: { ...withSecret('7001', 'sip-passwords').metadata, name: 'a-older', creationTimestamp: '2026-01-01T00:00:00Z' } };
    const dup = { ...withSecret('7001', 'stolen'), metadata: { ...withSecret('7001', 'stolen').metadata, name: 'b-dup', creationTimestamp: '2026-02-01T00:00:00Z' } };
    const p = planCluster(cluster, [older, dup], settings);
    expect(p.rejected.map((r) => r.refusal)).toEqual(['DuplicateNumber']);
    expect(signalingPod(p)?.volumes?.some((v) => v.secret?.secretName === 'stolen')).toBe(false);
  });
});

describe('Secret references required', () => {
  const inline = testDn('site-a', '7001', 'telephony', { options: { password: { value: 'in-plain-sight' } } });
  const byRef = testDn('site-a', '7002', 'telephony', { options: { password: { secretKeyRef: { name: 'sip-passwords', key: '7002' } } } });
  const tokens = [{ name: 'agent', token: 'agent-token-1', dns: ['7001'] }];

  it('refuses a SipDN with an inline password (InlineSecretRefused) and never publishes it, when the SipCluster requires Secret references', () => {
    const p = planCluster(testCluster('site-a', 'telephony', { security: { requireSecretRefs: true } }), [inline, byRef], settings);
    expect(p.rejected.map((r) => [r.dn.metadata.name, r.refusal])).toEqual([['site-a-7001', 'InlineSecretRefused']]);
    expect(p.rejected[0]?.reason).toMatch(/secretKeyRef/);
    expect(p.accepted.map((d) => d.spec.number)).toEqual(['7002']);
    expect(JSON.stringify(p.config)).not.toContain('in-plain-sight');
  });

  it('holds every SipCluster to it when the operator is told to (the chart default), inline agent tokens included', () => {
    const cluster = testCluster('site-a', 'telephony', { gateway: { tokens } });
    const p = planCluster(cluster, [inline, byRef], { ...settings, requireSecretRefs: true });
    expect(p.rejected.map((r) => r.refusal)).toEqual(['InlineSecretRefused']);
    expect(p.config.cluster.spec.gateway.tokens).toEqual([]);
    expect(cluster.spec.gateway.tokens).toEqual(tokens);
    expect(p.refused).toMatch(/tokensSecret/);
    expect(JSON.stringify(p.config)).not.toContain('agent-token-1');
  });

  it('accepts inline secrets when nothing requires references (local configs)', () => {
    const p = planCluster(testCluster('site-a', 'telephony', { gateway: { tokens } }), [inline, byRef], settings);
    expect(p.rejected).toEqual([]);
    expect(p.refused).toBeUndefined();
    expect(p.config.cluster.spec.gateway.tokens).toEqual(tokens);
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
