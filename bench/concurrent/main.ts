/**
 * `npm run bench:concurrent`: N concurrent 2-party calls with G.711 audio both ways, rising N.
 *
 *   caller phone -> server under test -> callee phone, both phones in this process's PhoneBank
 *   (bench/common/lean-phone.ts: one SIP stack, one 20 ms timer sending every party's frame)
 *
 * Servers, one after the other at each N (each started once, idle between its steps):
 * - ours: bin/start.ts (embedded nats-server and rtpengine, media-controller, signaling), DNs
 *   5000.. calling 6000.. (the callees' contacts are the bank).
 * - Kamailio 5.6 + rtpengine: the tuned peer of bench:cps (bench/cps/kamailio.cfg, tm + rr +
 *   rtpengine module, -x tlsf -X tlsf) relaying to the bank, against its own instance of the same
 *   rtpengine binary started with our flags.
 * For each N: the calls are placed, then over a window of BENCH_CONCURRENT_SECONDS the CPU of all
 * the server's processes (/proc, idle use subtracted, as bench:cps) per concurrent call and the
 * packets lost (by the RTP sequence numbers each party receives, as RTCP counts them: raw sent and
 * received counts differ by the packets in flight at the window's edges); then the one-way delay on one more call
 * (the probe, bench/concurrent/probe.ts: its phones in a thread of their own): a party switches to
 * a new tone and the far party's detector times its first packet with it (the onset as
 * test/media/direct.test.ts measures it), BENCH_CONCURRENT_ONSETS times each way; the delay ours
 * adds is our median minus Kamailio's. Then all calls hang up.
 * The generator's own CPU (this process) and the packets/s it really sent per party are printed
 * apart: it shares the 2 cores with the server, and a step where it fell behind is marked (on the
 * shared 2-core host it did at 200 calls, ~40-56% of a core, load average 6-10).
 *
 * Env: BENCH_CONCURRENT_CALLS (list of N, default 25,50,100), BENCH_CONCURRENT_SECONDS (window,
 * default 10), BENCH_CONCURRENT_ONSETS (onsets timed each way, default 10),
 * BENCH_CONCURRENT_TARGETS (default ours,kamailio).
 */
import os from 'node:os';
import path from 'node:path';
import { Client } from 'rtpengine-client';
import { toneFrequency } from '../../test/support/tone-phone.js';
import { startHuddle, type BenchDN } from '../common/huddle.js';
import { kamailioSettings, startKamailioProxy } from '../common/kamailio-peer.js';
import { PhoneBank } from '../common/lean-phone.js';
import { Probe } from './probe.js';
import { idleCpuUsPerS, loadLine, percentile, sleep, treeCpuUs, treeCpuUsByName } from '../common/proc.js';

const CALLS = (process.env.BENCH_CONCURRENT_CALLS ?? '25,50,100').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_CONCURRENT_SECONDS ?? 10);
const ONSETS = Number(process.env.BENCH_CONCURRENT_ONSETS ?? 10);
const TARGETS = (process.env.BENCH_CONCURRENT_TARGETS ?? 'ours,kamailio').split(',');
const KAMAILIO_CFG = path.resolve(import.meta.dirname, '../cps/kamailio.cfg');
const MAX_CALLS = Math.max(...CALLS);
/** Both rtpengines relay on one thread: bench/common/huddle.ts gives ours media.rtpengineThreads 1. */
const RTPENGINE_THREADS = 1;
if (CALLS.some((n) => !Number.isInteger(n) || n < 1) || MAX_CALLS > 1000) throw new Error('BENCH_CONCURRENT_CALLS: whole numbers from 1 to 1000');
/** Calls set up at once while placing a step's calls. */
const SETUP_BATCH = 10;
const CALLER_TONE = toneFrequency(0);
const CALLEE_TONE = toneFrequency(1);
const ONSET_TONE = toneFrequency(4);
/** The new tone counts as heard at this share of the far party's last 40 ms: its first 20 ms frame (half the window) gives 0.25. */
const ONSET_SHARE = 0.15;

/** The index of the probe call's parties, after the load's. */
const PROBE = MAX_CALLS;
const caller = (i: number) => String(5000 + i);
const callee = (i: number) => String(6000 + i);

interface Target {
  name: string;
  /** host:port the callers send to. */
  sip: string;
  /** Places the probe call: Kamailio relays it to the probe's phones, ours has a DN whose contact they are. */
  callProbe(probe: Probe): Promise<void>;
  ng: string;
  /** Roots of the server's process trees (all its CPU). */
  pids(): number[];
  idleUsPerS: number;
  stop(): Promise<void>;
}

interface Step {
  calls: number;
  /** Server CPU per concurrent call (the probe's included), µs per second. */
  cpuUsPerSPerCall: number;
  sent: number;
  /** By the received sequence numbers: packets sent to the parties, and those that arrived. */
  expected: number;
  received: number;
  /** Server CPU per concurrent call by process name, µs per second (idle use not subtracted). */
  byProcess: Map<string, number>;
  /** rtpengine calls open during the window. */
  rtpengineCalls: number;
  /** One-way delays (ms) from the first frame of a new tone to its detection at the far party. */
  onsets: number[];
  /** The generator's CPU over the window, share of one core. */
  generatorCores: number;
  /** Packets per second each party sent over the window (nominal 50). */
  sendRate: number;
}

const ng = new Client({ timeout: 3000 });

const cpuUs = (t: Target) => t.pids().reduce((n, pid) => n + treeCpuUs(pid), 0);

function cpuByName(t: Target): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of t.pids()) for (const [name, us] of treeCpuUsByName(pid)) out.set(name, (out.get(name) ?? 0) + us);
  return out;
}

async function rtpengineCalls(address: string, limit: number): Promise<number> {
  const i = address.lastIndexOf(':');
  const res = (await ng.list(Number(address.slice(i + 1)), address.slice(0, i), { limit })) as { calls?: string[] };
  if (!Array.isArray(res.calls)) throw new Error(`rtpengine ${address} list without calls: ${JSON.stringify(res).slice(0, 300)}`);
  return res.calls.length;
}

async function ours(bank: PhoneBank, probe: Probe): Promise<Target> {
  const dns: BenchDN[] = [];
  for (let i = 0; i < MAX_CALLS; i++) {
    // No digest round trip: the Kamailio proxy authenticates no one either.
    dns.push({ number: caller(i), type: 'Extension', options: { 'sip-allow-unauthenticated-insecure': true } });
    dns.push({ number: callee(i), type: 'Extension', options: { contact: `sip:${callee(i)}@127.0.0.1:${bank.sipPort}` } });
  }
  dns.push({ number: caller(PROBE), type: 'Extension', options: { 'sip-allow-unauthenticated-insecure': true } });
  dns.push({ number: callee(PROBE), type: 'Extension', options: { contact: `sip:${callee(PROBE)}@127.0.0.1:${probe.sipPort}` } });
  const huddle = await startHuddle({ dns, mediaPorts: MAX_CALLS * 8 + 400 });
  return {
    name: 'huddle',
    sip: `127.0.0.1:${huddle.sipPort}`,
    callProbe: (p) => p.call(caller(PROBE), callee(PROBE), CALLER_TONE, CALLEE_TONE, `127.0.0.1:${huddle.sipPort}`),
    ng: huddle.ng, pids: () => [huddle.pid], idleUsPerS: 0, stop: () => huddle.stop() };
}

async function kamailio(bank: PhoneBank): Promise<Target> {
  const proxy = await startKamailioProxy(KAMAILIO_CFG, `sip:127.0.0.1:${bank.sipPort}`, MAX_CALLS * 8 + 400, RTPENGINE_THREADS);
  return {
    name: 'Kamailio+rtpengine',
    sip: proxy.sip,
    callProbe: (p) => p.call(caller(PROBE), callee(PROBE), CALLER_TONE, CALLEE_TONE, `127.0.0.1:${p.sipPort}`, proxy.sip),
    ng: proxy.rtpengineNg, pids: () => proxy.pids(), idleUsPerS: 0, stop: () => proxy.stop() };
}

async function step(bank: PhoneBank, probe: Probe, target: Target, calls: number): Promise<Step> {
  for (let i = 0; i < calls; i += SETUP_BATCH) {
    const batch: Promise<void>[] = [];
    for (let k = i; k < Math.min(calls, i + SETUP_BATCH); k++) {
      batch.push(
        (async () => {
          await bank.add(caller(k), CALLER_TONE);
          await bank.add(callee(k), CALLEE_TONE);
          await bank.call(caller(k), callee(k), target.sip);
        })(),
      );
    }
    await Promise.all(batch);
  }
  await target.callProbe(probe);
  try {
    await sleep(2000); // every party answered and sending, rtpengine latched on both sides
    const users = Array.from({ length: calls }, (_, i) => [caller(i), callee(i)]).flat();
    const counts = () =>
      users.map((u) => bank.endpoint(u)).reduce((c, e) => ({ sent: c.sent + e.sent, expected: c.expected + e.expected, received: c.received + e.packets }), { sent: 0, expected: 0, received: 0 });
    const before = counts();
    const cpuBefore = cpuByName(target);
    const genBefore = process.cpuUsage();
    const started = Date.now();
    await sleep(SECONDS * 1000);
    const after = counts();
    const elapsedS = (Date.now() - started) / 1000;
    // The probe call is one of the calls the server carries.
    const carried = calls + 1;
    const byProcess = new Map([...cpuByName(target)].map(([name, us]) => [name, (us - (cpuBefore.get(name) ?? 0)) / elapsedS / carried]));
    const cpuUs = [...byProcess.values()].reduce((a, b) => a + b, 0) * elapsedS * carried - target.idleUsPerS * elapsedS;
    const gen = process.cpuUsage(genBefore);
    const open = await rtpengineCalls(target.ng, carried * 4);
    const delays = await probe.onsets(caller(PROBE), callee(PROBE), ONSET_TONE, ONSET_SHARE, ONSETS);
    return {
      calls,
      cpuUsPerSPerCall: cpuUs / elapsedS / carried,
      byProcess,
      sent: after.sent - before.sent,
      expected: after.expected - before.expected,
      received: after.received - before.received,
      rtpengineCalls: open,
      onsets: delays,
      generatorCores: (gen.user + gen.system) / 1e6 / elapsedS,
      sendRate: (after.sent - before.sent) / elapsedS / (2 * calls),
    };
  } finally {
    for (let i = 0; i < calls; i++) await bank.hangUp(caller(i)).catch((err: Error) => console.log(`    hang-up ${caller(i)}: ${err.message}`));
    await probe.hangUp(caller(PROBE)).catch((err: Error) => console.log(`    hang-up of the probe call: ${err.message}`));
    await sleep(2000); // the server ends every call and frees its ports before the next step
  }
}

const ms = (us: number) => (us / 1000).toFixed(2);
const lossPct = (s: Step) => (s.expected > 0 ? ((1 - s.received / s.expected) * 100).toFixed(3) : 'n/a');
const median = (v: number[]) => percentile(v, 50);
/** The generator sent less than 98% of the nominal 50 packets/s per party (its timer skips frames it owes beyond 5). */
const behind = (s: Step) => s.sendRate < 49;

function describe(name: string, s: Step): string {
  return (
    `  ${name.padEnd(18)} ${String(s.calls).padStart(4)}+1 calls: ${ms(s.cpuUsPerSPerCall)} ms CPU per s per call (${(s.cpuUsPerSPerCall / 10_000).toFixed(2)}% of a core), ` +
    `loss ${lossPct(s)}% (${s.received} received of ${s.expected} expected by sequence, ${s.sent} sent), rtpengine calls ${s.rtpengineCalls} (${(s.rtpengineCalls / (s.calls + 1)).toFixed(2)} per call), ` +
    `onset p50 ${median(s.onsets).toFixed(2)} p90 ${percentile(s.onsets, 90).toFixed(2)} ms (${s.onsets.length}) | generator ${(s.generatorCores * 100).toFixed(0)}% of a core, ${s.sendRate.toFixed(1)} packets/s per party${behind(s) ? ' (FELL BEHIND: not the full load)' : ''} | ${loadLine()}\n` +
    `  ${''.padEnd(18)}      by process, ms CPU per s per call, idle included: ${[...s.byProcess].filter(([, us]) => us > 0).map(([name, us]) => `${name} ${ms(us)}`).join(', ')}`
  );
}

async function main(): Promise<void> {
  console.log(`bench:concurrent — ${os.cpus()[0]?.model ?? 'cpu'}; ${loadLine()}; N = ${CALLS.join(', ')} concurrent 2-party calls; ${SECONDS} s window per step`);
  console.log('  audio: PCMU 20 ms, 50 packets/s each way per call, every party in one Node process (one SIP stack, one send timer), loopback');
  console.log(`  peer: ${kamailioSettings(KAMAILIO_CFG)}; tm + rr + rtpengine module, against rtpengine userspace (the flags our server gives its own, --num-threads=${RTPENGINE_THREADS} as ours)`);
  console.log("  CPU: utime+stime of all the server's processes and threads (/proc/PID/stat: signaling, media-controller, nats-server, rtpengine; Kamailio's workers and its rtpengine), minus its idle CPU; unpinned");
  console.log(`  one-way delay: on one more call whose phones have their own thread, first frame of a new tone sent -> detected at the far party (40 ms window, share > ${ONSET_SHARE}), ${ONSETS} times each way`);
  const bank = await PhoneBank.start();
  const probe = await Probe.start();
  const targets: Target[] = [];
  const killAll = async () => {
    for (const t of targets) await t.stop().catch(() => undefined);
    await probe.close();
    await bank.close();
    ng.close();
  };
  process.once('SIGINT', () => void killAll().then(() => process.exit(130)));
  try {
    for (const name of TARGETS) {
      if (name === 'ours') targets.push(await ours(bank, probe));
      else if (name === 'kamailio') targets.push(await kamailio(bank));
      else throw new Error(`BENCH_CONCURRENT_TARGETS: unknown target ${name} (known: ours, kamailio)`);
    }
    for (const t of targets) {
      t.idleUsPerS = await idleCpuUsPerS(() => cpuUs(t));
      console.log(`  ${t.name.padEnd(18)} idle CPU ${(t.idleUsPerS / 10_000).toFixed(1)}% of a core`);
    }
    console.log('\nRising N, each server in turn:');
    const results = new Map<Target, Step[]>(targets.map((t) => [t, []]));
    for (const calls of CALLS) {
      for (const t of targets) {
        const s = await step(bank, probe, t, calls);
        results.get(t)!.push(s);
        console.log(describe(t.name, s));
      }
    }
    const [mine, peer] = [targets.find((t) => t.name === 'huddle'), targets.find((t) => t.name !== 'huddle')];
    if (mine && peer) {
      console.log('\nSide by side (ratio = huddle / Kamailio+rtpengine; targets: CPU <= 1.2, added one-way delay <= 2 ms):');
      console.log('  calls | CPU per call, ms per s: huddle  Kamailio  ratio | loss %: huddle  Kamailio | onset p50 ms: huddle  Kamailio  added');
      for (const a of results.get(mine)!) {
        const b = results.get(peer)!.find((s) => s.calls === a.calls)!;
        console.log(
          `  ${String(a.calls).padStart(5)} | ${ms(a.cpuUsPerSPerCall).padStart(29)} ${ms(b.cpuUsPerSPerCall).padStart(9)} ${(a.cpuUsPerSPerCall / b.cpuUsPerSPerCall).toFixed(2).padStart(6)} | ` +
            `${lossPct(a).padStart(14)} ${lossPct(b).padStart(9)} | ${median(a.onsets).toFixed(2).padStart(20)} ${median(b.onsets).toFixed(2).padStart(9)} ${(median(a.onsets) - median(b.onsets)).toFixed(2).padStart(6)}` +
            (behind(a) || behind(b) ? '  (generator fell behind)' : ''),
        );
      }
    }
    console.log(`\nDone; ${loadLine()}`);
  } finally {
    await killAll();
  }
}

await main();
