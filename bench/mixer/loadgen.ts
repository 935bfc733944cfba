/**
 * Load generator for bench/mixer (a child process, driven over IPC): one UDP socket per
 * participant, a 20 ms PCMU frame from each to its mixer port, and for each participant the
 * packets it gets back and how regular they arrive (deviation of the gap from 20 ms).
 *
 * IPC: {bind: n} -> {ports}; {targets: [{host, port}]} starts sending; {reset}; {stats} -> LoadStats;
 * {pause} stops sending and answers the stats at that moment.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';

export interface LoadStats {
  sent: number;
  received: number;
  /** Packets each participant should have received in the window (window / 20 ms). */
  expectedPerParticipant: number;
  participants: number;
  /** Deviation of arrival gaps from 20 ms, in ms. */
  gapP99Ms: number;
  gapMaxMs: number;
  /** How late our own send ticks ran (so a saturated generator is visible). */
  senderWorstLatenessMs: number;
  windowMs: number;
}

export type LoadCommand = { bind: number } | { targets: { host: string; port: number }[] } | { reset: true } | { stats: true } | { pause: true } | { stop: true };

const TICK = 20;
const sockets: dgram.Socket[] = [];
let targets: { host: string; port: number }[] = [];
const lastArrival: number[] = [];
const gapHistogram = new Uint32Array(1001); // 0.1 ms buckets up to 100 ms
let received = 0;
let sent = 0;
let gapMax = 0;
let senderWorst = 0;
let windowStart = performance.now();
let timer: NodeJS.Timeout | undefined;
let next = 0;
const payload = Buffer.alloc(172);

function send(msg: unknown): void {
  process.send?.(msg);
}

async function bind(n: number): Promise<number[]> {
  for (let i = 0; i < n; i++) {
    const s = dgram.createSocket('udp4');
    const index = sockets.length;
    sockets.push(s);
    lastArrival.push(0);
    s.on('message', () => {
      const now = performance.now();
      received++;
      const last = lastArrival[index]!;
      lastArrival[index] = now;
      if (last === 0) return;
      const dev = Math.abs(now - last - TICK);
      if (dev > gapMax) gapMax = dev;
      gapHistogram[Math.min(1000, Math.round(dev * 10))]!++;
    });
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  }
  return sockets.map((s) => s.address().port);
}

function tick(): void {
  const now = performance.now();
  const late = now - next;
  if (late > senderWorst) senderWorst = late;
  let rounds = 0;
  while (now >= next && rounds++ < 5) {
    payload.writeUInt16BE(seq, 2);
    payload.writeUInt32BE(ts, 4);
    seq = (seq + 1) & 0xffff;
    ts = (ts + 160) >>> 0;
    for (let i = 0; i < targets.length; i++) sockets[i]!.send(payload, targets[i]!.port, targets[i]!.host);
    sent += targets.length;
    next += TICK;
  }
  if (now - next > TICK * 5) next = now + TICK;
  timer = setTimeout(tick, Math.max(0, next - performance.now()));
}

// One PCMU payload for all sockets, sequence/timestamp advanced every tick (a send still queued may
// carry the next tick's numbers: harmless for load).
let seq = 0;
let ts = 0;
payload[0] = 0x80;
payload[1] = 0;
payload.writeUInt32BE(0x1234, 8);
payload.fill(0xff, 12);

function reset(): void {
  received = 0;
  sent = 0;
  gapMax = 0;
  senderWorst = 0;
  gapHistogram.fill(0);
  windowStart = performance.now();
}

function stats(): LoadStats {
  const windowMs = performance.now() - windowStart;
  let total = 0;
  for (const c of gapHistogram) total += c;
  let acc = 0;
  let p99 = 0;
  for (let i = 0; i < gapHistogram.length; i++) {
    acc += gapHistogram[i]!;
    if (acc >= total * 0.99) {
      p99 = i / 10;
      break;
    }
  }
  return { sent, received, expectedPerParticipant: Math.floor(windowMs / TICK), participants: targets.length, gapP99Ms: p99, gapMaxMs: gapMax, senderWorstLatenessMs: senderWorst, windowMs };
}

process.on('message', (raw) => {
  const cmd = raw as LoadCommand;
  if ('bind' in cmd) void bind(cmd.bind).then((ports) => send({ ports }));
  else if ('targets' in cmd) {
    targets = cmd.targets;
    next = performance.now() + TICK;
    timer ??= setTimeout(tick, TICK);
    send({ started: true });
  } else if ('reset' in cmd) {
    reset();
    send({ reset: true });
  } else if ('stats' in cmd) send({ stats: stats() });
  else if ('pause' in cmd) {
    clearTimeout(timer);
    send({ stats: stats() });
  } else if ('stop' in cmd) {
    clearTimeout(timer);
    for (const s of sockets) s.close();
    process.exit(0);
  }
});
