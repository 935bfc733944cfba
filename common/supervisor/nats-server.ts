import path from 'node:path';
import type { Logger } from 'pino';
import { findBinary, SupervisedProcess } from './child.js';
import { waitForTcp } from './ports.js';

export interface EmbeddedNats {
  url: string;
  process: SupervisedProcess;
}

/** nats-server with JetStream on loopback, state under `dataDir/nats`. */
export async function startNatsServer(opts: { port: number; dataDir: string; log: Logger; host?: string }): Promise<EmbeddedNats> {
  const binary = findBinary('nats-server', 'nats-server');
  const host = opts.host ?? '127.0.0.1';
  const storeDir = path.join(opts.dataDir, 'nats');
  const proc = new SupervisedProcess({
    name: 'nats-server',
    binary,
    args: ['-js', '-a', host, '-p', String(opts.port), '-sd', storeDir],
    stateDir: opts.dataDir,
    log: opts.log,
    ready: () => waitForTcp(host, opts.port, 10_000),
  });
  await proc.start();
  return { url: `nats://${host}:${opts.port}`, process: proc };
}
