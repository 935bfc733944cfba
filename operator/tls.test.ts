import type { Deployment } from 'kubernetes-types/apps/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import type { Service } from 'kubernetes-types/core/v1.js';
import { describe, expect, it } from 'vitest';
import { testCluster } from '../test/operator/fixtures.js';
import { validateK8sObjects } from '../test/operator/k8s-models.js';
import type { DesiredObject, OperatorSettings } from './desired.js';
import { planCluster } from './plan.js';

const settings: OperatorSettings = { defaultNatsUrl: 'nats://operator-nats:4222', serviceMonitor: false };

function find<T extends DesiredObject>(objects: DesiredObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered`);
  return found as T;
}

describe('TLS Secrets (issue 15 point 3)', () => {
  const cluster = testCluster('site-a', 'telephony', { sip: { tls: { secret: 'sip-cert' }, service: { type: 'LoadBalancer' } }, gateway: { tls: { secret: 'tlib-cert' } } });
  const objects = planCluster(cluster, [], settings).objects;

  it('mounts spec.sip.tls.secret whole (no subPath: renewals reach the pod) at the directory signaling reads', async () => {
    const pod = find<Deployment>(objects, 'Deployment', 'site-a-signaling').spec?.template.spec;
    expect(pod?.volumes?.find((v) => v.name === 'sip-tls')?.secret).toEqual({
      secretName: 'sip-cert',
      items: [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
      ],
    });
    expect(pod?.containers[0]?.volumeMounts?.find((m) => m.name === 'sip-tls')).toEqual({ name: 'sip-tls', mountPath: '/etc/huddle/sip-tls', readOnly: true });
    const gateway = find<Deployment>(objects, 'Deployment', 'site-a-gateway').spec?.template.spec;
    expect(gateway?.volumes?.some((v) => v.name === 'sip-tls')).toBe(false);
    expect(await validateK8sObjects(objects)).toEqual([]);
  });

  it('adds SIP over TLS on 5061 to the signaling container, its Service and its NetworkPolicy', () => {
    const container = find<Deployment>(objects, 'Deployment', 'site-a-signaling').spec?.template.spec?.containers[0];
    expect(container?.ports).toEqual(expect.arrayContaining([{ name: 'sip-tls', containerPort: 5061, protocol: 'TCP' }]));
    const service = find<Service>(objects, 'Service', 'site-a-sip');
    expect(service.spec?.ports).toEqual(
      expect.arrayContaining([
        { name: 'sip-udp', protocol: 'UDP', port: 5060, targetPort: 'sip-udp' },
        { name: 'sip-tls', protocol: 'TCP', port: 5061, targetPort: 'sip-tls' },
      ]),
    );
    const policy = find<NetworkPolicy>(objects, 'NetworkPolicy', 'site-a-signaling');
    expect(policy.spec?.ingress?.[0]?.ports).toEqual(expect.arrayContaining([{ protocol: 'TCP', port: 5061 }]));
  });

  it('exposes a wss listener (SIP over WebSocket, with the SIP TLS certificate) on its own port in the pod, the Service and the NetworkPolicy', async () => {
    const listen = [
      { transport: 'udp', host: '0.0.0.0', port: 5060 },
      { transport: 'wss', host: '0.0.0.0', port: 8443 },
    ];
    const wss = planCluster(testCluster('site-a', 'telephony', { sip: { listen, tls: { secret: 'sip-cert' } } }), [], settings).objects;
    const container = find<Deployment>(wss, 'Deployment', 'site-a-signaling').spec?.template.spec?.containers[0];
    expect(container?.ports).toEqual(expect.arrayContaining([{ name: 'sip-wss', containerPort: 8443, protocol: 'TCP' }]));
    expect(container?.volumeMounts?.find((m) => m.name === 'sip-tls')?.mountPath).toBe('/etc/huddle/sip-tls');
    expect(find<Service>(wss, 'Service', 'site-a-sip').spec?.ports).toEqual(expect.arrayContaining([{ name: 'sip-wss', protocol: 'TCP', port: 8443, targetPort: 'sip-wss' }]));
    const policy = find<NetworkPolicy>(wss, 'NetworkPolicy', 'site-a-signaling');
    expect(policy.spec?.ingress?.[0]?.ports).toEqual(expect.arrayContaining([{ protocol: 'TCP', port: 8443 }]));
    expect(await validateK8sObjects(wss)).toEqual([]);
  });

  it('mounts spec.gateway.tls.secret in gateway pods only', () => {
    const pod = find<Deployment>(objects, 'Deployment', 'site-a-gateway').spec?.template.spec;
    expect(pod?.volumes?.find((v) => v.name === 'gateway-tls')?.secret?.secretName).toBe('tlib-cert');
    expect(pod?.containers[0]?.volumeMounts?.find((m) => m.name === 'gateway-tls')?.mountPath).toBe('/etc/huddle/gateway-tls');
    const signaling = find<Deployment>(objects, 'Deployment', 'site-a-signaling').spec?.template.spec;
    expect(signaling?.volumes?.some((v) => v.name === 'gateway-tls')).toBe(false);
  });

  it('without a certificate nothing listens for TLS', () => {
    const plain = planCluster(testCluster('site-a', 'telephony'), [], settings).objects;
    expect(find<Service>(plain, 'Service', 'site-a-sip').spec?.ports?.map((p) => p.name)).toEqual(['sip-udp', 'sip-tcp']);
  });
});
