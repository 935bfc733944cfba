/**
 * Runs one component as its own process (a pod's container). Configuration comes from the config
 * bucket (HUDDLE_NATS_URL + HUDDLE_CLUSTER, as the operator sets it up) or from a file
 * (HUDDLE_CONFIG, for running a component alone on a workstation). The component connects as its
 * own NATS user (HUDDLE_NATS_USER + HUDDLE_NATS_PASSWORD_FILE, or HUDDLE_NATS_CREDS; TLS files in
 * HUDDLE_NATS_CA / _CERT / _KEY, see common/nats/connect.ts).
 */
import os from 'node:os';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../config/validate.js';
import { bucketReplicas } from '../nats/buckets.js';
import { LiveConfig, openConfigBucket, publishConfig } from '../nats/config-kv.js';
import { connectNats, natsClientFromEnv, tlsFiles, type NatsClientEnv } from '../nats/connect.js';
import type { NatsRole } from '../nats/permissions.js';
import { newRegistry, startOpsServer } from './http.js';
import { stopOnSignals } from './lifecycle.js';

/** How long a component process may take to stop before it exits anyway. */
const StopGraceMs = 9000;
import { createLogger } from './logger.js';
import { initTracing, type TracedComponent } from './tracing.js';
import type { ComponentFactory } from './component.js';

export interface ComponentEnv extends NatsClientEnv {
  HUDDLE_CONFIG?: string;
  HUDDLE_NATS_URL?: string;
  HUDDLE_CLUSTER?: string;
  HUDDLE_CONFIG_BUCKET?: string;
  HUDDLE_MUSIC_ROOT?: string;
  HUDDLE_RTPENGINE?: string;
  HUDDLE_METRICS_LISTEN?: string;
  POD_NAME?: string;
}

/** `role`: the NATS user's role, for the component's own reply subjects. */
export async function runComponent(name: string, role: NatsRole, factory: ComponentFactory, env: ComponentEnv = process.env): Promise<void> {
  const log = createLogger(name);
  const stopTracing = await initTracing(tracedAs(role));
  try {
    const file = env.HUDDLE_CONFIG ? loadConfigFile(env.HUDDLE_CONFIG) : undefined;
    const natsUrl = env.HUDDLE_NATS_URL ?? file?.cluster.spec.nats.url;
    const clusterName = env.HUDDLE_CLUSTER ?? file?.cluster.metadata.name;
    if (!natsUrl || !clusterName) throw new ConfigError(['set HUDDLE_NATS_URL and HUDDLE_CLUSTER, or HUDDLE_CONFIG with spec.nats.url'], 'environment');
    const client = natsClientFromEnv(env, role);
    const nc = await connectNats(natsUrl, `huddle-${name}-${env.POD_NAME ?? os.hostname()}`, log, { ...client, tls: client.tls ?? tlsFiles(file?.cluster.spec.nats.tls ?? {}) });
    // Only a component that publishes its file brings the bucket to the file's replicas; the others read it as it is.
    const kv = await openConfigBucket(nc, env.HUDDLE_CONFIG_BUCKET ?? file?.cluster.spec.nats.configBucket, file ? { replicas: bucketReplicas(file.cluster.spec), log } : {});
    if (file) await publishConfig(kv, file.cluster, file.dns);
    const live = await LiveConfig.watch(kv, clusterName, log, nc);
    const registry = newRegistry(name);
    const ops = await startOpsServer(env.HUDDLE_METRICS_LISTEN ?? '0.0.0.0:9464', registry);
    // Not ready before the component runs and a SIGTERM would drain it.
    let started = false;
    ops.addReadiness('started', () => started || 'starting');
    const rtpengines = env.HUDDLE_RTPENGINE ? env.HUDDLE_RTPENGINE.split(',').map((s) => s.trim()).filter(Boolean) : live.cluster.spec.media.rtpengine.map((r) => r.ng);
    const component = await factory({
      config: live,
      musicRoot: env.HUDDLE_MUSIC_ROOT ?? file?.musicRoot ?? live.cluster.spec.musicRoot ?? '/etc/huddle',
      nc,
      registry,
      log,
      addReadiness: (check, fn) => ops.addReadiness(check, fn),
      rtpengines,
      instance: env.POD_NAME ?? `${os.hostname()}-${process.pid}`,
    });
    log.info({ endpoints: component.endpoints, metrics: ops.url }, `${name} started`);
    stopOnSignals(async () => {
      await component.stop();
      live.stop();
      await nc.drain();
      await ops.close();
      await stopTracing();
      // Stopping hands work over (signaling its calls, media-controller its bridges): seconds, well within a pod's grace period.
    }, log, StopGraceMs);
    started = true;
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else log.error({ err: (err as Error).stack }, `${name} failed to start`);
    process.exit(1);
  }
}

/** The component a role's process traces as (config-publisher publishes only: the launcher's part). */
function tracedAs(role: NatsRole): TracedComponent {
  return role === 'config-publisher' ? 'launcher' : role;
}
