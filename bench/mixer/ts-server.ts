/**
 * Our mixer under load for bench/mixer (a child process pinned to one core, driven over IPC):
 * the production TsMixer, N bridges of 3 parties, each party facing one load-generator socket.
 *
 * IPC: {conferences: n, peers: number[]} -> {ports}; {reset}; {stats} -> ServerStats; {stop}.
 */
import { performance } from 'node:perf_hooks';
import { TsMixer } from '../../media-controller/mixer/ts-mixer.js';

export interface ServerStats {
  worstLatenessMs: number;
  p99LatenessMs: number;
  packetsIn: number;
  packetsOut: number;
  packetsDropped: number;
  cpuMs: number;
  windowMs: number;
}

/** Tick lateness in 0.1 ms buckets up to 100 ms. */
const lateness = new Uint32Array(1001);
const mixer = new TsMixer({ host: '127.0.0.1', onTick: (ms) => lateness[Math.min(1000, Math.round(ms * 10))]!++ });

function p99(): number {
  let total = 0;
  for (const c of lateness) total += c;
  let acc = 0;
  for (let i = 0; i < lateness.length; i++) {
    acc += lateness[i]!;
    if (acc >= total * 0.99) return i / 10;
  }
  return 100;
}
let cpuStart = process.cpuUsage();
let windowStart = performance.now();
let base = { packetsIn: 0, packetsOut: 0, packetsDropped: 0 };

process.on('message', (raw) => {
  const cmd = raw as { conferences?: number; peers?: number[]; reset?: true; stats?: true; stop?: true };
  if (cmd.conferences !== undefined && cmd.peers) {
    const peers = cmd.peers;
    void (async () => {
      const ports: number[] = [];
      for (let c = 0; c < cmd.conferences!; c++) {
        const bridge = mixer.createBridge(`c${c}`);
        for (let p = 0; p < 3; p++) {
          const party = await mixer.createParty(`c${c}p${p}`);
          await party.setRemote('127.0.0.1', peers[c * 3 + p]!, 'PCMU');
          bridge.add(party);
          ports.push(party.local.port);
        }
      }
      process.send?.({ ports });
    })();
  } else if (cmd.reset) {
    mixer.resetWorstLateness();
    lateness.fill(0);
    cpuStart = process.cpuUsage();
    windowStart = performance.now();
    base = { ...mixer.totals };
    process.send?.({ reset: true });
  } else if (cmd.stats) {
    const cpu = process.cpuUsage(cpuStart);
    const t = mixer.totals;
    const stats: ServerStats = {
      worstLatenessMs: t.worstLatenessMs,
      p99LatenessMs: p99(),
      packetsIn: t.packetsIn - base.packetsIn,
      packetsOut: t.packetsOut - base.packetsOut,
      packetsDropped: t.packetsDropped - base.packetsDropped,
      cpuMs: (cpu.user + cpu.system) / 1000,
      windowMs: performance.now() - windowStart,
    };
    process.send?.({ stats });
  } else if (cmd.stop) {
    void mixer.stop().then(() => process.exit(0));
  }
});
process.send?.({ ready: true });
