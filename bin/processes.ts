/**
 * `npm start` with several signaling replicas (spec.sip.replicas > 1, e.g. config/ha.yaml): the
 * SIP edge (kamailio), each replica, media-controller and the gateway each run as a process of its
 * own, as pods do, so that any one of them can die (and be restarted) without the others.
 * Every process has its own /metrics; the launcher restarts one that dies.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { PlatformConfig } from '../common/config/load.js';
import { SIP_TLS_DIR, sipListenAddresses, tlsFiles } from '../common/config/schema.js';
import { newSourceToken, type EdgeReplica } from '../common/edge/kamailio-config.js';
import type { NatsRole } from '../common/nats/permissions.js';
import { SupervisedProcess } from '../common/supervisor/child.js';
import { startKamailioEdge, waitForHttp } from '../common/supervisor/kamailio.js';
import { freePort, portFree } from '../common/supervisor/ports.js';

export interface ProcessSiteOptions {
  config: PlatformConfig;
  natsUrl: string;
  /** The NATS user and password of a role when the launcher runs nats-server itself (else the environment's). */
  natsUser?: (role: NatsRole) => { user: string; password: string };
  rtpengines: string[];
  dataDir: string;
  log: Logger;
}

export interface SiteProcess {
  name: string;
  metricsUrl: string;
  process: SupervisedProcess;
}

export interface ProcessSite {
  processes: SiteProcess[];
  /** What the launcher prints: the site's endpoints, and one line per process. */
  endpoints: string[];
  processLines: string[];
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Run from the sources (tsx) or from dist (node). */
const sourceRun = import.meta.url.endsWith('.ts');

export async function startProcessSite(o: ProcessSiteOptions): Promise<ProcessSite> {
  const spec = o.config.cluster.spec;
  const processes: SiteProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.map((p) => p.process.stop(2000)));
  };
  try {
    const metricsPorts = preferredPorts(Number(spec.metrics.listen.split(':').pop()) + 6);
    const component = async (name: string, entry: string, role: NatsRole, extraEnv: Record<string, string> = {}) => {
      const metricsPort = await metricsPorts();
      const metricsUrl = `http://127.0.0.1:${metricsPort}`;
      const proc = new SupervisedProcess({
        name,
        binary: process.execPath,
        args: [...(sourceRun ? ['--import', import.meta.resolve('tsx')] : []), path.join(here, `${entry}${sourceRun ? '.ts' : '.js'}`)],
        env: { ...process.env, ...componentEnv(o, name, role), HUDDLE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`, ...extraEnv },
        stateDir: o.dataDir,
        log: o.log,
        ready: () => waitForHttp(`${metricsUrl}/readyz`, 30_000),
        readyTimeoutMs: 30_000,
        onRestarted: (pid) => process.stdout.write(`  ${name}  pid ${pid}  restarted\n`),
      });
      processes.push({ name, metricsUrl: `${metricsUrl}/metrics`, process: proc });
    };

    await component('media-controller', 'media-controller', 'media-controller');
    const edgeListen = sipListenAddresses(spec.sip);
    const edgeUdp = edgeListen.find((l) => l.transport === 'udp');
    if (!edgeUdp) throw new Error('spec.sip.listen: the SIP edge needs a udp listen address (the replicas reach it over UDP)');
    const edgeHost = edgeUdp.host === '0.0.0.0' ? '127.0.0.1' : edgeUdp.host;
    // The edge's socket for the replicas, apart from the one phones use.
    const internal = { host: '127.0.0.1', port: await freePort() };
    const replicas: EdgeReplica[] = [];
    const sourceToken = newSourceToken();
    for (let i = 0; i < spec.sip.replicas; i++) {
      const port = await freePort();
      const name = `signaling-${i}`;
      replicas.push({ name, host: '127.0.0.1', port });
      await component(name, 'signaling', 'signaling', {
        HUDDLE_SIP_LISTEN: `udp:127.0.0.1:${port},tcp:127.0.0.1:${port}`,
        HUDDLE_SIP_EDGE: `${internal.host}:${internal.port}`,
        HUDDLE_SIP_EDGE_CONTACT: `${edgeHost}:${edgeUdp.port}`,
        HUDDLE_SIP_EDGE_TOKEN: sourceToken,
      });
    }
    await component('tlib-gateway', 'tlib-gateway', 'gateway');
    // At once: each takes seconds to load, none needs another to start.
    await Promise.all(processes.map((p) => p.process.start()));
    const rate = spec.sip.rateLimit;
    const edge = await startKamailioEdge({
      listen: edgeListen,
      sourceToken,
      internal,
      replicas,
      dataDir: o.dataDir,
      log: o.log,
      metricsPort: await metricsPorts(),
      probeIntervalSeconds: spec.sip.edge.probeIntervalSeconds,
      ...(rate.enabled ? { rateLimit: rate } : {}),
      ...(spec.sip.tls ? { tls: tlsFiles(spec.sip.tls, SIP_TLS_DIR) } : {}),
      onRestarted: (pid) => process.stdout.write(`  sip-edge  pid ${pid}  restarted\n`),
    });
    processes.unshift({ name: 'sip-edge', metricsUrl: edge.metricsUrl, process: edge.process });

    const gatewayScheme = spec.gateway.tls ? 'wss' : 'ws';
    const endpoints = [
      `SIP        ${edgeListen.map((l) => `${l.transport} ${l.host}:${l.port}`).join(', ')} (edge in front of ${spec.sip.replicas} signaling replicas)`,
      `T-Library  ${gatewayScheme}://${spec.gateway.listen}/tlib`,
      `Agent page ${spec.gateway.tls ? 'https' : 'http'}://${spec.gateway.listen}/`,
    ];
    const processLines = processes.map((p) => `${p.name}  pid ${p.process.pid}  metrics ${p.metricsUrl}`);
    return { processes, endpoints, processLines, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What a component process needs to find the site: NATS, its user, the config bucket, rtpengine. */
function componentEnv(o: ProcessSiteOptions, name: string, role: NatsRole): Record<string, string> {
  const spec = o.config.cluster.spec;
  const env: Record<string, string> = {
    HUDDLE_NATS_URL: o.natsUrl,
    HUDDLE_CLUSTER: o.config.cluster.metadata.name,
    HUDDLE_CONFIG_BUCKET: spec.nats.configBucket,
    HUDDLE_MUSIC_ROOT: o.config.musicRoot,
    HUDDLE_RTPENGINE: o.rtpengines.join(','),
  };
  const tls = spec.nats.tls;
  if (tls?.caFile) env.HUDDLE_NATS_CA = tls.caFile;
  if (tls?.certFile) env.HUDDLE_NATS_CERT = tls.certFile;
  if (tls?.keyFile) env.HUDDLE_NATS_KEY = tls.keyFile;
  if (o.natsUser) {
    const { user, password } = o.natsUser(role);
    // A file only we can read, not the environment (which ps shows to every local user).
    const dir = path.join(o.dataDir, 'credentials');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${name}.password`);
    writeFileSync(file, password, { mode: 0o600 });
    chmodSync(file, 0o600);
    env.HUDDLE_NATS_USER = user;
    env.HUDDLE_NATS_PASSWORD_FILE = file;
  }
  return env;
}

/** Consecutive ports from `first` while they are free, then any free port. */
function preferredPorts(first: number): () => Promise<number> {
  let next = first;
  return async () => {
    while (next < first + 16) {
      const port = next++;
      if (await portFree(port)) return port;
    }
    return freePort();
  };
}
