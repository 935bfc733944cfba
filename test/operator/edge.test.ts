/**
 * The operator's SIP edge (operator/edge.ts): with spec.sip.replicas > 1 it renders kamailio pods
 * in front of a StatefulSet of signaling replicas; the rendered kamailio.cfg is checked by kamailio.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, Service } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import { afterAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { kamailioModulesDir } from '../../common/supervisor/kamailio.js';
import type { DesiredObject, OperatorSettings } from '../../operator/desired.js';
import { EDGE_MODULES_DIR } from '../../operator/edge.js';
import { planCluster } from '../../operator/plan.js';
import { testCluster } from './fixtures.js';
import { validateK8sObjects } from './k8s-models.js';

const settings: OperatorSettings = { defaultNatsUrl: 'nats://operator-nats:4222', serviceMonitor: false };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-edge-operator-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function find<T extends DesiredObject>(objects: DesiredObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered: ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found as T;
}

/** kamailio -c on the rendered script, with the pod's interface and Service names made local. */
function kamailioAccepts(cfg: string, dispatcherList: string): string {
  const dir = mkdtempSync(path.join(tmp, 'cfg-'));
  writeFileSync(path.join(dir, 'dispatcher.list'), dispatcherList);
  const local = cfg
    .replaceAll('eth0', '127.0.0.1')
    .replace(/advertise [^ ]+\.svc\.cluster\.local:/g, 'advertise 127.0.0.1:')
    .replaceAll('/etc/huddle/edge/', `${dir}/`)
    .replaceAll(EDGE_MODULES_DIR, kamailioModulesDir());
  writeFileSync(path.join(dir, 'kamailio.cfg'), local);
  return execFileSync(findBinary('kamailio', 'kamailio'), ['-c', '-f', path.join(dir, 'kamailio.cfg')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('operator: the SIP edge', () => {
  const cluster = testCluster('site-a', 'telephony', { sip: { replicas: 3 } });
  const objects = planCluster(cluster, [], settings).objects;

  it('renders the edge Deployment and the signaling replicas as a StatefulSet, objects kubernetes-models accepts', async () => {
    await validateK8sObjects(objects);
    const edge = find<Deployment>(objects, 'Deployment', 'site-a-sip-edge');
    expect(edge.spec?.replicas).toBe(2);
    const container = edge.spec!.template.spec!.containers[0]!;
    expect(container.image).toBe('ghcr.io/huddle-sip/kamailio:5.6');
    expect(container.ports?.map((p) => `${p.name}/${p.protocol}`)).toEqual(['sip-udp/UDP', 'sip-tcp/TCP', 'sip-replicas/UDP', 'metrics/TCP']);
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    const replicas = find<StatefulSet>(objects, 'StatefulSet', 'site-a-signaling');
    expect(replicas.spec?.replicas).toBe(3);
    expect(replicas.spec?.serviceName).toBe('site-a-signaling');
    expect(objects.some((o) => o.kind === 'Deployment' && o.metadata?.name === 'site-a-signaling')).toBe(false);
    const env = Object.fromEntries((replicas.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      HUDDLE_SIP_LISTEN: 'udp:0.0.0.0:5070,tcp:0.0.0.0:5070',
      HUDDLE_SIP_EDGE: 'site-a-sip-edge-internal.telephony.svc.cluster.local:5071',
      HUDDLE_SIP_EDGE_CONTACT: 'site-a-sip.telephony.svc.cluster.local:5060',
      HUDDLE_SIP_REPLICA_HOST: '$(POD_NAME).site-a-signaling.telephony.svc.cluster.local',
    });
    // POD_NAME is defined before the variable that names it; the metrics listen address stays last.
    const names = replicas.spec!.template.spec!.containers[0]!.env!.map((e) => e.name);
    expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('HUDDLE_SIP_REPLICA_HOST'));
    expect(names.at(-1)).toBe('HUDDLE_METRICS_LISTEN');
    expect(find<PodDisruptionBudget>(objects, 'PodDisruptionBudget', 'site-a-signaling').spec?.maxUnavailable).toBe(1);
    expect(find<PodDisruptionBudget>(objects, 'PodDisruptionBudget', 'site-a-edge').spec?.maxUnavailable).toBe(1);
  });

  it("keeps the site's SIP address on the edge (UDP and TCP), with a Service for the replicas and one DNS name per replica", () => {
    const sip = find<Service>(objects, 'Service', 'site-a-sip');
    expect(sip.spec?.selector?.['app.kubernetes.io/component']).toBe('edge');
    expect(sip.spec?.sessionAffinity).toBe('ClientIP');
    expect(sip.spec?.ports?.map((p) => `${p.protocol}/${p.port}`)).toEqual(['UDP/5060', 'TCP/5060']);
    const internal = find<Service>(objects, 'Service', 'site-a-sip-edge-internal');
    expect(internal.spec?.ports?.map((p) => `${p.protocol}/${p.port}`)).toEqual(['UDP/5071']);
    const headless = find<Service>(objects, 'Service', 'site-a-signaling');
    expect(headless.spec?.clusterIP).toBe('None');
    expect(headless.spec?.publishNotReadyAddresses).toBe(true);
    const edgePolicy = find<NetworkPolicy>(objects, 'NetworkPolicy', 'site-a-edge');
    const internalRule = edgePolicy.spec?.ingress?.find((r) => r.ports?.some((p) => p.port === 5071));
    expect(internalRule?.from).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'site-a', 'app.kubernetes.io/component': 'signaling' } } }]);
    const signalingPolicy = find<NetworkPolicy>(objects, 'NetworkPolicy', 'site-a-signaling');
    expect(signalingPolicy.spec?.ingress?.[0]?.ports?.map((p) => p.port)).toEqual([5070, 5070]);
    expect(signalingPolicy.spec?.ingress?.[0]?.from?.map((f) => f.podSelector?.matchLabels?.['app.kubernetes.io/component'])).toEqual(['edge', 'signaling']);
  });

  it('lists every replica by its stable name in the dispatcher list, and kamailio 5.6 accepts the rendered script', () => {
    const files = find<ConfigMap>(objects, 'ConfigMap', 'site-a-sip-edge').data!;
    expect(files['dispatcher.list']!.trim().split('\n').slice(1)).toEqual([0, 1, 2].map((i) => `1 sip:site-a-signaling-${i}.site-a-signaling.telephony.svc.cluster.local:5070 16 0 name=site-a-signaling-${i}`));
    const cfg = files['kamailio.cfg']!;
    expect(cfg).toContain('listen=udp:eth0:5060 name "public-udp"');
    expect(cfg).toContain('listen=udp:eth0:5071 advertise site-a-sip-edge-internal.telephony.svc.cluster.local:5071 name "replicas"');
    expect(cfg).toContain('modparam("dispatcher", "ds_ping_interval", 1)');
    // kamailio -c exits non-zero (execFileSync throws) on any error in the script.
    expect(kamailioAccepts(cfg, files['dispatcher.list']!)).toContain('name replicas');
    // A change of the files rolls the edge pods.
    const more = planCluster(testCluster('site-a', 'telephony', { sip: { replicas: 4 } }), [], settings).objects;
    const hash = (objs: DesiredObject[]) => find<Deployment>(objs, 'Deployment', 'site-a-sip-edge').spec!.template.metadata!.annotations!['sip.huddle.dev/env-hash'];
    expect(hash(more)).not.toBe(hash(objects));
  });

  it('serves TLS at the edge when spec.sip.tls names a Secret', () => {
    const tls = planCluster(testCluster('site-a', 'telephony', { sip: { replicas: 2, tls: { secret: 'sip-cert' } } }), [], settings).objects;
    const edge = find<Deployment>(tls, 'Deployment', 'site-a-sip-edge');
    expect(edge.spec!.template.spec!.volumes?.find((v) => v.name === 'sip-tls')?.secret?.secretName).toBe('sip-cert');
    expect(edge.spec!.template.spec!.containers[0]!.ports?.map((p) => p.name)).toContain('sip-tls');
    const files = find<ConfigMap>(tls, 'ConfigMap', 'site-a-sip-edge').data!;
    expect(files['kamailio.cfg']).toContain('loadmodule "tls.so"');
    expect(files['kamailio.cfg']).toContain('listen=tls:eth0:5061 name "public-tls"');
    expect(files['tls.cfg']).toContain('certificate = /etc/huddle/sip-tls/tls.crt');
    expect(find<Service>(tls, 'Service', 'site-a-sip').spec?.ports?.map((p) => `${p.protocol}/${p.port}`)).toEqual(['UDP/5060', 'TCP/5060', 'TCP/5061']);
  });

  it('serves SIP over WebSocket at the edge (websocket module, upgrade on the ws ports only), ws and wss on Service ports of their own', () => {
    const listen = [
      { transport: 'udp', host: '0.0.0.0', port: 5060 },
      { transport: 'tcp', host: '0.0.0.0', port: 5060 },
      { transport: 'ws', host: '0.0.0.0', port: 8080 },
    ];
    const ws = planCluster(testCluster('site-a', 'telephony', { sip: { replicas: 2, listen } }), [], settings).objects;
    const files = find<ConfigMap>(ws, 'ConfigMap', 'site-a-sip-edge').data!;
    const cfg = files['kamailio.cfg']!;
    expect(cfg).toContain('loadmodule "websocket.so"');
    expect(cfg).toContain('listen=tcp:eth0:8080 name "public-ws"');
    expect(cfg).toContain('if ($Rp == 8080) {');
    expect(cfg).toContain('ws_handle_handshake()');
    expect(kamailioAccepts(cfg, files['dispatcher.list']!)).toContain('name public-ws');
    expect(find<Service>(ws, 'Service', 'site-a-sip').spec?.ports?.map((p) => `${p.name} ${p.protocol}/${p.port}`)).toEqual(['sip-udp UDP/5060', 'sip-tcp TCP/5060', 'sip-ws TCP/8080']);
    expect(find<Deployment>(ws, 'Deployment', 'site-a-sip-edge').spec!.template.spec!.containers[0]!.ports?.map((p) => p.name)).toContain('sip-ws');

    const wss = planCluster(testCluster('site-a', 'telephony', { sip: { replicas: 2, listen: [...listen.slice(0, 2), { transport: 'wss', host: '0.0.0.0', port: 8443 }], tls: { secret: 'sip-cert' } } }), [], settings).objects;
    const wssFiles = find<ConfigMap>(wss, 'ConfigMap', 'site-a-sip-edge').data!;
    expect(wssFiles['kamailio.cfg']).toContain('listen=tls:eth0:8443 name "public-wss"');
    expect(wssFiles['kamailio.cfg']).toContain('loadmodule "tls.so"');
    expect(wssFiles['tls.cfg']).toContain('certificate = /etc/huddle/sip-tls/tls.crt');
    expect(find<Service>(wss, 'Service', 'site-a-sip').spec?.ports?.map((p) => `${p.protocol}/${p.port}`)).toEqual(['UDP/5060', 'TCP/5060', 'TCP/8443', 'TCP/5061']);
  });

  it('renders no edge for one replica: signaling stays a Deployment facing phones itself', () => {
    const single = planCluster(testCluster('site-a', 'telephony'), [], settings).objects;
    expect(single.some((o) => o.metadata?.name?.includes('sip-edge'))).toBe(false);
    expect(find<Deployment>(single, 'Deployment', 'site-a-signaling').spec?.strategy?.type).toBe('Recreate');
    expect(find<Service>(single, 'Service', 'site-a-sip').spec?.selector?.['app.kubernetes.io/component']).toBe('signaling');
  });
});
