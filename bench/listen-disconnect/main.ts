/**
 * `npm run bench:listen-disconnect [-- --conferences 200 --no-fallback --setup-parallel 1 --setup-budget 180 --split]`
 *
 * Our SIP Server (bin/start.ts in a child process, generated config on free ports; with --split one
 * process per component, as pods run: bench/common/split-site.ts) with N
 * concurrent 3-party conferences: phone A dials B, A's desktop adds C (SingleStepConference).
 * Phones are lean (bench/common/lean-phone.ts: one SIP stack, one PCMU endpoint per party sending
 * its own tone) and run in a worker thread (phones.ts), so their packets do not delay the desktop's
 * events; desktops are one T-Library client registered on every A.
 * Then, one conference at a time while all N run, A listen-disconnects C and reconnects it:
 *   - request -> EventListenDisconnected / EventListenReconnected at the requester (its ReferenceID);
 *   - request -> C's phone hears the music and neither A's nor B's tone (reconnect: both tones and
 *     no music), judged on the last 40 ms it received (2 packets, Goertzel).
 * Printed: p50/p99/max of the four, the load, the server's CPU. If N cannot be sustained (set-up,
 * audio or a request fails, or set-up overruns its budget), it says what happened and, unless
 * --no-fallback, tries N/2, N/4, ...
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { TlibClient } from '../../tlib-api/client/index.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { metric, startHuddle, SUPERVISOR_TOKEN, type BenchDN, type Huddle } from '../common/huddle.js';
import { loadLine, percentile, sleep, treeCpuUs } from '../common/proc.js';
import { HEARD, MUSIC, TONE } from './audio.js';
import { PhoneThread, sharedNow } from './phones.js';

const { values } = parseArgs({
  options: {
    conferences: { type: 'string', default: '200' },
    'no-fallback': { type: 'boolean', default: false },
    /** Conferences being set up at the same time. */
    'setup-parallel': { type: 'string', default: '1' },
    /** Seconds allowed for setting all conferences up. */
    'setup-budget': { type: 'string', default: '180' },
    /** Media-controller, signaling and gateway in processes of their own. */
    split: { type: 'boolean', default: false },
  },
});
const WANTED = Number(values.conferences);
const SETUP_PARALLEL = Number(values['setup-parallel']);
const SETUP_BUDGET_S = Number(values['setup-budget']);
const AUDIO_TIMEOUT_MS = 5000;
const MAX_CYCLE_FAILURES = 5;

interface Conference {
  a: string;
  b: string;
  c: string;
  connID: string;
}

interface Sample {
  disconnectEventMs: number;
  disconnectAudioMs: number;
  reconnectEventMs: number;
  reconnectAudioMs: number;
}

interface Outcome {
  count: number;
  ok: boolean;
  problems: string[];
}

const dn = (role: 'a' | 'b' | 'c', i: number) => String({ a: 30000, b: 40000, c: 50000 }[role] + i);

/** The desktops: every event by ThisDN, waitable. */
class Desktops {
  private readonly byDN = new Map<string, TEvent[]>();
  constructor(readonly client: TlibClient) {
    client.on('event', (e) => {
      const key = e.ThisDN ?? '';
      const list = this.byDN.get(key) ?? [];
      list.push(e);
      this.byDN.set(key, list);
    });
  }

  async waitFor(thisDN: string, match: (e: TEvent) => boolean, what: string, timeoutMs = 15_000): Promise<TEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.byDN.get(thisDN)?.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`${thisDN}: no ${what} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }
}

/** Runs `work` over `items`, `parallel` at a time, until `stop(failures so far)` says so. */
async function inBatches<T>(items: T[], parallel: number, stop: (errors: number) => boolean, work: (item: T) => Promise<void>): Promise<string[]> {
  const errors: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length && !stop(errors.length)) {
        const item = items[next++]!;
        await work(item).catch((err: Error) => {
          if (errors.length === 0) console.log(`    first failure: ${err.message}`);
          errors.push(err.message);
        });
      }
    }),
  );
  return errors;
}

/** The server's own view over the next `seconds`: mixer ticks/s and lateness, event-loop lag, media command time. */
async function serverHealth(huddle: Huddle, seconds: number): Promise<string> {
  const read = async () => ({
    ticks: await metric(huddle.metricsUrl, 'huddle_media_mixer_tick_lateness_seconds_count'),
    late: await metric(huddle.metricsUrl, 'huddle_media_mixer_tick_lateness_seconds_sum'),
    at: performance.now(),
  });
  const a = await read();
  await sleep(seconds * 1000);
  const b = await read();
  const lag = await metric(huddle.metricsUrl, 'nodejs_eventloop_lag_p99_seconds');
  const cmdSum = await metric(huddle.metricsUrl, 'huddle_signaling_media_command_duration_seconds_sum');
  const cmdCount = await metric(huddle.metricsUrl, 'huddle_signaling_media_command_duration_seconds_count');
  const ticks = b.ticks - a.ticks;
  return (
    `mixer ${(ticks / ((b.at - a.at) / 1000)).toFixed(1)} ticks/s (50 due), mean tick lateness ${ticks > 0 ? (((b.late - a.late) / ticks) * 1000).toFixed(1) : '-'} ms, ` +
    `event-loop lag p99 ${(lag * 1000).toFixed(0)} ms, media commands mean ${cmdCount > 0 ? ((cmdSum / cmdCount) * 1000).toFixed(0) : '-'} ms`
  );
}

function stats(label: string, values: number[]): string {
  if (values.length === 0) return `  ${label.padEnd(52)} no samples`;
  const f = (v: number) => `${v.toFixed(1)} ms`.padStart(10);
  return `  ${label.padEnd(52)} p50 ${f(percentile(values, 50))}  p99 ${f(percentile(values, 99))}  max ${f(Math.max(...values))}  (n=${values.length})`;
}

async function runAt(count: number): Promise<Outcome> {
  const problems: string[] = [];
  await measureAt(count, problems);
  const ok = problems.length === 0;
  console.log(ok ? `  => ${count} conferences: sustained` : `  => ${count} conferences NOT sustained: ${problems.join('; ')}`);
  return { count, ok, problems };
}

/** Sets up `count` conferences and measures; what went wrong goes to `problems`. */
async function measureAt(count: number, problems: string[]): Promise<void> {
  console.log(`\n=== ${count} concurrent 3-party conferences (${count * 3} phones) — ${loadLine()}`);
  const bank = await PhoneThread.start();
  let huddle: Huddle | undefined;
  let client: TlibClient | undefined;
  try {
    const dns: BenchDN[] = [];
    const phonesSipPort = await bank.sipPort();
    for (let i = 0; i < count; i++) {
      for (const role of ['a', 'b', 'c'] as const) {
        await bank.add(dn(role, i), TONE[role]);
        // The bench's phones on loopback place calls without digest (as bench:concurrent's callers).
        dns.push({ number: dn(role, i), type: 'Extension', options: { contact: `sip:${dn(role, i)}@127.0.0.1:${phonesSipPort}`, 'sip-allow-unauthenticated-insecure': true } });
      }
    }
    // Per party one rtpengine call with two sides (RTP+RTCP each), plus headroom.
    let phase = performance.now();
    const took = () => {
      const ms = performance.now() - phase;
      phase = performance.now();
      return `${(ms / 1000).toFixed(1)} s`;
    };
    huddle = await startHuddle({ dns, mediaPorts: count * 3 * 4 + 400, split: values.split });
    console.log(`  server started with ${dns.length} DNs in ${took()}`);
    const server = `127.0.0.1:${huddle.sipPort}`;
    client = new TlibClient({ url: huddle.gatewayUrl, token: SUPERVISOR_TOKEN, reconnect: false, requestTimeoutMs: 20_000 });
    await client.open();
    const desktops = new Desktops(client);
    for (let i = 0; i < count; i++) await client.registerAddress({ thisDN: dn('a', i) });
    console.log(`  ${count} desktops (A DNs) registered in ${took()}`);

    const setupStarted = performance.now();
    const conferences: Conference[] = [];
    const setupErrors = await inBatches(
      Array.from({ length: count }, (_, i) => i),
      SETUP_PARALLEL,
      (errors) => errors >= 3 || performance.now() - setupStarted > SETUP_BUDGET_S * 1000,
      async (i) => {
        const [a, b, c] = [dn('a', i), dn('b', i), dn('c', i)];
        await bank.call(a, b, server);
        const established = await desktops.waitFor(a, (e) => e.event === 'EventEstablished', 'EventEstablished');
        const connID = established.ConnID!;
        await client!.singleStepConference({ thisDN: a, connID, otherDN: c });
        const deadline = Date.now() + 15_000;
        while (!(await bank.answered(c))) {
          if (Date.now() > deadline) throw new Error(`${c} was not called within 15 s`);
          await sleep(20);
        }
        conferences.push({ a, b, c, connID });
        if (conferences.length % 25 === 0) console.log(`    ${conferences.length} conferences up after ${took()}`);
      },
    );
    const setupS = (performance.now() - setupStarted) / 1000;
    console.log(`  set-up: ${conferences.length}/${count} conferences in ${setupS.toFixed(1)} s; ${setupErrors.length} failed${setupErrors.length ? ` (set-up stopped): ${[...new Set(setupErrors)].slice(0, 3).join(' | ')}` : ''}`);
    console.log(`  server: ${await metric(huddle.metricsUrl, 'huddle_conferences_active')} conferences, ${await metric(huddle.metricsUrl, 'huddle_media_legs')} media legs; ${await serverHealth(huddle, 3)}`);
    if (setupErrors.length > 0) {
      problems.push(`conferences could not be set up (${conferences.length} were up when set-up stopped after ${setupErrors.length} failures)`);
      return;
    }
    if (conferences.length < count) {
      problems.push(`set-up too slow: ${conferences.length} conferences up when the ${SETUP_BUDGET_S} s set-up budget ran out`);
      return;
    }

    // Steady state: every party receives a stream (50 packets/s), every C hears A and B.
    await sleep(3000);
    const before = await bank.packetCounts();
    const cpu0 = treeCpuUs(huddle.pid);
    const selfCpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(4000);
    const seconds = (performance.now() - t0) / 1000;
    const rates = (await bank.packetCounts()).map((n, i) => (n - before[i]!) / seconds).sort((x, y) => x - y);
    const serverCore = (treeCpuUs(huddle.pid) - cpu0) / 1e6 / seconds;
    const self = process.cpuUsage(selfCpu0);
    const selfCore = (self.user + self.system) / 1e6 / seconds;
    console.log(
      `  steady state: packets/s received per phone min ${rates[0]?.toFixed(1)} p50 ${percentile(rates, 50).toFixed(1)} (50 expected); ` +
        `server tree (node+rtpengine+nats) ${(serverCore * 100).toFixed(0)}% of a core, phones ${(selfCore * 100).toFixed(0)}%; ${loadLine()}`,
    );
    console.log(`  server health: ${await serverHealth(huddle, 3)}`);
    const starved = rates.filter((r) => r < 45).length;
    if (starved > 0) problems.push(`${starved} phones received under 45 of 50 packets/s: media is not keeping up`);
    const hearErrors = await inBatches(conferences, 50, () => false, async (conf) => {
      await bank.until(conf.c, 'inConference', AUDIO_TIMEOUT_MS);
    });
    console.log(`  audio check: ${conferences.length - hearErrors.length}/${conferences.length} C phones hear A and B and no music`);
    if (hearErrors.length > 0) problems.push(`${hearErrors.length} C phones did not hear A and B (${hearErrors[0]})`);

    const samples: Sample[] = [];
    const failures: string[] = [];
    const cpu1 = treeCpuUs(huddle.pid);
    const m0 = performance.now();
    for (const conf of conferences) {
      if (failures.length >= MAX_CYCLE_FAILURES) break;
      try {
        // The watch is in place (its request reached the phone thread) before the request goes out.
        const watch = async (condition: 'isolated' | 'inConference'): Promise<{ heard: Promise<number> }> => {
          const heard = bank.until(conf.c, condition, AUDIO_TIMEOUT_MS);
          heard.catch(() => undefined); // awaited below; a request failure must not leave it unhandled
          await bank.answered(conf.c);
          return { heard };
        };
        let audio = (await watch('isolated')).heard;
        let start = sharedNow();
        const disc = await client.listenDisconnect({ thisDN: conf.a, connID: conf.connID, otherDN: conf.c });
        const disconnectEventMs = sharedNow() - start;
        if (disc.event !== 'EventListenDisconnected') throw new Error(`ListenDisconnect answered ${disc.event}`);
        const disconnectAudioMs = (await audio) - start;
        audio = (await watch('inConference')).heard;
        start = sharedNow();
        const rec = await client.listenReconnect({ thisDN: conf.a, connID: conf.connID, otherDN: conf.c });
        const reconnectEventMs = sharedNow() - start;
        if (rec.event !== 'EventListenReconnected') throw new Error(`ListenReconnect answered ${rec.event}`);
        const reconnectAudioMs = (await audio) - start;
        samples.push({ disconnectEventMs, disconnectAudioMs, reconnectEventMs, reconnectAudioMs });
      } catch (err) {
        failures.push(`${conf.a}/${conf.c}: ${(err as Error).message}`);
      }
    }
    const measureS = (performance.now() - m0) / 1000;
    const measureCore = (treeCpuUs(huddle.pid) - cpu1) / 1e6 / measureS;
    console.log(`  measured ${samples.length} disconnect+reconnect cycles (one at a time) in ${measureS.toFixed(1)} s; server ${(measureCore * 100).toFixed(0)}% of a core; ${loadLine()}`);
    console.log(stats('ListenDisconnect -> EventListenDisconnected (requester)', samples.map((s) => s.disconnectEventMs)));
    console.log(stats('ListenDisconnect -> C hears music, not A nor B', samples.map((s) => s.disconnectAudioMs)));
    console.log(stats('ListenReconnect  -> EventListenReconnected (requester)', samples.map((s) => s.reconnectEventMs)));
    console.log(stats('ListenReconnect  -> C hears A and B, no music', samples.map((s) => s.reconnectAudioMs)));
    if (failures.length > 0) {
      if (failures.length >= MAX_CYCLE_FAILURES) console.log(`    stopped after ${MAX_CYCLE_FAILURES} failed cycles`);
      problems.push(`${failures.length} of ${conferences.length} cycles failed`);
      for (const f of failures.slice(0, 5)) console.log(`    failed: ${f}`);
    }
  } catch (err) {
    problems.push((err as Error).message.split('\n')[0]!);
  } finally {
    await client?.close().catch(() => undefined);
    await huddle?.stop();
    await bank.close();
  }
}

async function main(): Promise<void> {
  console.log(`bench:listen-disconnect — ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores; ${loadLine()}`);
  console.log(`  audio judged on 40 ms windows (2 packets): tone heard above ${HEARD} of the energy, music above ${MUSIC}; tones A ${TONE.a} Hz, B ${TONE.b} Hz, C ${TONE.c} Hz`);
  const outcomes: Outcome[] = [];
  for (let count = WANTED; count >= 1; count = Math.floor(count / 2)) {
    const outcome = await runAt(count);
    outcomes.push(outcome);
    if (outcome.ok || values['no-fallback']) break;
  }
  const best = outcomes.find((o) => o.ok);
  console.log(`\nSummary: ${outcomes.map((o) => `${o.count}: ${o.ok ? 'sustained' : 'not sustained'}`).join(', ')}; largest count that worked: ${best?.count ?? 'none'}; ${loadLine()}`);
}

await main();
