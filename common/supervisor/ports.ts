import dgram from 'node:dgram';
import { closeSync, mkdirSync, openSync, statSync, utimesSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => resolve(false));
    sock.bind(port, host, () => sock.close(() => resolve(true)));
  });
}

function tcpFree(port: number, host: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * Where ports are picked: below the kernel's ephemeral range (32768 and up), where bind(0) and
 * every outgoing connection take theirs, so none of those can take a port between our check and
 * the bind. Single ports and media blocks come from separate bands so a block being filled by
 * rtpengine never holds a single port picked meanwhile.
 */
const SinglePorts = { min: 29000, max: 32767 };
const BlockPorts = { min: 10000, max: 28999 };

const randomIn = (band: { min: number; max: number }, count = 1) => band.min + Math.floor(Math.random() * (band.max - band.min + 2 - count));

/**
 * Ports handed out lately by any process of this machine (a test worker, a launcher, its children),
 * one file each whose mtime is the moment: a port picked but not bound yet is not picked again by
 * another process meanwhile.
 */
const ReservedDir = path.join(os.tmpdir(), 'huddle-ports');
const ReservedMs = 120_000;

function reserve(port: number): boolean {
  const file = path.join(ReservedDir, String(port));
  try {
    mkdirSync(ReservedDir, { recursive: true });
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < ReservedMs) return false;
      const now = new Date();
      utimesSync(file, now, now);
      return true;
    } catch {
      return false;
    }
  }
}

/** A port free on `host` for both TCP and UDP at the moment of asking, and not handed out lately. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = randomIn(SinglePorts);
    if ((await portFree(port, host)) && reserve(port)) return port;
  }
  throw new Error(`no free port found in 200 attempts between ${SinglePorts.min} and ${SinglePorts.max}`);
}

/**
 * Runs `start` (which takes its ports from freePort()) again on fresh ports when a child failed
 * because one was bound by another process in between (two sites or test runs starting at once),
 * up to `attempts` times. Any other failure is thrown at once.
 */
export async function onFreshPorts<T>(what: string, log: Pick<Logger, 'warn'>, start: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= attempts || !/address already in use/i.test((err as Error).message)) throw err;
      log.warn({ what, attempt, err: (err as Error).message.slice(0, 200) }, 'a free port was taken before the child bound it; starting again on fresh ones');
    }
  }
}

/** Whether `port` can be bound on `host` right now, for TCP and UDP both. */
export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return (await tcpFree(port, host)) && (await udpFree(port, host));
}

/** A block of `count` consecutive ports (rtpengine's media range, sipp's RTP ports), free when asked. */
export async function freePortRange(count: number, host = '127.0.0.1'): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = randomIn(BlockPorts, count);
    let ok = true;
    for (let p = min; p < min + count && ok; p += Math.max(1, Math.floor(count / 8))) ok = await udpFree(p, host);
    if (ok) return { min, max: min + count - 1 };
  }
  throw new Error(`no free block of ${count} ports found in 50 attempts`);
}

/** Resolves once a TCP connect to host:port succeeds. */
export async function waitForTcp(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
}
