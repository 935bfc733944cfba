/**
 * The SIP edge on Kubernetes (issue 16 point 3): Kamailio pods in front of the signaling replicas,
 * rendered when spec.sip.replicas > 1 or spec.sip.edge.enabled. The edge is stateless: any of its
 * pods routes any message (the replica of a dialog travels in the Record-Route), so it is a plain
 * Deployment behind the site's SIP Service.
 *
 * The dispatcher list needs one stable name per signaling replica: signaling runs as a StatefulSet
 * with a headless Service (<site>-signaling-<i>.<site>-signaling.<ns>.svc), which kamailio resolves
 * when it sends (a replica not created yet is just inactive). Both Services in front of the edge
 * keep a client on one edge pod (sessionAffinity ClientIP), so the transactions of a phone, or of a
 * replica, stay on the pod that holds them; a dialog survives an edge pod's loss.
 */
import { createHash } from 'node:crypto';
import type { Container } from 'kubernetes-types/core/v1.js';
import { dispatcherList, kamailioConfig, tlsConfig, type EdgeListen } from '../common/edge/kamailio-config.js';
import { SIP_TLS_DIR, sipListenAddresses } from '../common/config/schema.js';
import type { SipClusterResource } from './resources.js';

/** Where the edge image keeps kamailio's modules (Debian's kamailio package on amd64). */
export const EDGE_MODULES_DIR = '/usr/lib/x86_64-linux-gnu/kamailio/modules';
/** The edge's socket for the replicas (UDP), apart from the one phones use. */
export const EDGE_INTERNAL_PORT = 5071;
const EDGE_CONFIG_DIR = '/etc/huddle/edge';

export interface EdgeNames {
  namespace: string;
  /** <site>-sip-edge: Deployment, ConfigMap, PodDisruptionBudget. */
  edge: string;
  /** <site>-sip-edge-internal: the Service replicas send to. */
  internal: string;
  /** <site>-signaling: the StatefulSet and its headless Service. */
  signaling: string;
}

function fqdn(service: string, namespace: string): string {
  return `${service}.${namespace}.svc.cluster.local`;
}

/** The dispatcher list: one entry per signaling replica, by its StatefulSet pod name. */
export function edgeReplicas(cluster: SipClusterResource, names: EdgeNames): { name: string; host: string; port: number }[] {
  const { replicas, edge } = cluster.spec.sip;
  return Array.from({ length: replicas }, (_, i) => ({ name: `${names.signaling}-${i}`, host: `${names.signaling}-${i}.${fqdn(names.signaling, names.namespace)}`, port: edge.replicaPort }));
}

/**
 * The token the edge puts in its source header and the replicas check (HUDDLE_SIP_EDGE_TOKEN):
 * derived from the SipCluster's uid, which nobody on the network can learn, and stable across
 * reconciles so that pods are not restarted for it.
 */
export function edgeSourceToken(cluster: SipClusterResource): string {
  const { uid = '', namespace = '', name } = cluster.metadata;
  return createHash('sha256').update(`huddle-sip-edge-source\u0000${uid}\u0000${namespace}/${name}`).digest('base64url');
}

/** The kamailio.cfg, dispatcher list and TLS settings, in the edge's ConfigMap. */
export function edgeFiles(cluster: SipClusterResource, names: EdgeNames): Record<string, string> {
  const sip = cluster.spec.sip;
  const advertise = sip.advertisedHost;
  const listen: EdgeListen[] = sipListenAddresses(sip).map((l) => ({
    transport: l.transport,
    host: 'eth0',
    port: l.port,
    ...(advertise ? { advertise: `${advertise}:${l.transport === 'udp' || l.transport === 'tcp' ? sip.service.port : l.port}` } : {}),
  }));
  const tls = listen.some((l) => l.transport === 'tls' || l.transport === 'wss');
  const rate = sip.rateLimit;
  return {
    'kamailio.cfg': kamailioConfig({
      listen,
      sourceToken: edgeSourceToken(cluster),
      internal: { host: 'eth0', port: EDGE_INTERNAL_PORT, advertise: `${fqdn(names.internal, names.namespace)}:${EDGE_INTERNAL_PORT}` },
      metrics: { host: '0.0.0.0', port: sip.edge.metricsPort },
      dispatcherFile: `${EDGE_CONFIG_DIR}/dispatcher.list`,
      probeIntervalSeconds: sip.edge.probeIntervalSeconds,
      modulesDir: EDGE_MODULES_DIR,
      ...(rate.enabled ? { rateLimit: rate } : {}),
      ...(tls ? { tls: { certFile: `${SIP_TLS_DIR}/tls.crt`, keyFile: `${SIP_TLS_DIR}/tls.key`, configFile: `${EDGE_CONFIG_DIR}/tls.cfg` } } : {}),
    }),
    // Flag 16: no DNS lookup when the list loads; a replica not created yet stays in the list, inactive.
    'dispatcher.list': dispatcherList(edgeReplicas(cluster, names)).replace(/ 0 0 name=/g, ' 16 0 name='),
    ...(tls ? { 'tls.cfg': tlsConfig({ certFile: `${SIP_TLS_DIR}/tls.crt`, keyFile: `${SIP_TLS_DIR}/tls.key` }) } : {}),
  };
}

export function edgeConfigHash(files: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16);
}

/** The edge container: kamailio in the foreground, its configuration from the ConfigMap. */
export function edgeContainer(cluster: SipClusterResource, ports: Container['ports']): Container {
  const { metricsPort } = cluster.spec.sip.edge;
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({ httpGet: { path, port: 'metrics' }, periodSeconds, failureThreshold, timeoutSeconds: 2 });
  return {
    name: 'kamailio',
    image: cluster.spec.sip.edge.image,
    command: ['kamailio'],
    args: ['-f', `${EDGE_CONFIG_DIR}/kamailio.cfg`, '-DD', '-E', '-e', '-Y', '/tmp', '-m', '64', '-M', '8'],
    ports: [
      ...(ports ?? []),
      { name: 'sip-replicas', containerPort: EDGE_INTERNAL_PORT, protocol: 'UDP' },
      { name: 'metrics', containerPort: metricsPort, protocol: 'TCP' },
    ],
    readinessProbe: probe('/readyz', 5, 2),
    livenessProbe: probe('/healthz', 10, 3),
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'edge-config', mountPath: EDGE_CONFIG_DIR, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
}

