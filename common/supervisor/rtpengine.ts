import dgram from 'node:dgram';
import type { Logger } from 'pino';
import { findBinary, SupervisedProcess } from './child.js';
import { freePort, onFreshPorts } from './ports.js';

export interface EmbeddedRtpengine {
  ng: string;
  process: SupervisedProcess;
}

export interface RtpengineOptions {
  /** The ng and CLI ports when fixed; each one left out is a free port, taken again if another process binds it first. */
  ngPort?: number;
  cliPort?: number;
  portMin: number;
  portMax: number;
  dataDir: string;
  log: Logger;
  host?: string;
  name?: string;
  /** --num-threads; rtpengine's own default (one per CPU) when unset. */
  threads?: number;
}

/**
 * Userspace rtpengine on loopback (flags measured in platform-facts.md): no kernel module,
 * no config file.
 */
export async function startRtpengine(opts: RtpengineOptions): Promise<EmbeddedRtpengine> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.ngPort !== undefined && opts.cliPort !== undefined) return startOn(opts, host, opts.ngPort, opts.cliPort);
  return onFreshPorts(opts.name ?? 'rtpengine', opts.log, async () => startOn(opts, host, opts.ngPort ?? (await freePort(host)), opts.cliPort ?? (await freePort(host))));
}

async function startOn(opts: RtpengineOptions, host: string, ngPort: number, cliPort: number): Promise<EmbeddedRtpengine> {
  const binary = findBinary('rtpengine', 'rtpengine-daemon');
  const name = opts.name ?? 'rtpengine';
  const proc = new SupervisedProcess({
    name,
    binary,
    args: [
      '--config-file=none',
      '--foreground',
      '--table=-1',
      `--interface=${host}`,
      `--listen-ng=${host}:${ngPort}`,
      `--listen-cli=${host}:${cliPort}`,
      `--port-min=${opts.portMin}`,
      `--port-max=${opts.portMax}`,
      '--log-stderr',
      '--log-level=5',
      '--delete-delay=0',
      ...(opts.threads ? [`--num-threads=${opts.threads}`] : []),
    ],
    stateDir: opts.dataDir,
    log: opts.log,
    ready: () => waitForNgPong(host, ngPort, 10_000),
  });
  await proc.start();
  return { ng: `${host}:${ngPort}`, process: proc };
}

/**
 * Readiness only: sends the fixed ng "ping" datagram until "pong" comes back. The media
 * controller's driver (rtpengine-client) does all real ng traffic.
 */
export async function waitForNgPong(host: string, port: number, timeoutMs: number): Promise<void> {
  const sock = dgram.createSocket('udp4');
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      sock.on('message', (msg) => {
        if (msg.toString().includes('pong')) resolve();
      });
      sock.on('error', reject);
      const send = () => {
        if (Date.now() > deadline) {
          reject(new Error(`rtpengine ng ${host}:${port} did not answer ping within ${timeoutMs} ms`));
          return;
        }
        sock.send(Buffer.from('ready d7:command4:pinge'), port, host);
        timer = setTimeout(send, 100);
      };
      send();
    });
  } finally {
    clearTimeout(timer);
    sock.close();
  }
}
