/**
 * `npm start`: the whole platform on one machine. Starts nats-server and rtpengine as supervised
 * children unless the configuration names external ones, publishes the configuration file to the
 * config bucket (and again whenever the file changes), then runs media-controller, signaling and
 * the T-Library gateway in this process with one metrics endpoint. A site with the SIP edge
 * (spec.sip.replicas > 1, config/ha.yaml) runs each of those in a process of its own instead
 * (bin/processes.ts).
 */
import { watch, type FSWatcher } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadConfigFile, type PlatformConfig } from '../common/config/load.js';
import { edgeEnabled } from '../common/config/schema.js';
import { ConfigError } from '../common/config/validate.js';
import { bucketReplicas } from '../common/nats/buckets.js';
import { LiveConfig, openConfigBucket, publishConfig } from '../common/nats/config-kv.js';
import { connectNats, natsClientFromEnv, tlsFiles, type NatsClientOptions } from '../common/nats/connect.js';
import { newUsers, type NatsRole, type NatsUser } from '../common/nats/permissions.js';
import type { ComponentContext, ComponentFactory } from '../common/process/component.js';
import { newRegistry, startOpsServer, type OpsServer } from '../common/process/http.js';
import { stopOnSignals, type Component } from '../common/process/lifecycle.js';
import { createLogger } from '../common/process/logger.js';
import { initTracing } from '../common/process/tracing.js';
import { MissingBinaryError } from '../common/supervisor/child.js';
import { startNatsCluster, startNatsServer, type EmbeddedNats } from '../common/supervisor/nats-server.js';
import { portFree } from '../common/supervisor/ports.js';
import { startProcessSite } from './processes.js';
import { startRtpengine, type EmbeddedRtpengine } from '../common/supervisor/rtpengine.js';

const log = createLogger('launcher');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c', default: 'config/local.yaml' } } });
  const configFile = path.resolve(values.config ?? 'config/local.yaml');
  let config: PlatformConfig;
  try {
    config = loadConfigFile(configFile);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const spec = config.cluster.spec;
  const stopTracing = await initTracing('launcher');
  const dataDir = path.resolve(spec.dataDir, config.cluster.metadata.name);
  const stops: (() => Promise<void>)[] = [stopTracing];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'error while stopping');
      }
    }
  };
  stopOnSignals(stopAll, log, 4800);

  try {
    let natsUrl = spec.nats.url;
    let embeddedNats: { url: string; servers: number; stop: () => Promise<void> } | undefined;
    // Each component connects as its own NATS user: the embedded server's are generated afresh at
    // every start; an external NATS gets the ones the environment names (HUDDLE_NATS_USER ...).
    let natsUser: ((role: NatsRole) => { user: string; password: string }) | undefined;
    let natsClient = (role: NatsRole): NatsClientOptions => {
      const fromEnv = natsClientFromEnv(process.env, role);
      return { ...fromEnv, tls: tlsFiles(spec.nats.tls ?? {}) ?? fromEnv.tls };
    };
    if (!natsUrl) {
      const users = newUsers({ location: spec.location, configBucket: spec.nats.configBucket });
      embeddedNats = await startEmbeddedNats(spec.nats.embedded?.servers ?? 1, dataDir, users);
      stops.push(embeddedNats.stop);
      natsUrl = embeddedNats.url;
      natsUser = (role) => ({ user: role, password: users.find((u) => u.user === role)!.password });
      natsClient = (role) => ({ role, ...natsUser!(role) });
    }
    let rtpengines = spec.media.rtpengine.map((r) => r.ng);
    if (rtpengines.length === 0) {
      // Any free port, never a well-known one: rtpengine binds its ng socket with SO_REUSEPORT, so
      // a second site starting at the same moment would share it instead of failing, and the two
      // media-controllers would drive each other's rtpengine.
      const rtp: EmbeddedRtpengine = await startRtpengine({
        portMin: spec.media.portMin,
        portMax: spec.media.portMax,
        threads: spec.media.rtpengineThreads,
        dataDir,
        log,
      });
      stops.push(() => rtp.process.stop());
      rtpengines = [rtp.ng];
    }

    const nc: NatsConnection = await connectNats(natsUrl, `huddle-launcher-${config.cluster.metadata.name}`, log, natsClient('config-publisher'));
    stops.push(() => nc.drain());
    const kv = await openConfigBucket(nc, spec.nats.configBucket, { replicas: bucketReplicas(spec), log });
    await publishConfig(kv, config.cluster, config.dns);
    const fileWatcher = watchConfigFile(configFile, async (next) => publishConfig(kv, next.cluster, next.dns));
    stops.push(async () => fileWatcher.close());
    const live = await LiveConfig.watch(kv, config.cluster.metadata.name, log, nc);
    stops.push(async () => live.stop());

    const registry = newRegistry('huddle');
    const ops: OpsServer = await startOpsServer(spec.metrics.listen, registry);
    // Not ready before every component runs.
    let started = false;
    ops.addReadiness('started', () => started || 'starting');
    stops.push(() => ops.close());

    if (edgeEnabled(spec.sip)) {
      const site = await startProcessSite({ config, natsUrl, ...(natsUser ? { natsUser } : {}), rtpengines, dataDir, log });
      stops.push(() => site.stop());
      started = true;
      printEndpoints(config, [...site.endpoints, ...platformEndpoints(ops, embeddedNats, rtpengines), ...site.processLines]);
      return;
    }

    const ctx = async (component: string, role: NatsRole): Promise<ComponentContext> => {
      const own = await connectNats(natsUrl, `huddle-${component}-${config.cluster.metadata.name}`, log, natsClient(role));
      stops.push(() => own.drain());
      return {
        config: live,
        musicRoot: config.musicRoot,
        nc: own,
        registry,
        log: createLogger(component),
        addReadiness: (name, check) => ops.addReadiness(`${component}/${name}`, check),
        rtpengines,
        instance: `${os.hostname()}-${process.pid}-${component}`,
      };
    };
    const endpoints: string[] = [];
    // Loaded only once the configuration is known to be good: a config error answers at once.
    const factories: [string, NatsRole, ComponentFactory][] = [
      ['media-controller', 'media-controller', (await import('../media-controller/component.js')).startMediaController],
      ['signaling', 'signaling', (await import('../signaling/component.js')).startSignaling],
      ['tlib-gateway', 'gateway', (await import('../tlib-api/gateway/component.js')).startGateway],
    ];
    for (const [name, role, factory] of factories) {
      const component: Component & { endpoints?: string[] } = await factory(await ctx(name, role));
      stops.push(() => component.stop());
      endpoints.push(...(component.endpoints ?? []));
    }
    endpoints.push(...platformEndpoints(ops, embeddedNats, rtpengines));
    started = true;
    printEndpoints(config, endpoints);
  } catch (err) {
    if (err instanceof MissingBinaryError) process.stderr.write(`${err.message}\n`);
    else log.error({ err: (err as Error).stack }, 'start failed');
    await stopAll();
    process.exit(1);
  }
}

function platformEndpoints(ops: OpsServer, embeddedNats: { url: string; servers: number } | undefined, rtpengines: string[]): string[] {
  const nats = embeddedNats ? [`NATS       ${embeddedNats.url} (embedded${embeddedNats.servers > 1 ? `, ${embeddedNats.servers}-server JetStream cluster` : ''})`] : [];
  return [`Metrics    ${ops.url}/metrics`, ...nats, `rtpengine  ng ${rtpengines.join(', ')}`];
}

function printEndpoints(config: PlatformConfig, endpoints: string[]): void {
  process.stdout.write(`huddle SIP Server, site ${config.cluster.spec.location} (${config.source})\n${endpoints.map((e) => `  ${e}\n`).join('')}`);
}

/**
 * The embedded NATS: one nats-server on the well-known port when free, or (spec.nats.embedded.servers
 * 3) a JetStream cluster on loopback whose servers the supervisor restarts when they die; with
 * spec.nats.replicas 3 the site's buckets survive the loss of any one.
 */
async function startEmbeddedNats(servers: number, dataDir: string, users: NatsUser[]): Promise<{ url: string; servers: number; stop: () => Promise<void> }> {
  if (servers > 1) {
    const cluster = await startNatsCluster({ servers, dataDir, log, users });
    return { url: cluster.url, servers, stop: cluster.stop };
  }
  const single: EmbeddedNats = await onPreferredPort(4222, (port) => startNatsServer({ port, dataDir, log, users }));
  return { url: single.url, servers, stop: () => single.process.stop() };
}

/**
 * Starts a child on the well-known port when it is free (the first site on a machine), otherwise
 * (and also when another site started at the same moment took the port first) on the free port
 * the child's starter picks when given none.
 */
async function onPreferredPort<T>(port: number, start: (port: number | undefined) => Promise<T>): Promise<T> {
  if (await portFree(port)) {
    try {
      return await start(port);
    } catch (err) {
      log.warn({ port, err: (err as Error).message.slice(0, 200) }, 'well-known port lost to another process; using a free one');
    }
  }
  return start(undefined);
}

/** Republishes the file when it changes; an invalid edit is reported and the running config kept. */
function watchConfigFile(file: string, publish: (config: PlatformConfig) => Promise<void>): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(path.dirname(file), (_event, name) => {
    if (name !== path.basename(file)) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        const next = loadConfigFile(file);
        publish(next)
          .then(() => log.info({ file }, 'configuration file changed; published'))
          .catch((err: Error) => log.error({ err: err.message }, 'publishing configuration failed'));
      } catch (err) {
        log.error({ err: (err as Error).message }, 'configuration file changed but is invalid; keeping the running configuration');
      }
    }, 100);
  });
  return watcher;
}

main().catch((err: Error) => {
  log.error({ err: err.stack }, 'launcher failed');
  process.exit(1);
});
