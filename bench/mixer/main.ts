/**
 * `npm run bench:mixer`: how many 3-party conferences one core sustains, our TypeScript mixer
 * (media-controller/mixer) side by side with Janus AudioBridge (Debian `janus`, plain-RTP PCMU
 * participants), driven by the same load generator.
 *
 * The mixer under test is pinned to one core (taskset), the load generator to the other. For each
 * level (conferences) a fresh mixer and generator run a warm-up, then a measured window.
 * A level is sustained when, over the measured window:
 *   - no loss: every participant got >= 99.5% of the packets the window should carry (20 ms
 *     packets; the tolerance covers window edges), and (ours, counted exactly after the generator
 *     pauses) the mixer received every packet sent to it and dropped none;
 *   - timing: p99 deviation of arrival gaps from 20 ms <= 5 ms at the generator (the common
 *     yardstick: Janus exposes no tick lateness), and for ours p99 tick lateness <= 5 ms.
 * The strict figure also requires ours' WORST tick lateness <= 5 ms; on a shared machine that one
 * mostly measures other processes taking the core, so both figures are printed.
 *
 * est/core = 100% / (CPU per conference): the CPU-bound capacity of one core, an estimate that
 * holds up better than the timing criteria when other processes share the machine.
 *
 * Options: --levels 50,100,200 --seconds 5 --mixer-core 1 --loadgen-core 0 --only ours|janus
 *          --keep-going (measure every level even after one fails: CPU figures on a busy machine)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { JanusBridge } from './janus.js';
import type { LoadStats } from './loadgen.js';
import type { ServerStats } from './ts-server.js';
import { onCpu } from '../common/proc.js';

const here = import.meta.dirname;
const { values } = parseArgs({
  options: {
    levels: { type: 'string', default: '25,50,100,150,200,300,400,500,600' },
    seconds: { type: 'string', default: '5' },
    'mixer-core': { type: 'string', default: '1' },
    'loadgen-core': { type: 'string', default: '0' },
    only: { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
  },
});
const levels = (values.levels ?? '').split(',').map(Number).filter((n) => n > 0);
const windowMs = Number(values.seconds) * 1000;
const mixerCore = Number(values['mixer-core']);
const loadgenCore = Number(values['loadgen-core']);
const WARMUP_MS = 1500;

/** A TypeScript child pinned to a core, spoken to over IPC with one reply per request. */
class Child {
  private readonly proc: ChildProcess;
  private waiting: ((msg: Record<string, unknown>) => void)[] = [];
  readonly ready: Promise<void>;

  constructor(file: string, core: number, readyOnFirstMessage: boolean) {
    // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each child (where does a core go?).
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
    this.proc = spawn(...onCpu(core, process.execPath, [...prof, '--import', 'tsx', path.join(here, file)]), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let markReady: () => void = () => undefined;
    this.ready = readyOnFirstMessage ? new Promise<void>((r) => (markReady = r)) : Promise.resolve();
    let first = readyOnFirstMessage;
    this.proc.on('message', (msg) => {
      if (first) {
        first = false;
        markReady();
        return;
      }
      this.waiting.shift()?.(msg as Record<string, unknown>);
    });
  }

  request<T>(msg: Record<string, unknown>, key: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${key} reply within 120 s`)), 120_000);
      this.waiting.push((reply) => {
        clearTimeout(timer);
        resolve(reply[key] as T);
      });
      this.proc.send(msg);
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      this.proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      this.proc.send({ stop: true });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }
}

interface LevelResult {
  conferences: number;
  pass: boolean;
  /** Also worst tick lateness <= 5 ms (ours). */
  strict: boolean;
  why: string;
  deliveredPct: number;
  gapP99Ms: number;
  gapMaxMs: number;
  worstTickMs?: number;
  p99TickMs?: number;
  cpuPctOfCore: number;
  cpuPerConfPct: number;
  senderWorstMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measured {
  load: LoadStats;
  cpuMs: number;
  /** What the generator had sent when it paused (ours: compared with what the mixer received). */
  sent: number;
}

async function measure(load: Child, readCpuMs: () => Promise<number>, resetServer: () => Promise<void>): Promise<Measured> {
  await sleep(WARMUP_MS);
  await resetServer();
  await load.request({ reset: true }, 'reset');
  const cpu0 = await readCpuMs();
  await sleep(windowMs);
  const stats = await load.request<LoadStats>({ pause: true }, 'stats');
  const cpuMs = (await readCpuMs()) - cpu0;
  // Let packets in flight land before the mixer's counters are read.
  await sleep(300);
  return { load: stats, cpuMs, sent: stats.sent };
}

function judge(conferences: number, load: LoadStats, cpuMs: number, extra: { worstTickMs?: number; p99TickMs?: number; lostIn?: number; dropped?: number }): LevelResult {
  const expected = load.expectedPerParticipant * load.participants;
  const deliveredPct = (100 * load.received) / Math.max(1, expected);
  const reasons: string[] = [];
  if (deliveredPct < 99.5) reasons.push(`delivered ${deliveredPct.toFixed(2)}%`);
  if (extra.lostIn) reasons.push(`${extra.lostIn} lost before the mixer`);
  if (extra.dropped) reasons.push(`${extra.dropped} dropped`);
  if (extra.p99TickMs !== undefined && extra.p99TickMs > 5) reasons.push(`p99 tick ${extra.p99TickMs.toFixed(1)} ms`);
  if (load.gapP99Ms > 5) reasons.push(`gap p99 ${load.gapP99Ms.toFixed(1)} ms`);
  const cpuPctOfCore = (100 * cpuMs) / load.windowMs;
  return {
    conferences,
    pass: reasons.length === 0,
    strict: reasons.length === 0 && (extra.worstTickMs === undefined || extra.worstTickMs <= 5),
    why: reasons.join(', ') || 'ok',
    deliveredPct,
    gapP99Ms: load.gapP99Ms,
    gapMaxMs: load.gapMaxMs,
    ...(extra.worstTickMs !== undefined ? { worstTickMs: extra.worstTickMs } : {}),
    ...(extra.p99TickMs !== undefined ? { p99TickMs: extra.p99TickMs } : {}),
    cpuPctOfCore,
    cpuPerConfPct: cpuPctOfCore / conferences,
    senderWorstMs: load.senderWorstLatenessMs,
  };
}

async function runOurs(conferences: number): Promise<LevelResult> {
  const load = new Child('loadgen.ts', loadgenCore, false);
  const server = new Child('ts-server.ts', mixerCore, true);
  try {
    await server.ready;
    const peers = await load.request<number[]>({ bind: conferences * 3 }, 'ports');
    const ports = await server.request<number[]>({ conferences, peers }, 'ports');
    await load.request({ targets: ports.map((port) => ({ host: '127.0.0.1', port })) }, 'started');
    const m = await measure(
      load,
      async () => (await server.request<ServerStats>({ stats: true }, 'stats')).cpuMs,
      async () => {
        await server.request({ reset: true }, 'reset');
      },
    );
    const s = await server.request<ServerStats>({ stats: true }, 'stats');
    return judge(conferences, m.load, m.cpuMs, {
      worstTickMs: s.worstLatenessMs,
      p99TickMs: s.p99LatenessMs,
      lostIn: Math.max(0, m.sent - s.packetsIn),
      dropped: s.packetsDropped,
    });
  } finally {
    await load.stop();
    await server.stop();
  }
}

async function runJanus(conferences: number): Promise<LevelResult> {
  const load = new Child('loadgen.ts', loadgenCore, false);
  const janus = await JanusBridge.start(mixerCore, conferences * 3);
  try {
    const peers = await load.request<number[]>({ bind: conferences * 3 }, 'ports');
    const ports: number[] = [];
    for (let c = 0; c < conferences; c++) ports.push(...(await janus.conference(1000 + c, peers.slice(c * 3, c * 3 + 3))));
    await load.request({ targets: ports.map((port) => ({ host: '127.0.0.1', port })) }, 'started');
    const m = await measure(
      load,
      () => Promise.resolve(janus.cpuMs()),
      () => Promise.resolve(),
    );
    return judge(conferences, m.load, m.cpuMs, {});
  } finally {
    await load.stop();
    await janus.stop();
  }
}

function row(name: string, r: LevelResult): string {
  return [
    name.padEnd(6),
    String(r.conferences).padStart(5),
    `${r.deliveredPct.toFixed(2)}%`.padStart(9),
    `${r.gapP99Ms.toFixed(1)}`.padStart(8),
    `${r.gapMaxMs.toFixed(1)}`.padStart(8),
    (r.p99TickMs !== undefined ? r.p99TickMs.toFixed(1) : '-').padStart(8),
    (r.worstTickMs !== undefined ? r.worstTickMs.toFixed(1) : '-').padStart(9),
    `${r.cpuPctOfCore.toFixed(1)}%`.padStart(8),
    `${r.cpuPerConfPct.toFixed(3)}%`.padStart(9),
    `${Math.floor(100 / r.cpuPerConfPct)}`.padStart(7),
    `${r.senderWorstMs.toFixed(1)}`.padStart(7),
    r.pass ? (r.strict ? 'PASS (strict too)' : 'PASS') : `FAIL (${r.why})`,
  ].join(' ');
}

interface LadderResult {
  best?: LevelResult;
  /** The last level measured (the first failing one, or the top of the ladder). */
  last?: LevelResult;
  strict?: LevelResult;
}

async function ladder(name: string, run: (n: number) => Promise<LevelResult>): Promise<LadderResult> {
  const out: LadderResult = {};
  // Sustained means every level up to it passed: a pass after a failure (--keep-going) does not count.
  let unbroken = true;
  let strictUnbroken = true;
  for (const n of levels) {
    let r: LevelResult;
    try {
      r = await run(n);
    } catch (err) {
      console.log(`${name.padEnd(6)} ${String(n).padStart(5)} ERROR ${(err as Error).message}`);
      break;
    }
    console.log(row(name, r));
    out.last = r;
    unbroken &&= r.pass;
    strictUnbroken &&= r.strict;
    if (unbroken) out.best = r;
    if (strictUnbroken) out.strict = r;
    if (!r.pass && !values['keep-going']) break;
  }
  return out;
}

async function main(): Promise<void> {
  console.log(`bench:mixer — 3-party PCMU conferences, mixer pinned to core ${mixerCore}, load generator on core ${loadgenCore}, ${windowMs / 1000} s windows`);
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`machine: ${os.cpus().length} cores, load average ${load()} (other processes share these cores: figures are only as clean as the machine is idle)`);
  console.log('system  conf delivered gapP99ms gapMaxms p99Tick worstTick  cpu/core  cpu/conf  est/core genLate verdict');
  const ours: LadderResult = values.only === 'janus' ? {} : await ladder('ours', runOurs);
  const janus: LadderResult = values.only === 'ours' ? {} : await ladder('janus', runJanus);
  console.log('');
  const describe = (name: string, r: LevelResult | undefined) =>
    r ? `${name}: ${r.conferences} conferences sustained on one core (${r.cpuPctOfCore.toFixed(1)}% of the core, ${r.cpuPerConfPct.toFixed(3)}% of a core per conference)` : `${name}: no level sustained (or not run)`;
  console.log(describe('ours ', ours.best));
  console.log(describe('janus', janus.best));
  if (ours.best && janus.best) console.log(`ratio ours/janus: ${(ours.best.conferences / janus.best.conferences).toFixed(2)} (highest level sustained on the ladder ${levels.join(',')})`);
  const estimate = (r: LevelResult | undefined) => (r ? Math.floor(100 / r.cpuPerConfPct) : undefined);
  const eo = estimate(ours.best ?? ours.last);
  const ej = estimate(janus.best ?? janus.last);
  if (eo && ej) console.log(`CPU-bound estimate per core: ours ${eo}, janus ${ej}, ratio ${(eo / ej).toFixed(2)} (from the highest level measured)`);
  console.log(`load average at the end: ${load()}`);
  console.log(`ours, strict (worst tick <= 5 ms at every level up to it): ${ours.strict ? ours.strict.conferences : 'none'}`);
}

main().catch((err: Error) => {
  console.error(err.stack);
  process.exit(1);
});
