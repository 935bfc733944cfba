/**
 * A real nats-server, the config bucket holding config/local.yaml, a gateway on a free port and
 * the contract responder standing in for signaling. Always `await h.stop()` in afterAll.
 */
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { loadConfigFile } from '../../common/config/load.js';
import type { SipCluster } from '../../common/config/schema.js';
import { LiveConfig, openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import type { ComponentContext } from '../../common/process/component.js';
import { createLogger } from '../../common/process/logger.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../tlib-api/gateway/gateway.js';
import { startTestNats, type TestNats } from '../support/infra.js';
import { ContractSignaling } from './contract-signaling.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface TlibHarness {
  nats: TestNats;
  nc: NatsConnection;
  config: LiveConfig;
  cluster: SipCluster;
  signaling: ContractSignaling;
  gateway: Gateway;
  registry: Registry;
  location: string;
  /** Publishes a changed cluster document (e.g. other tokens) to the config bucket. */
  updateCluster(change: (cluster: SipCluster) => void): Promise<void>;
  /** A second gateway replica on the same NATS (its own registry). */
  startReplica(instance: string, options?: GatewayOptions): Promise<Gateway & { registry: Registry }>;
  stop(): Promise<void>;
}

export async function startTlibHarness(options: GatewayOptions = {}): Promise<TlibHarness> {
  const nats = await startTestNats();
  const stops: (() => Promise<void> | void)[] = [() => nats.stop()];
  try {
    const nc = await connect({ servers: nats.url });
    stops.push(() => nc.close());
    const file = loadConfigFile(path.join(ROOT, 'config/local.yaml'));
    const cluster = file.cluster;
    const kv = await openConfigBucket(nc);
    await publishConfig(kv, cluster, file.dns);
    const config = await LiveConfig.watch(kv, cluster.metadata.name);
    stops.push(() => config.stop());
    const location = cluster.spec.location;
    const signaling = new ContractSignaling(nc, location, (dn) => config.dn(dn) !== undefined);
    stops.push(() => signaling.stop());
    const log = createLogger('tlib-gateway-test', process.env.TEST_LOG_LEVEL ?? 'silent');
    const ctx = (instance: string, registry: Registry): ComponentContext => ({
      config,
      musicRoot: file.musicRoot,
      nc,
      registry,
      log,
      addReadiness: () => undefined,
      rtpengines: [],
      instance,
    });
    const registry = new Registry();
    const gateway = await createGateway(ctx(`${os.hostname()}-gw-1`, registry), { listen: '127.0.0.1:0', ...options });
    stops.push(() => gateway.stop());
    return {
      nats,
      nc,
      config,
      cluster,
      signaling,
      gateway,
      registry,
      location,
      updateCluster: async (change) => {
        const next = structuredClone(config.cluster);
        change(next);
        const changed = new Promise<void>((resolve) => config.once('cluster', () => resolve()));
        await publishConfig(kv, next, file.dns);
        await changed;
      },
      startReplica: async (instance, replicaOptions = {}) => {
        const replicaRegistry = new Registry();
        const replica = await createGateway(ctx(instance, replicaRegistry), { listen: '127.0.0.1:0', ...options, ...replicaOptions });
        stops.push(() => replica.stop());
        return Object.assign(replica, { registry: replicaRegistry });
      },
      stop: async () => {
        for (const stop of stops.reverse()) await stop();
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop();
    throw err;
  }
}

/** Polls `check` until it holds, failing after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  if (!metric) return 0;
  return metric.values
    .filter((v) => {
      // A histogram counts its observations in <name>_count.
      const metricName = (v as { metricName?: string }).metricName;
      return (metricName === undefined || metricName === name || metricName === `${name}_count`) && Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val);
    })
    .reduce((sum, v) => sum + v.value, 0);
}
