import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { authorizationBlock, type NatsUser } from '../nats/permissions.js';
import { findBinary, SupervisedProcess } from './child.js';
import { freePort, onFreshPorts } from './ports.js';

export interface EmbeddedNats {
  url: string;
  process: SupervisedProcess;
}

/** nats-server with JetStream on loopback, state under `dataDir/nats`. */
export interface NatsServerOptions {
  /** The client port when fixed; left out, a free port, taken again if another process binds it first. */
  port?: number;
  dataDir: string;
  log: Logger;
  host?: string;
  /** The only users the server accepts; left out, it accepts anybody (tests of other things only). */
  users?: NatsUser[];
  /** Serve TLS only (URL tls://); `ca` also requires a client certificate signed by it. */
  tls?: { cert: string; key: string; ca?: string };
}

export async function startNatsServer(opts: NatsServerOptions): Promise<EmbeddedNats> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.port !== undefined) return startOn(opts, host, opts.port);
  return onFreshPorts('nats-server', opts.log, async () => startOn(opts, host, await freePort(host)));
}

async function startOn(opts: NatsServerOptions, host: string, port: number): Promise<EmbeddedNats> {
  const storeDir = path.join(opts.dataDir, 'nats');
  // A name of its own: readiness is this server answering, not whichever one holds the port.
  const name = `huddle-${randomBytes(6).toString('hex')}`;
  const args = ['-js', '-a', host, '-p', String(port), '-sd', storeDir, '-n', name];
  if (opts.users || opts.tls) args.push('-c', writeServerConfig(opts, opts.dataDir));
  const proc = natsProcess(opts, opts.dataDir, args, () => waitForNatsServer(host, port, name, 10_000));
  await proc.start();
  return { url: `${opts.tls ? 'tls' : 'nats'}://${host}:${port}`, process: proc };
}

function natsProcess(opts: Pick<NatsServerOptions, 'log'> & { restart?: boolean }, stateDir: string, args: string[], ready: () => Promise<void>): SupervisedProcess {
  return new SupervisedProcess({
    name: 'nats-server',
    binary: findBinary('nats-server', 'nats-server'),
    args,
    stateDir,
    log: opts.log,
    ready,
    ...(opts.restart === false ? { restart: false } : {}),
  });
}

/** The parts the command line cannot say (users, TLS), in a file only we can read: it holds the passwords. */
function writeServerConfig(opts: Pick<NatsServerOptions, 'users' | 'tls'>, dir: string): string {
  let text = '';
  if (opts.users) text += authorizationBlock(opts.users);
  if (opts.tls) {
    const { cert, key, ca } = opts.tls;
    text += `tls ${JSON.stringify({ cert_file: cert, key_file: key, ...(ca ? { ca_file: ca, verify: true } : {}) })}\n`;
  }
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'nats-server.conf');
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

// ---- A JetStream cluster on loopback (issue 16 point 7) ----------------------------------------

export interface NatsClusterOptions extends Omit<NatsServerOptions, 'port'> {
  /** Servers in the cluster: 3 keeps JetStream (buckets at replicas 3) through the loss of any one. */
  servers: number;
  /** false: a killed server stays down until `node.start()` (tests); default: the supervisor restarts it. */
  restart?: boolean;
}

/** One server of an embedded cluster. Its name, ports and store survive a restart, so it rejoins as the same JetStream peer. */
export interface NatsClusterNode {
  readonly name: string;
  /** This server alone (clients use the cluster's `url`). */
  readonly url: string;
  /** The running process (a new one after `start()`). */
  readonly process: SupervisedProcess;
  /** Starts the server again after it was killed or stopped; resolves once it is current with the cluster (healthz). */
  start(): Promise<void>;
  /** Whether the server answers and its JetStream is current with the cluster's (meta leader known, its streams caught up). */
  healthy(): Promise<boolean>;
}

export interface EmbeddedNatsCluster {
  /** Every server's client URL, comma-separated (connectNats takes it as is). */
  url: string;
  nodes: NatsClusterNode[];
  stop(): Promise<void>;
}

/**
 * `servers` nats-servers with JetStream, joined by routes into one cluster, each with its own
 * store under `dataDir/nats-<i>`. Resolves once every server reports JetStream healthy, i.e. a
 * meta leader is elected and a bucket with replicas up to `servers` can be created.
 */
export async function startNatsCluster(opts: NatsClusterOptions): Promise<EmbeddedNatsCluster> {
  return onFreshPorts('nats-server cluster', opts.log, () => startClusterOnce(opts));
}

async function startClusterOnce(opts: NatsClusterOptions): Promise<EmbeddedNatsCluster> {
  const host = opts.host ?? '127.0.0.1';
  const clusterName = `huddle-${randomBytes(4).toString('hex')}`;
  const ports: { client: number; route: number; monitor: number }[] = [];
  for (let i = 0; i < opts.servers; i++) ports.push({ client: await freePort(host), route: await freePort(host), monitor: await freePort(host) });
  const routes = ports.map((p) => `nats-route://${host}:${p.route}`).join(',');
  const scheme = opts.tls ? 'tls' : 'nats';
  const nodes = ports.map((p, i): ClusterNode => {
    const dir = path.join(opts.dataDir, `nats-${i}`);
    const name = `${clusterName}-${i}`;
    const args = ['-js', '-a', host, '-p', String(p.client), '-sd', path.join(dir, 'store'), '-n', name, '-m', String(p.monitor)];
    args.push('--cluster_name', clusterName, '--cluster', `nats-route://${host}:${p.route}`, '--routes', routes);
    if (opts.users || opts.tls) args.push('-c', writeServerConfig(opts, dir));
    return new ClusterNode(name, `${scheme}://${host}:${p.client}`, `http://${host}:${p.monitor}/healthz`, () =>
      natsProcess(opts, dir, args, () => waitForNatsServer(host, p.client, name, 10_000)),
    );
  });
  const stop = async () => {
    for (const n of nodes) await n.stop();
  };
  try {
    // All at once: a server waits for its routes before JetStream elects a meta leader.
    await Promise.all(nodes.map((n) => n.launch()));
    await waitUntil(async () => (await Promise.all(nodes.map((n) => n.healthy()))).every(Boolean), 'nats-server cluster JetStream healthy', 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: nodes.map((n) => n.url).join(','), nodes, stop };
}

class ClusterNode implements NatsClusterNode {
  private current: SupervisedProcess | undefined;
  constructor(
    readonly name: string,
    readonly url: string,
    private readonly healthz: string,
    private readonly spawn: () => SupervisedProcess,
  ) {}

  get process(): SupervisedProcess {
    if (!this.current) throw new Error(`nats-server ${this.name} was never started`);
    return this.current;
  }

  async launch(): Promise<void> {
    this.current = this.spawn();
    await this.current.start();
  }

  /** Stops the server for good (a server that never started: nothing to do). */
  async stop(): Promise<void> {
    await this.current?.stop();
  }

  async start(): Promise<void> {
    await this.launch();
    await waitUntil(() => this.healthy(), `nats-server ${this.name} JetStream current with the cluster`, 30_000);
  }

  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(this.healthz, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      return false;
    }
  }
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Until the server on host:port greets with INFO naming `name` (a NATS server sends INFO first on every connection). */
async function waitForNatsServer(host: string, port: number, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const greeting = await new Promise<string>((resolve) => {
      let text = '';
      const s = net.connect({ host, port });
      const done = () => {
        s.destroy();
        resolve(text);
      };
      s.setTimeout(1000, done);
      s.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) done();
      });
      s.once('error', done);
      s.once('close', done);
    });
    if (serverName(greeting) === name) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no nats-server named ${name} on ${host}:${port} after ${timeoutMs} ms`);
}

function serverName(greeting: string): string | undefined {
  const info = /^INFO (\{.*\})\s*\n/.exec(greeting)?.[1];
  if (!info) return undefined;
  try {
    return (JSON.parse(info) as { server_name?: string }).server_name;
  } catch {
    return undefined;
  }
}
