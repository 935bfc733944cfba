import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
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
}

export async function startNatsServer(opts: NatsServerOptions): Promise<EmbeddedNats> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.port !== undefined) return startOn(opts, host, opts.port);
  return onFreshPorts('nats-server', opts.log, async () => startOn(opts, host, await freePort(host)));
}

async function startOn(opts: NatsServerOptions, host: string, port: number): Promise<EmbeddedNats> {
  const binary = findBinary('nats-server', 'nats-server');
  const storeDir = path.join(opts.dataDir, 'nats');
  // A name of its own: readiness is this server answering, not whichever one holds the port.
  const name = `huddle-${randomBytes(6).toString('hex')}`;
  const proc = new SupervisedProcess({
    name: 'nats-server',
    binary,
    args: ['-js', '-a', host, '-p', String(port), '-sd', storeDir, '-n', name],
    stateDir: opts.dataDir,
    log: opts.log,
    ready: () => waitForNatsServer(host, port, name, 10_000),
  });
  await proc.start();
  return { url: `nats://${host}:${port}`, process: proc };
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
