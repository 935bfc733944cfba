/**
 * The operator's entry point (one container of the huddle-operator Deployment): in-cluster
 * kubeconfig, NATS URL from the environment, /metrics /healthz /readyz, SIGTERM drain.
 *
 * Environment: HUDDLE_NATS_URL (default NATS for clusters without spec.nats.url), the operator's
 * own NATS user HUDDLE_NATS_USER + HUDDLE_NATS_PASSWORD_FILE (or HUDDLE_NATS_CREDS) and TLS files
 * HUDDLE_NATS_CA / HUDDLE_NATS_CERT / HUDDLE_NATS_KEY (common/nats/connect.ts),
 * POD_NAME / POD_NAMESPACE (Lease identity and namespace, from the downward API),
 * WATCH_NAMESPACE (comma-separated namespaces; all when empty), HUDDLE_SERVICE_MONITOR ("true"
 * renders ServiceMonitors), HUDDLE_REQUIRE_SECRET_REFS ("true": every SipCluster refuses inline
 * passwords and tokens), HUDDLE_NATS_REPLICAS (spec.nats.replicas published for SipClusters that
 * leave it unset: "3" with the chart's nats.cluster), HUDDLE_METRICS_LISTEN (default 0.0.0.0:9464), LOG_LEVEL.
 */
import os from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { newRegistry, startOpsServer } from '../common/process/http.js';
import { stopOnSignals } from '../common/process/lifecycle.js';
import { natsClientFromEnv } from '../common/nats/connect.js';
import { createLogger } from '../common/process/logger.js';
import { NatsConfigStore } from './config-store.js';
import { Controller } from './controller.js';

const env = process.env;
const log = createLogger('operator');

async function main(): Promise<void> {
  const natsUrl = env.HUDDLE_NATS_URL;
  if (!natsUrl) throw new Error('HUDDLE_NATS_URL is required (the NATS the SipClusters use unless their spec.nats.url says otherwise)');
  const kc = new KubeConfig();
  if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  const registry = newRegistry('operator');
  const ops = await startOpsServer(env.HUDDLE_METRICS_LISTEN ?? '0.0.0.0:9464', registry);
  const store = new NatsConfigStore(log, natsClientFromEnv(env, 'config-publisher'));
  const watchNamespaces = (env.WATCH_NAMESPACE ?? '')
    .split(',')
    .map((ns) => ns.trim())
    .filter(Boolean);
  const controller = new Controller({
    kubeConfig: kc,
    settings: {
      defaultNatsUrl: natsUrl,
      serviceMonitor: env.HUDDLE_SERVICE_MONITOR === 'true',
      requireSecretRefs: env.HUDDLE_REQUIRE_SECRET_REFS === 'true',
      ...(env.HUDDLE_NATS_REPLICAS ? { defaultNatsReplicas: Number(env.HUDDLE_NATS_REPLICAS) } : {}),
    },
    configStore: store,
    registry,
    log,
    identity: env.POD_NAME ?? `${os.hostname()}-${process.pid}`,
    leaseNamespace: env.POD_NAMESPACE ?? 'default',
    watchNamespaces,
  });
  ops.addReadiness('controller', () => controller.readiness());
  controller.start();
  log.info({ metrics: ops.url, natsUrl, watchNamespaces: watchNamespaces.length > 0 ? watchNamespaces : '(all)' }, 'operator started');
  stopOnSignals(async () => {
    // Give the Lease up first so a standby replica takes over without waiting for it to expire.
    await controller.stop();
    await store.close();
    await ops.close();
  }, log);
}

main().catch((err: unknown) => {
  log.error({ err: (err as Error).stack }, 'operator failed to start');
  process.exit(1);
});
