/**
 * The desired state of one SipCluster as a pure function: SipCluster (+ its SipDNs) in, the
 * Kubernetes objects that run it out. Typed with kubernetes-types so a misspelled field fails
 * to compile.
 *
 * What goes into a pod template is only what needs a restart to take effect (images, replicas,
 * ports, NATS connection, music volume). TServer options and DNs reach the running processes
 * through the NATS KV config bucket, so editing them never rolls a Deployment. The exception is a
 * Secret named by a SipDN password for the first time: signaling reads passwords from files, so the
 * Secret must be mounted (a new key in an already mounted Secret arrives without a restart).
 *
 * Network posture: an ingress NetworkPolicy per component. Media pods use the host network, where
 * most CNIs do not enforce NetworkPolicy: there rtpengine's ng and CLI listen on the node's loopback
 * only and media-controller's metrics on the node address, never 0.0.0.0.
 */
import { createHash } from 'node:crypto';
import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, Container, EnvVar, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, Volume, VolumeMount } from 'kubernetes-types/core/v1.js';
import type { OwnerReference } from 'kubernetes-types/meta/v1.js';
import type { NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer } from 'kubernetes-types/networking/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { edgeEnabled, GATEWAY_TLS_DIR, SIP_TLS_DIR, sipListenAddresses } from '../common/config/schema.js';
import { parseHostPort } from '../common/process/http.js';
import { edgeConfigHash, edgeContainer, edgeFiles, edgeSourceToken, EDGE_INTERNAL_PORT, type EdgeNames } from './edge.js';
import { API_GROUP, API_GROUP_VERSION, type SipClusterResource } from './resources.js';

export interface OperatorSettings {
  /** NATS URL used when a SipCluster has no spec.nats.url (the operator's own NATS). */
  defaultNatsUrl: string;
  /** Render a ServiceMonitor (needs the prometheus-operator CRDs in the cluster). */
  serviceMonitor: boolean;
  /** Every SipCluster is treated as having spec.security.requireSecretRefs (the chart's policy). */
  requireSecretRefs?: boolean;
  /** spec.nats.replicas published for SipClusters that do not set it (3 with the chart's nats.cluster). */
  defaultNatsReplicas?: number;
}

export type DesiredObject = ConfigMap | Service | Deployment | StatefulSet | PodDisruptionBudget | NetworkPolicy | IServiceMonitor;

/** Every kind desiredObjects can render: what a reconcile lists to prune what is no longer desired. */
export const MANAGED_KINDS = [
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
  { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor' },
] as const;

/** Entry points inside the platform image: its ENTRYPOINT is node, the pod gives the script as args (see images/huddle/Containerfile). */
export const ENTRY_POINTS = {
  signaling: 'dist/bin/signaling.js',
  'media-controller': 'dist/bin/media-controller.js',
  gateway: 'dist/bin/tlib-gateway.js',
} as const;

export const METRICS_PORT = 9464;
/** media-controller's metrics port: media pods use the host network, beside whatever else runs there. */
export const MEDIA_METRICS_PORT = 9465;
// The node's loopback (media pods use the host network): only processes on the node reach these,
// never other pods. rtpengine has no Unix-socket listener; ng and CLI have no authentication.
export const RTPENGINE_NG = '127.0.0.1:2223';
export const RTPENGINE_CLI = '127.0.0.1:9900';
const MUSIC_ROOT = '/etc/huddle';
/** Where signaling reads a SipDN password.secretKeyRef: <dir>/<secret name>/<key> (signaling/component.ts, HUDDLE_SECRETS_DIR). */
export const SECRETS_DIR = '/etc/huddle/secrets';
/** The platform image's user (node, uid 1000). */
const RUN_AS = 1000;

export type Component = 'signaling' | 'media' | 'gateway' | 'edge';

export function labelsFor(cluster: SipClusterResource, component?: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'huddle',
    'app.kubernetes.io/instance': cluster.metadata.name,
    'app.kubernetes.io/managed-by': 'huddle-operator',
    ...(component ? { 'app.kubernetes.io/component': component } : {}),
  };
}

function selectorFor(cluster: SipClusterResource, component: Component): Record<string, string> {
  return { 'app.kubernetes.io/instance': cluster.metadata.name, 'app.kubernetes.io/component': component };
}

export function ownerReference(cluster: SipClusterResource): OwnerReference {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'SipCluster',
    name: cluster.metadata.name,
    uid: cluster.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function objectName(cluster: SipClusterResource, suffix: string): string {
  return `${cluster.metadata.name}-${suffix}`;
}

function meta(cluster: SipClusterResource, suffix: string, component?: Component, extraLabels: Record<string, string> = {}) {
  return {
    name: objectName(cluster, suffix),
    namespace: cluster.metadata.namespace,
    labels: { ...labelsFor(cluster, component), ...extraLabels },
    ownerReferences: [ownerReference(cluster)],
  };
}

function envConfigMap(cluster: SipClusterResource, settings: OperatorSettings): ConfigMap {
  const spec = cluster.spec;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(cluster, 'env'),
    data: {
      HUDDLE_NATS_URL: spec.nats.url ?? settings.defaultNatsUrl,
      HUDDLE_CLUSTER: cluster.metadata.name,
      HUDDLE_CONFIG_BUCKET: spec.nats.configBucket,
      HUDDLE_MUSIC_ROOT: MUSIC_ROOT,
      ...(spec.nats.credentialsSecret ? { HUDDLE_NATS_CREDS: '/etc/huddle/nats/creds' } : {}),
    },
  };
}

const containerSecurity = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

function httpProbe(path: string, port: string, periodSeconds: number, failureThreshold: number): Probe {
  return { httpGet: { path, port }, periodSeconds, failureThreshold, timeoutSeconds: 2 };
}

function volumesFor(cluster: SipClusterResource, component: Component): { volumes: Volume[]; mounts: VolumeMount[] } {
  const { music, nats } = cluster.spec;
  const volumes: Volume[] = [{ name: 'tmp', emptyDir: {} }];
  const mounts: VolumeMount[] = [{ name: 'tmp', mountPath: '/tmp' }];
  if (music.configMap) volumes.push({ name: 'music', configMap: { name: music.configMap } });
  else if (music.persistentVolumeClaim) volumes.push({ name: 'music', persistentVolumeClaim: { claimName: music.persistentVolumeClaim, readOnly: true } });
  if (music.configMap || music.persistentVolumeClaim) mounts.push({ name: 'music', mountPath: `${MUSIC_ROOT}/music`, readOnly: true });
  if (nats.credentialsSecret) {
    volumes.push({ name: 'nats-creds', secret: { secretName: nats.credentialsSecret, items: [{ key: 'creds', path: 'creds' }] } });
    mounts.push({ name: 'nats-creds', mountPath: '/etc/huddle/nats', readOnly: true });
  }
  const userKey = NATS_USER_OF[component];
  const user = userKey ? nats.users?.[userKey] : undefined;
  if (user) {
    volumes.push({ name: 'nats-user', secret: { secretName: user, items: [{ key: 'password', path: 'password' }] } });
    mounts.push({ name: 'nats-user', mountPath: NATS_USER_DIR, readOnly: true });
  }
  if (nats.tls?.caSecret) {
    volumes.push({ name: 'nats-ca', secret: { secretName: nats.tls.caSecret, items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    mounts.push({ name: 'nats-ca', mountPath: NATS_CA_DIR, readOnly: true });
  }
  if (nats.tls?.clientSecret) {
    volumes.push({ name: 'nats-client-cert', secret: { secretName: nats.tls.clientSecret } });
    mounts.push({ name: 'nats-client-cert', mountPath: NATS_CLIENT_CERT_DIR, readOnly: true });
  }
  return { volumes, mounts };
}

/** Which of spec.nats.users a workload connects as. */
const NATS_USER_OF = { signaling: 'signaling', media: 'mediaController', gateway: 'gateway', edge: undefined } as const;
const NATS_USER_DIR = '/etc/huddle/nats-user';
const NATS_CA_DIR = '/etc/huddle/nats-ca';
const NATS_CLIENT_CERT_DIR = '/etc/huddle/nats-client';

/** A workload's own NATS user (its Secret's "user"; the password as a file) and the TLS files, as common/nats/connect.ts reads them. */
function natsEnv(cluster: SipClusterResource, component: Component): EnvVar[] {
  const { users, tls } = cluster.spec.nats;
  const userKey = NATS_USER_OF[component];
  const user = userKey ? users?.[userKey] : undefined;
  return [
    ...(user
      ? [
          { name: 'HUDDLE_NATS_USER', valueFrom: { secretKeyRef: { name: user, key: 'user' } } },
          { name: 'HUDDLE_NATS_PASSWORD_FILE', value: `${NATS_USER_DIR}/password` },
        ]
      : []),
    ...(tls?.caSecret ? [{ name: 'HUDDLE_NATS_CA', value: `${NATS_CA_DIR}/ca.crt` }] : []),
    ...(tls?.clientSecret
      ? [
          { name: 'HUDDLE_NATS_CERT', value: `${NATS_CLIENT_CERT_DIR}/tls.crt` },
          { name: 'HUDDLE_NATS_KEY', value: `${NATS_CLIENT_CERT_DIR}/tls.key` },
        ]
      : []),
  ];
}

function platformContainer(
  cluster: SipClusterResource,
  name: keyof typeof ENTRY_POINTS,
  opts: { ports: Container['ports']; metricsPort: number; metricsHost?: string; env?: EnvVar[]; mounts: VolumeMount[]; resources: Container['resources'] },
): Container {
  return {
    name,
    image: cluster.spec.image,
    args: [ENTRY_POINTS[name]],
    envFrom: [{ configMapRef: { name: objectName(cluster, 'env') } }],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      ...natsEnv(cluster, name === 'media-controller' ? 'media' : name),
      ...(opts.env ?? []),
      // Last, so that metricsHost may name a variable defined above ($(POD_IP)).
      { name: 'HUDDLE_METRICS_LISTEN', value: `${opts.metricsHost ?? '0.0.0.0'}:${opts.metricsPort}` },
    ],
    ports: [...(opts.ports ?? []), { name: 'metrics', containerPort: opts.metricsPort, protocol: 'TCP' }],
    readinessProbe: httpProbe('/readyz', 'metrics', 5, 2),
    livenessProbe: httpProbe('/healthz', 'metrics', 10, 3),
    startupProbe: httpProbe('/healthz', 'metrics', 2, 30),
    resources: opts.resources,
    securityContext: containerSecurity,
    volumeMounts: opts.mounts,
  };
}

function podTemplate(cluster: SipClusterResource, component: Component, configHash: string, spec: PodSpec): PodTemplateSpec {
  return {
    metadata: {
      labels: labelsFor(cluster, component),
      // Changing the connection settings (env ConfigMap) must restart pods; options and DNs must not.
      annotations: { [`${API_GROUP}/env-hash`]: configHash },
    },
    spec: {
      // No platform process calls the Kubernetes API: a mounted token would only serve an intruder.
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: RUN_AS, runAsGroup: RUN_AS, fsGroup: RUN_AS, seccompProfile: { type: 'RuntimeDefault' } },
      terminationGracePeriodSeconds: 30,
      ...spec,
    },
  };
}

/** SIP ports of the pod and the Service: udp/tcp on spec.sip.service.port, TLS, ws and wss each on its own listen port. */
function sipPorts(cluster: SipClusterResource) {
  return sipListenAddresses(cluster.spec.sip).map((l) => ({
    name: `sip-${l.transport}`,
    port: l.port,
    servicePort: l.transport === 'udp' || l.transport === 'tcp' ? cluster.spec.sip.service.port : l.port,
    protocol: l.transport === 'udp' ? ('UDP' as const) : ('TCP' as const),
  }));
}

/**
 * A TLS Secret (tls.crt, tls.key; cert-manager writes one per Certificate) mounted whole at `dir`:
 * no subPath, so the kubelet swaps in a renewed certificate and the process re-reads it.
 */
function tlsVolume(name: string, secretName: string | undefined, dir: string): { volumes: Volume[]; mounts: VolumeMount[] } {
  if (!secretName) return { volumes: [], mounts: [] };
  return {
    volumes: [{ name, secret: { secretName, items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] } }],
    mounts: [{ name, mountPath: dir, readOnly: true }],
  };
}

/** Volume name of a mounted password Secret: stable and a valid DNS label whatever the Secret is called. */
function passwordVolumeName(secret: string): string {
  return `password-${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
}

/**
 * Each Secret named by a SipDN password.secretKeyRef, mounted whole at <SECRETS_DIR>/<name>: a key
 * added to it later reaches signaling without a restart (the kubelet refreshes the volume). Optional,
 * so a missing Secret fails only the DNs that use it, not the signaling pod.
 */
function passwordVolumes(secrets: readonly string[]): { volumes: Volume[]; mounts: VolumeMount[] } {
  const names = [...new Set(secrets)].sort();
  return {
    volumes: names.map((secretName) => ({ name: passwordVolumeName(secretName), secret: { secretName, optional: true } })),
    mounts: names.map((secretName) => ({ name: passwordVolumeName(secretName), mountPath: `${SECRETS_DIR}/${secretName}`, readOnly: true })),
  };
}

function edgeNames(cluster: SipClusterResource): EdgeNames {
  return { namespace: cluster.metadata.namespace ?? 'default', edge: objectName(cluster, 'sip-edge'), internal: objectName(cluster, 'sip-edge-internal'), signaling: objectName(cluster, 'signaling') };
}

/**
 * Behind the SIP edge: each replica listens on spec.sip.edge.replicaPort, names the edge in its
 * Contact and its own stable name (the edge's replica list has it) in Via.
 */
function replicaEnv(cluster: SipClusterResource): EnvVar[] {
  const names = edgeNames(cluster);
  const { sip } = cluster.spec;
  const port = sip.edge.replicaPort;
  return [
    { name: 'HUDDLE_SIP_LISTEN', value: `udp:0.0.0.0:${port},tcp:0.0.0.0:${port}` },
    { name: 'HUDDLE_SIP_EDGE', value: `${names.internal}.${names.namespace}.svc.cluster.local:${EDGE_INTERNAL_PORT}` },
    { name: 'HUDDLE_SIP_EDGE_CONTACT', value: `${sip.advertisedHost ?? `${objectName(cluster, 'sip')}.${names.namespace}.svc.cluster.local`}:${sip.service.port}` },
    { name: 'HUDDLE_SIP_EDGE_TOKEN', value: edgeSourceToken(cluster) },
    { name: 'HUDDLE_SIP_REPLICA_HOST', value: `$(POD_NAME).${names.signaling}.${names.namespace}.svc.cluster.local` },
  ];
}

/** Signaling replicas behind the edge: a StatefulSet, so that each has the stable name the edge's list gives it. */
function signalingReplicas(cluster: SipClusterResource, hash: string, passwordSecrets: readonly string[]): StatefulSet {
  const single = signaling(cluster, hash, passwordSecrets);
  const template = single.spec!.template;
  const port = cluster.spec.sip.edge.replicaPort;
  const container = template.spec!.containers[0]!;
  const replica: Container = {
    ...container,
    ports: [
      { name: 'sip-udp', containerPort: port, protocol: 'UDP' },
      { name: 'sip-tcp', containerPort: port, protocol: 'TCP' },
      ...(container.ports ?? []).filter((p) => p.name === 'metrics'),
    ],
    // HUDDLE_METRICS_LISTEN stays last (see platformContainer).
    env: [...(container.env ?? []).slice(0, -1), ...replicaEnv(cluster), (container.env ?? []).at(-1)!],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: single.metadata!,
    spec: {
      serviceName: objectName(cluster, 'signaling'),
      replicas: cluster.spec.sip.replicas,
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate' },
      selector: single.spec!.selector,
      template: { ...template, spec: { ...template.spec!, containers: [replica] } },
    },
  };
}

/** The edge: kamailio pods in front of the replicas (operator/edge.ts). */
function edge(cluster: SipClusterResource, files: Record<string, string>): { configMap: ConfigMap; deployment: Deployment } {
  const names = edgeNames(cluster);
  const certificate = tlsVolume('sip-tls', cluster.spec.sip.tls?.secret, SIP_TLS_DIR);
  const container = edgeContainer(
    cluster,
    sipPorts(cluster).map((p) => ({ name: p.name, containerPort: p.port, protocol: p.protocol })),
  );
  container.volumeMounts = [...(container.volumeMounts ?? []), ...certificate.mounts];
  return {
    configMap: { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(cluster, 'sip-edge', 'edge'), data: files },
    deployment: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(cluster, 'sip-edge', 'edge'),
      spec: {
        replicas: cluster.spec.sip.edge.replicas,
        selector: { matchLabels: selectorFor(cluster, 'edge') },
        template: podTemplate(cluster, 'edge', edgeConfigHash(files), {
          volumes: [{ name: 'edge-config', configMap: { name: names.edge } }, { name: 'tmp', emptyDir: {} }, ...certificate.volumes],
          containers: [container],
        }),
      },
    },
  };
}

function signaling(cluster: SipClusterResource, hash: string, passwordSecrets: readonly string[]): Deployment {
  const common = volumesFor(cluster, 'signaling');
  const passwords = passwordVolumes(passwordSecrets);
  const certificate = tlsVolume('sip-tls', cluster.spec.sip.tls?.secret, SIP_TLS_DIR);
  const volumes = [...common.volumes, ...passwords.volumes, ...certificate.volumes];
  const mounts = [...common.mounts, ...passwords.mounts, ...certificate.mounts];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(cluster, 'signaling', 'signaling'),
    spec: {
      replicas: cluster.spec.sip.replicas,
      // One active signaling instance per site: never run an old and a new one side by side.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorFor(cluster, 'signaling') },
      template: podTemplate(cluster, 'signaling', hash, {
        volumes,
        containers: [
          platformContainer(cluster, 'signaling', {
            ports: sipPorts(cluster).map((p) => ({ name: p.name, containerPort: p.port, protocol: p.protocol })),
            metricsPort: METRICS_PORT,
            // Said explicitly: the mounts above and signaling's reads must agree on this directory.
            env: [{ name: 'HUDDLE_SECRETS_DIR', value: SECRETS_DIR }],
            mounts,
            resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
          }),
        ],
      }),
    },
  };
}

function media(cluster: SipClusterResource, hash: string): StatefulSet {
  const { volumes, mounts } = volumesFor(cluster, 'media');
  const { portMin, portMax, rtpengineImage, rtpengineThreads, replicas } = cluster.spec.media;
  const cliPort = parseHostPort(RTPENGINE_CLI).port;
  const rtpengine: Container = {
    name: 'rtpengine',
    image: rtpengineImage,
    command: ['rtpengine'],
    args: [
      '--config-file=none',
      '--foreground',
      '--table=-1',
      '--interface=$(POD_IP)',
      `--listen-ng=${RTPENGINE_NG}`,
      `--listen-cli=${RTPENGINE_CLI}`,
      `--port-min=${portMin}`,
      `--port-max=${portMax}`,
      '--log-stderr',
      '--log-level=5',
      '--delete-delay=0',
      ...(rtpengineThreads ? [`--num-threads=${rtpengineThreads}`] : []),
    ],
    env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
    // rtpengine speaks ng over UDP only; its CLI answering proves the daemon is serving.
    readinessProbe: { exec: { command: ['rtpengine-ctl', '-ip', '127.0.0.1', '-port', String(cliPort), 'list', 'numsessions'] }, periodSeconds: 5, timeoutSeconds: 2 },
    livenessProbe: { exec: { command: ['rtpengine-ctl', '-ip', '127.0.0.1', '-port', String(cliPort), 'list', 'numsessions'] }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    securityContext: containerSecurity,
    volumeMounts: mounts,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { ...meta(cluster, 'media', 'media'), annotations: { [`${API_GROUP}/rtp-ports`]: `${portMin}-${portMax}/udp` } },
    spec: {
      serviceName: objectName(cluster, 'media'),
      replicas,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selectorFor(cluster, 'media') },
      template: podTemplate(cluster, 'media', hash, {
        // RTP uses a port range per pod, which a Service cannot carry (an EndpointSlice holds at
        // most 100 ports): media pods take the node's network, one per node.
        hostNetwork: true,
        dnsPolicy: 'ClusterFirstWithHostNet',
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selectorFor(cluster, 'media') } }],
          },
        },
        volumes,
        containers: [
          rtpengine,
          platformContainer(cluster, 'media-controller', {
            ports: [],
            metricsPort: MEDIA_METRICS_PORT,
            // The node's address, not 0.0.0.0: a host-network pod's 0.0.0.0 includes every interface
            // of the node, public ones too. Probes and Prometheus reach it there.
            metricsHost: '$(POD_IP)',
            // The bridge binds RTP on the pod address, where the rtpengine beside it sends.
            env: [
              { name: 'HUDDLE_RTPENGINE', value: RTPENGINE_NG },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            ],
            mounts,
            resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
          }),
        ],
      }),
    },
  };
}

/** JWT keys from the Secrets named in spec.gateway.jwt, as tlib-api/gateway/auth.ts reads them. */
function jwtEnv(cluster: SipClusterResource): EnvVar[] {
  const jwt = cluster.spec.gateway.jwt;
  const env: EnvVar[] = [];
  if (jwt?.hs256Secret) env.push({ name: 'HUDDLE_GATEWAY_JWT_HS256_SECRET', valueFrom: { secretKeyRef: { name: jwt.hs256Secret.name, key: jwt.hs256Secret.key } } });
  if (jwt?.rs256PublicKey) env.push({ name: 'HUDDLE_GATEWAY_JWT_RS256_PUBLIC_KEY', valueFrom: { secretKeyRef: { name: jwt.rs256PublicKey.name, key: jwt.rs256PublicKey.key } } });
  return env;
}

/** Where a gateway pod finds the agent tokens of spec.gateway.tokensSecret (key "tokens.yaml"). */
export const GATEWAY_TOKENS_DIR = '/etc/huddle/gateway-tokens';

function gateway(cluster: SipClusterResource, hash: string): Deployment {
  const { volumes, mounts } = volumesFor(cluster, 'gateway');
  const env = jwtEnv(cluster);
  const tokensSecret = cluster.spec.gateway.tokensSecret;
  if (tokensSecret) {
    volumes.push({ name: 'agent-tokens', secret: { secretName: tokensSecret, items: [{ key: 'tokens.yaml', path: 'tokens.yaml' }] } });
    mounts.push({ name: 'agent-tokens', mountPath: GATEWAY_TOKENS_DIR, readOnly: true });
    env.push({ name: 'HUDDLE_GATEWAY_TOKENS_FILE', value: `${GATEWAY_TOKENS_DIR}/tokens.yaml` });
  }
  const certificate = tlsVolume('gateway-tls', cluster.spec.gateway.tls?.secret, GATEWAY_TLS_DIR);
  volumes.push(...certificate.volumes);
  mounts.push(...certificate.mounts);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(cluster, 'gateway', 'gateway'),
    spec: {
      replicas: cluster.spec.gateway.replicas,
      selector: { matchLabels: selectorFor(cluster, 'gateway') },
      template: podTemplate(cluster, 'gateway', hash, {
        volumes,
        containers: [
          platformContainer(cluster, 'gateway', {
            ports: [{ name: 'tlib', containerPort: parseHostPort(cluster.spec.gateway.listen).port, protocol: 'TCP' }],
            metricsPort: METRICS_PORT,
            env,
            mounts,
            resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          }),
        ],
      }),
    },
  };
}

function services(cluster: SipClusterResource): Service[] {
  const behindEdge = edgeEnabled(cluster.spec.sip);
  // Phones keep one address: with the edge, the site's SIP Service leads to the edge pods, and a
  // phone's packets stay on one edge pod (its transactions live there).
  const sip: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(cluster, 'sip', behindEdge ? 'edge' : 'signaling'),
    spec: {
      type: cluster.spec.sip.service.type,
      selector: selectorFor(cluster, behindEdge ? 'edge' : 'signaling'),
      ...(behindEdge ? { sessionAffinity: 'ClientIP' } : {}),
      ports: sipPorts(cluster).map((p): ServicePort => ({ name: p.name, protocol: p.protocol, port: p.servicePort, targetPort: p.name })),
    },
  };
  const tlib: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(cluster, 'gateway', 'gateway'),
    spec: { type: 'ClusterIP', selector: selectorFor(cluster, 'gateway'), ports: [{ name: 'tlib', protocol: 'TCP', port: parseHostPort(cluster.spec.gateway.listen).port, targetPort: 'tlib' }] },
  };
  const mediaHeadless: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(cluster, 'media', 'media'),
    spec: { clusterIP: 'None', selector: selectorFor(cluster, 'media'), ports: [{ name: 'metrics', protocol: 'TCP', port: MEDIA_METRICS_PORT, targetPort: 'metrics' }] },
  };
  // Every pod of the site names its metrics port "metrics": one headless Service reaches them all.
  const metrics: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(cluster, 'metrics', undefined, { [`${API_GROUP}/metrics`]: 'true' }),
    spec: {
      clusterIP: 'None',
      selector: { 'app.kubernetes.io/instance': cluster.metadata.name, 'app.kubernetes.io/managed-by': 'huddle-operator' },
      ports: [{ name: 'metrics', protocol: 'TCP', port: METRICS_PORT, targetPort: 'metrics' }],
    },
  };
  return [sip, tlib, mediaHeadless, metrics, ...(behindEdge ? edgeServices(cluster) : [])];
}

/** The edge's Service for the replicas, and the replicas' headless Service (one DNS name each). */
function edgeServices(cluster: SipClusterResource): Service[] {
  const port = cluster.spec.sip.edge.replicaPort;
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(cluster, 'sip-edge-internal', 'edge'),
      spec: {
        type: 'ClusterIP',
        selector: selectorFor(cluster, 'edge'),
        sessionAffinity: 'ClientIP',
        ports: [{ name: 'sip-replicas', protocol: 'UDP', port: EDGE_INTERNAL_PORT, targetPort: 'sip-replicas' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(cluster, 'signaling', 'signaling'),
      spec: {
        clusterIP: 'None',
        // A replica's name resolves before it is ready: the edge's OPTIONS probes decide, not DNS.
        publishNotReadyAddresses: true,
        selector: selectorFor(cluster, 'signaling'),
        ports: [
          { name: 'sip-udp', protocol: 'UDP', port, targetPort: 'sip-udp' },
          { name: 'sip-tcp', protocol: 'TCP', port, targetPort: 'sip-tcp' },
        ],
      },
    },
  ];
}

function networkPolicy(cluster: SipClusterResource, component: Component, ingress: NetworkPolicyIngressRule[]): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(cluster, component, component),
    spec: { podSelector: { matchLabels: selectorFor(cluster, component) }, policyTypes: ['Ingress'], ingress },
  };
}

/**
 * Ingress per component: SIP, RTP and T-Library from the CIDRs the spec lists (anywhere when it lists
 * none: phones, trunks and agents must reach the site) and from the site's own pods; metrics from the
 * monitoring namespaces only. Kubernetes always lets a node reach its own pods, so probes pass.
 * Nothing listens for NATS here (the platform is its client) and rtpengine's ng stays on loopback.
 */
function networkPolicies(cluster: SipClusterResource): NetworkPolicy[] {
  const { enabled, sipFrom, rtpFrom, tlibFrom, monitoringNamespaceLabels } = cluster.spec.networkPolicy;
  if (!enabled) return [];
  const site: NetworkPolicyPeer = { podSelector: { matchLabels: { 'app.kubernetes.io/instance': cluster.metadata.name, 'app.kubernetes.io/managed-by': 'huddle-operator' } } };
  const from = (cidrs: string[] | undefined): Pick<NetworkPolicyIngressRule, 'from'> => (cidrs ? { from: [...cidrs.map((cidr) => ({ ipBlock: { cidr } })), site] } : {});
  const metrics = (port: number): NetworkPolicyIngressRule => ({ from: [{ namespaceSelector: { matchLabels: monitoringNamespaceLabels } }], ports: [{ protocol: 'TCP', port }] });
  const { portMin, portMax } = cluster.spec.media;
  const publicSip = sipPorts(cluster).map((p) => ({ protocol: p.protocol, port: p.port }));
  // Behind the edge, a replica's SIP port is for the edge and the other replicas only, and the
  // edge's socket for replicas for the replicas only: they trust what arrives there.
  const peers = (component: Component): NetworkPolicyPeer => ({ podSelector: { matchLabels: selectorFor(cluster, component) } });
  const replicaPort = cluster.spec.sip.edge.replicaPort;
  const signalingSip: NetworkPolicyIngressRule = edgeEnabled(cluster.spec.sip)
    ? { from: [peers('edge'), peers('signaling')], ports: [{ protocol: 'UDP', port: replicaPort }, { protocol: 'TCP', port: replicaPort }] }
    : { ...from(sipFrom), ports: publicSip };
  const edgePolicy = edgeEnabled(cluster.spec.sip)
    ? [
        networkPolicy(cluster, 'edge', [
          { ...from(sipFrom), ports: publicSip },
          { from: [peers('signaling')], ports: [{ protocol: 'UDP', port: EDGE_INTERNAL_PORT }] },
          metrics(cluster.spec.sip.edge.metricsPort),
        ]),
      ]
    : [];
  return [
    networkPolicy(cluster, 'signaling', [signalingSip, metrics(METRICS_PORT)]),
    ...edgePolicy,
    // Declares the intent; on the host network most CNIs do not enforce it (see the top of this file).
    networkPolicy(cluster, 'media', [{ ...from(rtpFrom), ports: [{ protocol: 'UDP', port: portMin, endPort: portMax }] }, metrics(MEDIA_METRICS_PORT)]),
    networkPolicy(cluster, 'gateway', [{ ...from(tlibFrom), ports: [{ protocol: 'TCP', port: parseHostPort(cluster.spec.gateway.listen).port }] }, metrics(METRICS_PORT)]),
  ];
}

function pdb(cluster: SipClusterResource, component: Component): PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(cluster, component, component),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorFor(cluster, component) } },
  };
}

function serviceMonitor(cluster: SipClusterResource): IServiceMonitor {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: meta(cluster, 'metrics'),
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/instance': cluster.metadata.name, [`${API_GROUP}/metrics`]: 'true' } },
      endpoints: [
        {
          port: 'metrics',
          path: '/metrics',
          interval: '15s',
          // `up{huddle_component="signaling"}` tells which part of the site a target is (alerts, dashboard).
          relabelings: [{ sourceLabels: ['__meta_kubernetes_pod_label_app_kubernetes_io_component'], targetLabel: 'huddle_component' }],
        },
      ],
    },
  };
}

/** Hash of the env ConfigMap's data: part of pod templates so connection changes restart pods. */
export function configHash(cm: ConfigMap): string {
  return createHash('sha256').update(JSON.stringify(cm.data ?? {})).digest('hex').slice(0, 16);
}

/**
 * Every object the SipCluster owns, in the order they should be applied (NetworkPolicies before the
 * pods they protect). `passwordSecrets`: the Secrets its accepted SipDNs name in password.secretKeyRef.
 */
export function desiredObjects(cluster: SipClusterResource, settings: OperatorSettings, passwordSecrets: readonly string[]): DesiredObject[] {
  const env = envConfigMap(cluster, settings);
  const hash = configHash(env);
  const sipEdge = edgeEnabled(cluster.spec.sip) ? edge(cluster, edgeFiles(cluster, edgeNames(cluster))) : undefined;
  return [
    env,
    ...(sipEdge ? [sipEdge.configMap] : []),
    ...services(cluster),
    ...networkPolicies(cluster),
    sipEdge ? signalingReplicas(cluster, hash, passwordSecrets) : signaling(cluster, hash, passwordSecrets),
    ...(sipEdge ? [sipEdge.deployment] : []),
    media(cluster, hash),
    gateway(cluster, hash),
    pdb(cluster, 'signaling'),
    ...(sipEdge ? [pdb(cluster, 'edge')] : []),
    pdb(cluster, 'media'),
    pdb(cluster, 'gateway'),
    ...(settings.serviceMonitor ? [serviceMonitor(cluster)] : []),
  ];
}
