/**
 * `npm run bench:cps`: calls per second with media anchored through rtpengine.
 *
 *   sipp uac (bench/cps/uac.xml, as extension 7001) -> server under test -> sipp uas (uas.xml, 7002)
 *
 * Servers, side by side at each rate:
 * - ours: bin/start.ts with a generated config (DN 7002 has a fixed contact: the sipp uas), its own
 *   embedded rtpengine and nats-server; the B2BUA anchors each party on rtpengine via media-controller.
 * - Kamailio 5.6 (bench/cps/kamailio.cfg): tm stateful proxy with the rtpengine module
 *   (rtpengine_offer/answer/delete) against its own instance of the same rtpengine binary.
 * Rates rise until a step is not clean twice in a row (a failed call, or fewer successful calls than placed); the
 * uas refuses any offer that still carries the caller's own media port (not anchored). Then, for
 * ours, resident memory per established call: N calls held up, RSS before and while they are up.
 *
 * Env: BENCH_CPS_RATES (calls/s list), BENCH_CPS_SECONDS (per step), BENCH_CPS_HOLD (calls held),
 * BENCH_CPS_TARGETS (default ours,kamailio). BENCH_CPS_OVERLOAD=1 adds the overload step
 * (bench/cps/overload.ts) for ours at 1.5x and 3x its highest clean rate;
 * BENCH_CPS_OVERLOAD_BASE=<calls/s> runs only that step, from that rate.
 *
 * Both servers are measured the same way, the way the peer baseline measured Kamailio + rtpengine
 * (peer-baselines/kamailio-rtpengine.sh): sipp uac -> server -> sipp uas with the baseline's call
 * flow (INVITE, 180, 200, ACK, BYE, 200; the uas keeps a 4 s timewait and accepts up to 1,000,000
 * calls, the uac up to 100,000 open), unpinned, 10 s per rate; CPU = utime+stime from
 * /proc/PID/stat of all the server's processes and threads (Kamailio's workers; rtpengine; our Node
 * process with its nats-server and rtpengine), minus the idle CPU measured before the steps.
 *
 * What made Kamailio + rtpengine look 2-3x costlier here than in the baseline (500 calls/s clean at
 * 1.28 ms per call vs >= 2,000 at 0.50-0.63 ms), found by A/B runs of the baseline's script with
 * one setting changed at a time (300 calls/s, 6 s, fresh stack each; the shared 2-core host ran
 * other helpers' tsc and vitest, load average 11-15, so every figure is ~2x a quiet host's):
 * - The allocator. Without -x/-X Kamailio uses qm, which Debian builds with DBG_SR_MEMORY (debug
 *   records on every allocation): Kamailio CPU per call, old cfg, qm 2.03/2.22 ms -> tlsf
 *   0.74/0.73 ms; the baseline's cfg, qm 1.32 ms (the other run failed 1,076 of 1,800) -> tlsf
 *   0.68/0.63 ms. rtpengine's share did not move (0.77-0.95 ms).
 * - The receive buffer. Without maxbuffer Kamailio stops at its built-in 256 KiB; whenever another
 *   tenant held the CPUs, the socket overflowed: old cfg at 300 calls/s dropped 354-2,128
 *   datagrams on Kamailio's socket and failed 68-454 of 1,800 calls (with tlsf still 87-203); the
 *   baseline's cfg (maxbuffer=4194304) dropped none and completed all. At 1,000 calls/s on that
 *   host every variant failed, so the highest clean rate here is the host's, not Kamailio's.
 * - children=4 vs 2, dns/rev_dns, rtpengine --log-level 5 vs 4: within the noise (tlsf: old cfg
 *   0.74/0.73 vs baseline cfg 0.68/0.63 ms; log level 5 0.66/0.81 vs 4 0.68/0.63 ms). Set as the
 *   baseline has them, except rtpengine, which both servers start with the same flags
 *   (common/supervisor/rtpengine.ts).
 * - Loopback softirq work is charged to the sending process's system call: to Kamailio for what it
 *   relays and to sipp for what it sends; the same for both servers, pinned or not, so nothing to
 *   correct. Nothing here is pinned.
 * Before and after, this bench, Kamailio only, load average ~9-11: before, 200 calls/s failed
 * 217 and 203 of 1,000 calls at 4.13/4.64 ms per call (highest clean rate: none); after, clean at
 * 200 and 300 calls/s at 1.69/1.65 ms. Same window, the baseline's own script
 * (kamailio-rtpengine.sh) and this bench: 1.53 / 1.64 ms at 200 calls/s, 1.33 / 1.40 ms at 300:
 * the bench now measures the peer as the baseline does. Since SIP auth became the default, caller
 * 7001 needs sip-allow-unauthenticated-insecure, else our server answers every call 403.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'rtpengine-client';
import { metric, startHuddle, type Huddle } from '../common/huddle.js';
import { kamailioSettings, startKamailioProxy } from '../common/kamailio-peer.js';
import { idleCpuUsPerS, loadLine, mib, sleep, treeCpuUs, treeRss, waitUntil } from '../common/proc.js';
import { diffStats, freeMediaPort, runSippLoad, startSippPeer, type SippPeer, type SippStats } from '../common/sipp.js';
import { overloadStep } from './overload.js';

const here = import.meta.dirname;
const RATES = (process.env.BENCH_CPS_RATES ?? '25,50,100,200,300,500,700,1000,1500,2000,2500').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_CPS_SECONDS ?? 10);
const TARGETS = (process.env.BENCH_CPS_TARGETS ?? 'ours,kamailio').split(',');
const KAMAILIO_CFG = path.join(here, 'kamailio.cfg');
/**
 * As the baseline's sipp, the open-call limits never throttle: the uac may hold all of a step's calls
 * open (the baseline: 100,000), the uas 1,000,000 (its 4 s timewait keeps each call open).
 */
const UAS_ARGS = ['-l', '1000000'];
const HOLD = Number(process.env.BENCH_CPS_HOLD ?? 300);
const OVERLOAD_BASE = Number(process.env.BENCH_CPS_OVERLOAD_BASE ?? 0);

interface Target {
  name: string;
  /** host:port sipp calls. */
  sip: string;
  uas: SippPeer;
  /** Whole server CPU (its processes and its rtpengine), µs. */
  cpuUs(): number;
  /** CPU the server uses when no call runs (timers, pings), µs per second; set before the steps. */
  idleUsPerS: number;
  /** rtpengine sessions created so far (proves anchoring). */
  rtpSessions(): Promise<number>;
  /** The server's latest distinct error messages, if it logs them. */
  recentErrors(): string[];
  stop(): Promise<void>;
}

interface Step {
  rate: number;
  calls: number;
  stats: SippStats;
  uasFailed: number;
  rtpSessions: number;
  cpuUsPerCall: number;
  clean: boolean;
}

const ng = new Client({ timeout: 3000 });

async function managedSessions(address: string): Promise<number> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const res = await ng.statistics(port, host);
  const total = (res.statistics as { totalstatistics?: { managedsessions?: number } } | undefined)?.totalstatistics?.managedsessions;
  if (typeof total !== 'number') throw new Error(`rtpengine ${address} statistics without totalstatistics.managedsessions: ${JSON.stringify(res).slice(0, 300)}`);
  return total;
}

/** The uas scenario with the caller's media port filled in (an offer carrying it is not anchored). */
function uasScenario(dir: string, uacMediaPort: number): string {
  const file = path.join(dir, 'uas.xml');
  writeFileSync(file, readFileSync(path.join(here, 'uas.xml'), 'utf8').replace('UAC_MEDIA_PORT', String(uacMediaPort)));
  return file;
}

async function ours(scenarioDir: string, uacMediaPort: number): Promise<{ target: Target; huddle: Huddle }> {
  const uas = await startSippPeer(uasScenario(scenarioDir, uacMediaPort), UAS_ARGS);
  const huddle = await startHuddle({
    dns: [
      // No digest round trip: the Kamailio proxy authenticates no one either.
      { number: '7001', type: 'Extension', options: { 'sip-allow-unauthenticated-insecure': true } },
      { number: '7002', type: 'Extension', options: { contact: `sip:7002@127.0.0.1:${uas.port}` } },
    ],
    // Ample ports, so that an overload shows as what it costs, not as rtpengine running out of ports.
    mediaPorts: Math.max(10_000, HOLD * 10),
  }).catch(async (err: Error) => {
    await uas.stop();
    throw err;
  });
  return {
    huddle,
    target: {
      name: 'huddle (B2BUA, media-controller)',
      sip: `127.0.0.1:${huddle.sipPort}`,
      uas,
      cpuUs: () => treeCpuUs(huddle.pid),
      idleUsPerS: 0,
      rtpSessions: () => managedSessions(huddle.ng),
      recentErrors: () => {
        const errs = new Set<string>();
        for (const line of huddle.tail().split('\n').reverse()) {
          const m = /"err":"([^"]+)"/.exec(line);
          if (m) errs.add(m[1]!.replace(/(leg|br)-[0-9a-f]+/g, '$1-…'));
          if (errs.size >= 3) break;
        }
        return [...errs];
      },
      stop: async () => {
        await huddle.stop();
        await uas.stop();
      },
    },
  };
}

async function kamailio(scenarioDir: string, uacMediaPort: number): Promise<Target> {
  const uas = await startSippPeer(uasScenario(scenarioDir, uacMediaPort), UAS_ARGS);
  const proxy = await startKamailioProxy(KAMAILIO_CFG, `sip:127.0.0.1:${uas.port}`, 10_000).catch(async (err: Error) => {
    await uas.stop();
    throw err;
  });
  return {
    name: 'Kamailio 5.6 (tm + rtpengine module)',
    sip: proxy.sip,
    uas,
    cpuUs: () => proxy.cpuUs(),
    idleUsPerS: 0,
    rtpSessions: () => managedSessions(proxy.rtpengineNg),
    recentErrors: () => [],
    stop: async () => {
      await proxy.stop();
      await uas.stop();
    },
  };
}

async function step(target: Target, rate: number, uacMediaPort: number): Promise<Step> {
  const calls = Math.max(10, Math.round(rate * SECONDS));
  const uasBefore = target.uas.stats();
  const rtpBefore = await target.rtpSessions();
  const cpuBefore = target.cpuUs();
  const run = await runSippLoad({
    target: target.sip,
    scenario: path.join(here, 'uac.xml'),
    service: '7002',
    rate,
    calls,
    pauseMs: 0,
    limit: calls,
    timeoutS: SECONDS * 4 + 30,
    mediaPort: uacMediaPort,
  });
  const cpuUs = target.cpuUs() - cpuBefore - (target.idleUsPerS * run.elapsedMs) / 1000;
  await sleep(2000); // the uas writes its statistics once a second, rtpengine its totals when calls end
  const uas = diffStats(target.uas.stats(), uasBefore);
  const rtpSessions = (await target.rtpSessions()) - rtpBefore;
  // The uac's view decides: an offer the uas refuses as not anchored never gets its 200, so it fails
  // there too; the uas's own count can include calls left over from an earlier step.
  const clean = run.stats.failed === 0 && run.stats.successful === calls;
  const s: Step = { rate, calls, stats: run.stats, uasFailed: uas.failed, rtpSessions, cpuUsPerCall: run.stats.successful > 0 ? cpuUs / run.stats.successful : NaN, clean };
  console.log(
    `  ${target.name.padEnd(38)} ${String(rate).padStart(5)}/s: ok ${run.stats.successful}/${calls}, failed ${run.stats.failed} (uas ${uas.failed}), ` +
      `retrans ${run.stats.retransmissions}, rtpengine sessions +${rtpSessions}, ${Number.isNaN(s.cpuUsPerCall) ? 'n/a' : (s.cpuUsPerCall / 1000).toFixed(2)} ms CPU/call (server+rtpengine, idle use subtracted) | ${loadLine()}`,
  );
  if (!clean && run.errors) console.log(`    sipp: ${run.errors.split('\n').slice(-4).join(' | ').slice(0, 400)}`);
  if (!clean) for (const e of target.recentErrors()) console.log(`    server error: ${e}`);
  return s;
}

/**
 * Memory per established call, on a fresh server after a short warm-up: HOLD calls up at once;
 * resident memory of the server process (and of its rtpengine) while they are up, minus before,
 * and the V8 heap in use (its own metric) likewise.
 */
async function memoryPerCall(target: Target, huddle: Huddle, uacMediaPort: number): Promise<void> {
  const rate = 50;
  const holdMs = Math.ceil(HOLD / rate) * 1000 + 15_000;
  const load = { target: target.sip, scenario: path.join(here, 'uac.xml'), service: '7002', mediaPort: uacMediaPort };
  const warm = await runSippLoad({ ...load, rate: 20, calls: 60, pauseMs: 0, limit: 60, timeoutS: 60 });
  const isNode = (n: string) => n.startsWith('node');
  const isRtp = (n: string) => n.startsWith('rtpengine');
  await sleep(1000);
  const before = { node: treeRss(huddle.pid, isNode), rtp: treeRss(huddle.pid, isRtp), heap: await metric(huddle.metricsUrl, 'nodejs_heap_size_used_bytes') };
  let up = 0;
  let during: typeof before | undefined;
  const running = runSippLoad({ ...load, rate, calls: HOLD, pauseMs: holdMs, limit: HOLD, timeoutS: Math.ceil(holdMs / 1000) + 60 });
  try {
    await waitUntil(async () => (up = await metric(huddle.metricsUrl, 'huddle_calls_active')) >= HOLD, `${HOLD} calls established`, holdMs - 5000, 250);
    await sleep(2000);
    during = { node: treeRss(huddle.pid, isNode), rtp: treeRss(huddle.pid, isRtp), heap: await metric(huddle.metricsUrl, 'nodejs_heap_size_used_bytes') };
  } catch (err) {
    console.log(`  memory: ${(err as Error).message} (calls up: ${up})`);
  }
  const run = await running;
  if (!during) return;
  const per = (a: number, b: number) => `${((b - a) / HOLD / 1024).toFixed(1)} KiB per call`;
  console.log(
    `Memory per established call (ours; ${HOLD} calls up at once, ${up} in the call model; warm-up ok ${warm.stats.successful}/60; hold run ok ${run.stats.successful}, failed ${run.stats.failed}):\n` +
      `  server process RSS ${mib(before.node)} -> ${mib(during.node)}: ${per(before.node, during.node)}\n` +
      `  its V8 heap in use ${mib(before.heap)} -> ${mib(during.heap)}: ${per(before.heap, during.heap)}\n` +
      `  its rtpengine RSS  ${mib(before.rtp)} -> ${mib(during.rtp)}: ${per(before.rtp, during.rtp)} (one rtpengine call per leg: 2 per call)`,
  );
}

function highestClean(steps: Step[]): Step | undefined {
  let best: Step | undefined;
  for (const s of steps) {
    if (!s.clean) break;
    best = s;
  }
  return best;
}

async function main(): Promise<void> {
  console.log(`bench:cps — ${os.cpus()[0]?.model ?? 'cpu'}; ${loadLine()}; ${SECONDS} s per step; rates ${RATES.join(', ')}`);
  console.log(`  peer: ${kamailioSettings(KAMAILIO_CFG)}; tm + rr + rtpengine module, against rtpengine userspace (the flags our server gives its own)`);
  console.log(`  both servers: unpinned; sipp bench/cps/uac.xml -> server -> uas.xml (peer-baselines uac-txn-rr/uas-rr flow, 0 s hold, uac -l <the step's calls>, uas ${UAS_ARGS.join(' ')}, 4 s timewait)`);
  console.log('  CPU: utime+stime of all the server\'s processes and threads (/proc/PID/stat, rtpengine included), minus its idle CPU');
  console.log('  peer baseline (same settings, quiet host, 2026-12-07): 0 failed at 2,000 calls/s (the highest tried), 0.50-0.63 ms CPU per call (Kamailio 0.23-0.30, rtpengine 0.27-0.32)');
  const scenarioDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-cps-'));
  const uacMediaPort = await freeMediaPort();
  const targets: Target[] = [];
  let mine: Target | undefined;
  let kam: Target | undefined;
  const killAll = async () => {
    for (const t of targets) await t.stop().catch(() => undefined);
    rmSync(scenarioDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void killAll().then(() => process.exit(130)));
  try {
    let huddle: Huddle | undefined;
    for (const name of TARGETS) {
      if (name === 'ours') {
        const o = await ours(scenarioDir, uacMediaPort);
        huddle = o.huddle;
        targets.push((mine = o.target));
      } else if (name === 'kamailio') targets.push((kam = await kamailio(scenarioDir, uacMediaPort)));
      else throw new Error(`BENCH_CPS_TARGETS: unknown target ${name} (known: ours, kamailio)`);
    }
    for (const t of targets) {
      t.idleUsPerS = await idleCpuUsPerS(t.cpuUs);
      console.log(`  ${t.name.padEnd(38)} idle CPU ${(t.idleUsPerS / 10_000).toFixed(1)}% of a core`);
    }
    const overload = mine && huddle ? { name: mine.name, sip: mine.sip, metricsUrl: huddle.metricsUrl } : undefined;
    if (overload && OVERLOAD_BASE > 0) {
      await overloadStep(overload, OVERLOAD_BASE);
      return;
    }
    if (mine && huddle) await memoryPerCall(mine, huddle, uacMediaPort);
    await sleep(3000); // rtpengine counts a session in its totals a little after the call ends
    console.log('\nRising rates, each server in turn at each rate:');
    const results = new Map<Target, Step[]>(targets.map((t) => [t, []]));
    for (const rate of RATES) {
      const live = targets.filter((t) => results.get(t)!.every((s) => s.clean));
      if (live.length === 0) break;
      for (const t of live) {
        let s = await step(t, rate, uacMediaPort);
        if (!s.clean) {
          // The machine is shared: one retry, so a passing spike of someone else's load does not decide;
          // after the calls of the failed step are gone (sipp gives up on a call after 10 s).
          await sleep(12_000);
          console.log('    retrying once');
          s = await step(t, rate, uacMediaPort);
        }
        results.get(t)!.push(s);
        await sleep(500);
      }
    }
    console.log('\nHighest clean rate (0 failed calls, all placed calls completed, every offer anchored on rtpengine):');
    for (const t of targets) {
      const best = highestClean(results.get(t)!);
      const top = results.get(t)!.at(-1);
      const capped = top?.clean === true && top.rate === RATES.at(-1) ? ' (the highest rate tried: the limit is above)' : '';
      console.log(`  ${t.name.padEnd(38)} ${String(best?.rate ?? 0).padStart(5)} calls/s${capped}${best ? `, ${(best.cpuUsPerCall / 1000).toFixed(2)} ms CPU per call there` : ''}`);
    }
    if (mine && kam) {
      const [a, b] = [highestClean(results.get(mine)!), highestClean(results.get(kam)!)];
      console.log(`  ratio huddle / Kamailio: ${a && b ? `${(a.rate / b.rate).toFixed(2)} (rate, target >= 1.0); CPU per call at each one's highest clean rate ${(a.cpuUsPerCall / b.cpuUsPerCall).toFixed(2)}` : 'n/a (a server had no clean rate)'}`);
      console.log('\nCPU per call (ms) at each rate both completed cleanly; ratio = huddle / Kamailio (target <= 1.5):');
      for (const x of results.get(mine)!) {
        const y = results.get(kam)!.find((k) => k.rate === x.rate);
        if (!x.clean || !y?.clean) continue;
        console.log(`  ${String(x.rate).padStart(5)} calls/s: huddle ${(x.cpuUsPerCall / 1000).toFixed(2)}, Kamailio ${(y.cpuUsPerCall / 1000).toFixed(2)}, ratio ${(x.cpuUsPerCall / y.cpuUsPerCall).toFixed(2)}`);
      }
    }
    const oursBest = mine ? highestClean(results.get(mine)!) : undefined;
    if (process.env.BENCH_CPS_OVERLOAD && overload && oursBest) await overloadStep(overload, oursBest.rate);
    console.log(`\nDone; ${loadLine()}`);
  } finally {
    await killAll();
    ng.close();
  }
}

await main();
