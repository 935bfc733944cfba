/**
 * The SIP edge on one machine: kamailio (Debian package "kamailio") with the configuration
 * common/edge/kamailio-config.ts writes, supervised like nats-server and rtpengine.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { dispatcherList, kamailioConfig, tlsConfig, type EdgeConfigInput, type EdgeListen, type EdgeReplica } from '../edge/kamailio-config.js';
import { findBinary, MissingBinaryError, SupervisedProcess } from './child.js';
import { freePort } from './ports.js';

export interface EmbeddedEdge {
  /** http://host:port/metrics of kamailio's own Prometheus endpoint. */
  metricsUrl: string;
  listen: EdgeListen[];
  /** Where the replicas send (HUDDLE_SIP_EDGE). */
  internal: { host: string; port: number };
  process: SupervisedProcess;
}

export interface EdgeOptions {
  listen: EdgeListen[];
  /** EdgeConfigInput.sourceToken; the replicas get the same (HUDDLE_SIP_EDGE_TOKEN). */
  sourceToken: string;
  replicas: EdgeReplica[];
  dataDir: string;
  log: Logger;
  /** The metrics port when fixed; a free one otherwise. */
  metricsPort?: number;
  metricsHost?: string;
  /** The replicas' socket (UDP) when fixed; a free port on 127.0.0.1 otherwise. */
  internal?: { host: string; port: number };
  probeIntervalSeconds?: number;
  tls?: { certFile: string; keyFile: string };
  children?: number;
  rateLimit?: EdgeConfigInput['rateLimit'];
  onRestarted?: (pid: number | undefined) => void;
}

const MODULE_DIRS = ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/aarch64-linux-gnu/kamailio/modules', '/usr/lib/kamailio/modules', '/usr/local/lib64/kamailio/modules'];

/** Where the kamailio modules are; `module` names one that must be there (the tls module comes in its own package). */
export function kamailioModulesDir(module = 'dispatcher', debianPackage = 'kamailio'): string {
  const dir = MODULE_DIRS.find((d) => existsSync(path.join(d, 'dispatcher.so')));
  if (!dir || !existsSync(path.join(dir, `${module}.so`))) throw new MissingBinaryError(`kamailio module ${module}.so`, debianPackage);
  return dir;
}

export async function startKamailioEdge(opts: EdgeOptions): Promise<EmbeddedEdge> {
  const binary = findBinary('kamailio', 'kamailio');
  const tlsWanted = opts.listen.some((l) => l.transport === 'tls' || l.transport === 'wss');
  const modulesDir = kamailioModulesDir(tlsWanted ? 'tls' : 'dispatcher', tlsWanted ? 'kamailio-tls-modules' : 'kamailio');
  if (opts.listen.some((l) => l.transport === 'ws' || l.transport === 'wss')) kamailioModulesDir('websocket', 'kamailio-websocket-modules');
  const dir = path.join(opts.dataDir, 'edge');
  mkdirSync(dir, { recursive: true });
  const dispatcherFile = path.join(dir, 'dispatcher.list');
  writeFileSync(dispatcherFile, dispatcherList(opts.replicas));
  const metricsHost = opts.metricsHost ?? '127.0.0.1';
  const metricsPort = opts.metricsPort ?? (await freePort(metricsHost));
  const internal = opts.internal ?? { host: '127.0.0.1', port: await freePort() };
  const tlsFile = path.join(dir, 'tls.cfg');
  if (opts.tls) writeFileSync(tlsFile, tlsConfig(opts.tls));
  const configFile = path.join(dir, 'kamailio.cfg');
  writeFileSync(
    configFile,
    kamailioConfig({
      listen: opts.listen,
      sourceToken: opts.sourceToken,
      internal,
      metrics: { host: metricsHost, port: metricsPort },
      dispatcherFile,
      probeIntervalSeconds: opts.probeIntervalSeconds ?? 1,
      modulesDir,
      ...(opts.children ? { children: opts.children } : {}),
      ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
      ...(opts.tls ? { tls: { ...opts.tls, configFile: tlsFile } } : {}),
    }),
  );
  const proc = new SupervisedProcess({
    name: 'kamailio',
    binary,
    // -DD: stays in the foreground as the main process of its workers, so its pid is the edge's.
    args: ['-f', configFile, '-DD', '-E', '-e', '-Y', dir, '-P', path.join(dir, 'kamailio.run.pid'), '-m', '64', '-M', '8'],
    stateDir: opts.dataDir,
    log: opts.log,
    ready: () => waitForHttp(`http://${metricsHost}:${metricsPort}/healthz`, 10_000),
    ...(opts.onRestarted ? { onRestarted: opts.onRestarted } : {}),
  });
  await proc.start();
  return { metricsUrl: `http://${metricsHost}:${metricsPort}/metrics`, listen: opts.listen, internal, process: proc };
}

/** Resolves once `url` answers 200. */
export async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.once('error', () => resolve(false));
      req.setTimeout(500, () => req.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}
