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
  const binary = findBinary('nats-server', 'nats-server');
  const storeDir = path.join(opts.dataDir, 'nats');
  // A name of its own: readiness is this server answering, not whichever one holds the port.
  const name = `huddle-${randomBytes(6).toString('hex')}`;
  const args = ['-js', '-a', host, '-p', String(port), '-sd', storeDir, '-n', name];
  if (opts.users || opts.tls) args.push('-c', writeServerConfig(opts));
  const proc = new SupervisedProcess({
    name: 'nats-server',
    binary,
    args,
    stateDir: opts.dataDir,
    log: opts.log,
    ready: () => waitForNatsServer(host, port, name, 10_000),
  });
  await proc.start();
  return { url: `${opts.tls ? 'tls' : 'nats'}://${host}:${port}`, process: proc };
}

/** The parts the command line cannot say (users, TLS), in a file only we can read: it holds the passwords. */
function writeServerConfig(opts: NatsServerOptions): string {
  let text = '';
  if (opts.users) text += authorizationBlock(opts.users);
  if (opts.tls) {
    const { cert, key, ca } = opts.tls;
    text += `tls ${JSON.stringify({ cert_file: cert, key_file: key, ...(ca ? { ca_file: ca, verify: true } : {}) })}\n`;
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const file = path.join(opts.dataDir, 'nats-server.conf');
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
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
