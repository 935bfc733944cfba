/**
 * `npm run bench:failover` (issue 16, point 9): calls through `npm start -- --config config/ha.yaml`
 * (SIP edge, two signaling replicas, media-controller, gateway as processes) while one process is
 * killed, again and again.
 *
 *   N two-party calls and M three-party conferences whose third party is listen-disconnected,
 *   tone phones on every leg (test/support/tone-phone.ts), desktops on the gateway.
 *
 * Faults, each K times: SIGKILL of the signaling replica owning most calls, SIGKILL of
 * media-controller, SIGKILL of rtpengine (the launcher restarts each). Per fault: calls lost (a leg
 * not hearing what it should 5 s later, or its dialog gone), calls uncontrolled (audio on, but
 * QueryCall fails once things settled: no replica answers for the call), the longest audio gap per leg (what
 * every phone hears, sampled every 100 ms over 300 ms windows: the resolution), and the time until
 * each call's first in-dialog request (OPTIONS from a phone, sent at the kill) and first T-Library
 * request (QueryCall, sent at the kill) are answered, p50/p99 over calls and rounds.
 *
 * Then the cost of replication: sipp calls at a fixed rate through the edge with one signaling
 * replica and with two, calls/s and CPU per call (whole launcher tree) of each, in the same run.
 *
 * Flags: --calls N (100) --conferences M (20) --kills K (10) --faults signaling,media-controller,rtpengine
 *        --cps-rate R (50) --cps-seconds S (10; 0 skips the cost)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, conference, exactly, type AgentSite, type Desktop } from '../../test/e2e/site.js';
import { configOnFreePorts, HA, launch, LaunchedSite, processLines, scrape } from '../../test/platform/launched.js';
import { toneFrequency, type Heard } from '../../test/support/tone-phone.js';
import { loadLine, percentile, processTree, sleep, stopChild, treeCpuUs, waitUntil } from '../common/proc.js';
import { freeMediaPort, runSippLoad, startSippPeer } from '../common/sipp.js';

const { values: flags } = parseArgs({
  options: {
    calls: { type: 'string', default: '100' },
    conferences: { type: 'string', default: '20' },
    kills: { type: 'string', default: '10' },
    faults: { type: 'string', default: 'signaling,media-controller,rtpengine' },
    'cps-rate': { type: 'string', default: '50' },
    'cps-seconds': { type: 'string', default: '10' },
  },
});
const CALLS = Number(flags.calls);
const CONFERENCES = Number(flags.conferences);
const KILLS = Number(flags.kills);
const FAULTS = flags.faults.split(',').filter(Boolean);
const CPS_RATE = Number(flags['cps-rate']);
const CPS_SECONDS = Number(flags['cps-seconds']);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-failover-'));
const password = (dn: string) => `secret-${dn}`;

/** config/ha.yaml on free ports, with the bench's DNs (password secret-<dn>) and `replicas` signaling replicas. */
function benchConfig(dns: string[], replicas: number, extra = ''): Promise<string> {
  const docs = dns.map((dn) => `---\napiVersion: sip.huddle.dev/v1alpha1\nkind: SipDN\nmetadata: { name: bench-${dn} }\nspec: { cluster: site-a, number: "${dn}", type: Extension, options: { password: { value: ${password(dn)} } } }\n`);
  return configOnFreePorts(HA, tmp, { mediaPorts: 4000, edit: (t) => t.replace('replicas: 2', `replicas: ${replicas}`) + '\n' + docs.join('') + extra });
}

class BenchSite extends LaunchedSite implements AgentSite {
  password(dn: string): string {
    return password(dn);
  }
}

interface Call {
  name: string;
  connID: string;
  /** Each leg with what it should hear. */
  legs: { agent: Agent; want: (h: Heard) => boolean }[];
  desktop: Desktop;
  thisDN: string;
}

async function place(site: BenchSite): Promise<{ calls: Call[]; agents: Agent[] }> {
  const calls: Call[] = [];
  const agents: Agent[] = [];
  const start = async (dn: string, k: number) => {
    const agent = await Agent.start(site, dn, toneFrequency(k), {});
    agents.push(agent);
    return agent;
  };
  for (let i = 0; i < CALLS; i++) {
    const [a, b] = [await start(String(7100 + 2 * i), 0), await start(String(7101 + 2 * i), 1)];
    const connID = await conference(a, b);
    calls.push({ name: `call ${a.dn}-${b.dn}`, connID, desktop: a.desktop!, thisDN: a.dn, legs: [{ agent: a, want: exactly([b.tone]) }, { agent: b, want: exactly([a.tone]) }] });
  }
  for (let j = 0; j < CONFERENCES; j++) {
    const [a, b, c] = [await start(String(7500 + 3 * j), 0), await start(String(7501 + 3 * j), 1), await start(String(7502 + 3 * j), 2)];
    const connID = await conference(a, b, c);
    await a.desktop!.client.listenDisconnect({ thisDN: a.dn, connID, otherDN: c.dn });
    calls.push({
      name: `conference ${a.dn}`,
      connID,
      desktop: a.desktop!,
      thisDN: a.dn,
      legs: [
        { agent: a, want: exactly([b.tone]) },
        { agent: b, want: exactly([a.tone]) },
        { agent: c, want: exactly([], true) },
      ],
    });
  }
  for (const call of calls) for (const leg of call.legs) await leg.agent.hears(leg.want, 15_000);
  return { calls, agents };
}

/** Samples every leg every 100 ms (300 ms windows); resolves with each leg's longest run of wrong samples, ms. */
function watchGaps(calls: Call[]): () => Promise<number[]> {
  const legs = calls.flatMap((c) => c.legs);
  const longest = legs.map(() => 0);
  const since: (number | undefined)[] = legs.map(() => undefined);
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const now = Date.now();
      legs.forEach((leg, i) => {
        const heard = leg.agent.media.heard(300);
        const ok = heard.packets >= 10 && leg.want(heard);
        if (!ok) since[i] ??= now;
        else if (since[i] !== undefined) {
          longest[i] = Math.max(longest[i]!, now - since[i]!);
          since[i] = undefined;
        }
      });
      await sleep(100);
    }
  })();
  return async () => {
    watching = false;
    await watcher;
    const end = Date.now();
    return longest.map((l, i) => Math.max(l, since[i] === undefined ? 0 : end - since[i]!));
  };
}

interface Round {
  fault: string;
  lost: number;
  /** Calls that still have their audio but that no replica answers for (QueryCall fails once things settled). */
  uncontrolled: number;
  gaps: number[];
  sipMs: number[];
  tlibMs: number[];
  sipFailed: number;
  tlibFailed: number;
}

/** Why requests went unanswered, counted (a status, an error). */
const unanswered = new Map<string, number>();

async function timed<T>(op: () => Promise<T>, outcome: (r: T) => string | true): Promise<number | undefined> {
  const t = Date.now();
  let why: string;
  try {
    const result = outcome(await op());
    if (result === true) return Date.now() - t;
    why = result;
  } catch (err) {
    why = (err as Error).message.slice(0, 80);
  }
  unanswered.set(why, (unanswered.get(why) ?? 0) + 1);
  return undefined;
}

/** Kills `pid` and measures what the calls notice; `restarted` says when the launcher has restarted it. */
async function round(fault: string, pid: number, calls: Call[], restarted: () => boolean): Promise<Round> {
  const stopGaps = watchGaps(calls);
  await sleep(500);
  process.kill(pid, 'SIGKILL');
  const [sip, tlib] = await Promise.all([
    Promise.all(calls.map((c) => timed(() => c.legs[0]!.agent.phone.calls.at(-1)!.request('OPTIONS'), (r) => r.status === 200 || `OPTIONS ${r.status}`))),
    Promise.all(calls.map((c) => timed(() => c.desktop.client.queryCall({ thisDN: c.thisDN, connID: c.connID }), (r) => r.event === 'EventPartyInfo' || `QueryCall ${r.event} ${String(r.ErrorCode ?? '')}`))),
  ]);
  await waitUntil(restarted, `the restart after killing ${fault}`, 30_000);
  await sleep(3000);
  const gaps = await stopGaps();
  let lost = 0;
  let uncontrolled = 0;
  for (const call of calls) {
    const ok = await Promise.all(call.legs.map((l) => l.agent.phone.calls.length > 0 && l.agent.hears(l.want, 5000).then(() => true, () => false)));
    if (ok.some((x) => !x)) {
      lost++;
      console.error(`  lost: ${call.name}`);
      continue;
    }
    // Audio alone is not enough: some replica must still own the call and answer for it.
    const info = await call.desktop.client.queryCall({ thisDN: call.thisDN, connID: call.connID }).catch(() => undefined);
    if (info?.event !== 'EventPartyInfo') uncontrolled++;
  }
  const served = (ms: (number | undefined)[]) => ms.filter((m): m is number => m !== undefined);
  return { fault, lost, uncontrolled, gaps, sipMs: served(sip), tlibMs: served(tlib), sipFailed: sip.filter((m) => m === undefined).length, tlibFailed: tlib.filter((m) => m === undefined).length };
}

async function failover(): Promise<Round[]> {
  const dns = [...Array.from({ length: 2 * CALLS }, (_, i) => String(7100 + i)), ...Array.from({ length: 3 * CONFERENCES }, (_, i) => String(7500 + i))];
  const run = launch(await benchConfig(dns, 2), tmp);
  const rounds: Round[] = [];
  let agents: Agent[] = [];
  try {
    await waitUntil(() => processLines(run.output()).size === 5, `the five process lines\n${run.output()}`, 90_000);
    const launched = LaunchedSite.from(run.output());
    const site = new BenchSite(launched.sipPort, launched.gatewayUrl, 'supervisor-secret');
    const placed = await place(site);
    agents = placed.agents;
    const { calls } = placed;
    console.log(`placed ${CALLS} calls and ${CONFERENCES} conferences (${agents.length} tone phones); ${loadLine()}`);
    for (const fault of FAULTS) {
      for (let k = 0; k < KILLS; k++) {
        const lines = latestProcesses(run.output());
        let victim: { name: string; pid: number };
        if (fault === 'signaling') {
          const replicas = [...lines].filter(([name]) => name.startsWith('signaling'));
          const owned = await Promise.all(replicas.map(([, p]) => scrape(p.metrics, 'huddle_calls_active').catch(() => 0)));
          const [name, p] = replicas[owned.indexOf(Math.max(...owned))]!;
          victim = { name, pid: p.pid };
        } else if (fault === 'media-controller') victim = { name: fault, pid: lines.get('media-controller')!.pid };
        else if (fault === 'rtpengine') {
          const found = processTree(run.child.pid!).find((p) => p.name === 'rtpengine');
          if (!found) throw new Error('no rtpengine under the launcher');
          victim = { name: fault, pid: found.pid };
        } else throw new Error(`unknown fault ${fault}`);
        const restartLine = new RegExp(`^ {2}${victim.name} {2}pid \\d+ {2}restarted$`, 'gm');
        const restartsBefore = (run.output().match(restartLine) ?? []).length;
        // rtpengine is restarted silently (no line): a new rtpengine under the launcher.
        const restarted =
          fault === 'rtpengine'
            ? () => processTree(run.child.pid!).some((p) => p.name === 'rtpengine' && p.pid !== victim.pid)
            : () => (run.output().match(restartLine) ?? []).length > restartsBefore;
        const r = await round(fault, victim.pid, calls, restarted);
        console.log(`  ${fault} #${k + 1} (${victim.name} pid ${victim.pid}): lost ${r.lost}, uncontrolled ${r.uncontrolled}, longest gap ${Math.max(...r.gaps)} ms, OPTIONS p99 ${percentile(r.sipMs, 99)} ms (${r.sipFailed} failed), QueryCall p99 ${percentile(r.tlibMs, 99)} ms (${r.tlibFailed} failed)`);
        rounds.push(r);
        if (unanswered.size > 0) console.log(`    unanswered so far: ${[...unanswered].map(([why, n]) => `${n} × ${why}`).join(', ')}`);
        // The restarted process settles (its replica lease, its media heartbeats) before the next kill.
        await sleep(3000);
      }
    }
  } finally {
    for (const agent of agents) await agent.close().catch(() => undefined);
    await stopChild(run.child);
  }
  return rounds;
}

/** The newest pid and metrics of each process the launcher printed (restarts included). */
function latestProcesses(output: string): Map<string, { pid: number; metrics: string }> {
  const lines = processLines(output);
  for (const m of output.matchAll(/^ {2}(\S+) {2}pid (\d+) {2}restarted$/gm)) {
    const known = lines.get(m[1]!);
    if (known) lines.set(m[1]!, { ...known, pid: Number(m[2]) });
  }
  return lines;
}

interface Cost {
  replicas: number;
  placed: number;
  succeeded: number;
  callsPerS: number;
  cpuMsPerCall: number;
}

/** sipp at CPS_RATE for CPS_SECONDS through the edge to a sipp uas (DN 7002's contact), whole launcher tree CPU. */
async function replicationCost(replicas: number): Promise<Cost> {
  const uacMediaPort = await freeMediaPort();
  const scenario = path.join(tmp, `uas-${replicas}.xml`);
  writeFileSync(scenario, readFileSync(path.join(import.meta.dirname, '../cps/uas.xml'), 'utf8').replace('UAC_MEDIA_PORT', String(uacMediaPort)));
  const uas = await startSippPeer(scenario);
  const contact = `\n---\napiVersion: sip.huddle.dev/v1alpha1\nkind: SipDN\nmetadata: { name: bench-uas }\nspec: { cluster: site-a, number: "7802", type: Extension, options: { contact: "sip:127.0.0.1:${uas.port}" } }\n`;
  const file = await configOnFreePorts(HA, tmp, {
    mediaPorts: 4000,
    // Both behind the edge, so that the difference is the replication alone.
    edit: (t) => t.replace('    replicas: 2', `    replicas: ${replicas}\n    edge: { enabled: true }`).replace('spec: { cluster: site-a, number: "7001", type: Extension, options: { password: { value: secret-7001 }, sip-trunk-access: ["9000"] } }', 'spec: { cluster: site-a, number: "7001", type: Extension, options: { sip-allow-unauthenticated-insecure: true } }') + contact,
  });
  const run = launch(file, tmp);
  try {
    await waitUntil(() => /^ {2}T-Library +ws:/m.test(run.output()), `the launcher's endpoints\n${run.output()}`, 180_000);
    const sip = Number(/^ {2}SIP +udp 127\.0\.0\.1:(\d+)/m.exec(run.output())![1]);
    await sleep(2000);
    const cpuBefore = treeCpuUs(run.child.pid!);
    const started = Date.now();
    const result = await runSippLoad({ target: `127.0.0.1:${sip}`, scenario: path.join(import.meta.dirname, '../cps/uac.xml'), service: '7802', rate: CPS_RATE, calls: CPS_RATE * CPS_SECONDS, pauseMs: 0, limit: CPS_RATE * 5, timeoutS: CPS_SECONDS + 60, mediaPort: uacMediaPort });
    const seconds = (Date.now() - started) / 1000;
    const cpuUs = treeCpuUs(run.child.pid!) - cpuBefore;
    const succeeded = result.stats.successful;
    if (succeeded < CPS_RATE * CPS_SECONDS) console.error(`replicas ${replicas}: ${result.stats.failed} failed calls: ${result.errors.slice(-600)} ${uas.errors().slice(-400)}`);
    return { replicas, placed: CPS_RATE * CPS_SECONDS, succeeded, callsPerS: succeeded / seconds, cpuMsPerCall: cpuUs / 1000 / Math.max(1, succeeded) };
  } finally {
    await stopChild(run.child);
    await uas.stop();
  }
}

function table(rounds: Round[]): void {
  console.log('\nfault              kills  calls lost  uncontrolled  longest gap/leg p50 / p99 / max (ms)  in-dialog OPTIONS p50 / p99 (ms)  QueryCall p50 / p99 (ms)  unanswered');
  for (const fault of FAULTS) {
    const rs = rounds.filter((r) => r.fault === fault);
    if (rs.length === 0) continue;
    const gaps = rs.flatMap((r) => r.gaps);
    const sip = rs.flatMap((r) => r.sipMs);
    const tlib = rs.flatMap((r) => r.tlibMs);
    const unanswered = rs.reduce((n, r) => n + r.sipFailed + r.tlibFailed, 0);
    console.log(
      `${fault.padEnd(18)} ${String(rs.length).padStart(5)}  ${String(rs.reduce((n, r) => n + r.lost, 0)).padStart(10)}  ${String(rs.reduce((n, r) => n + r.uncontrolled, 0)).padStart(12)}  ${`${percentile(gaps, 50)} / ${percentile(gaps, 99)} / ${Math.max(...gaps)}`.padStart(38)}  ${`${percentile(sip, 50)} / ${percentile(sip, 99)}`.padStart(32)}  ${`${percentile(tlib, 50)} / ${percentile(tlib, 99)}`.padStart(24)}  ${String(unanswered).padStart(10)}`,
    );
  }
}

const rounds = await failover();
table(rounds);
if (CPS_SECONDS > 0) {
  const costs = [await replicationCost(1), await replicationCost(2)];
  console.log(`\nreplication cost, sipp ${CPS_RATE} calls/s for ${CPS_SECONDS} s through the edge (CPU: the whole launcher tree)`);
  console.log('replicas  placed  succeeded  calls/s  CPU ms/call');
  for (const c of costs) console.log(`${String(c.replicas).padStart(8)}  ${String(c.placed).padStart(6)}  ${String(c.succeeded).padStart(9)}  ${c.callsPerS.toFixed(1).padStart(7)}  ${c.cpuMsPerCall.toFixed(2).padStart(11)}`);
}
if (unanswered.size > 0) console.log(`\nunanswered requests: ${[...unanswered].map(([why, n]) => `${n} × ${why}`).join(', ')}`);
console.log(`\n${loadLine()}`);
rmSync(tmp, { recursive: true, force: true });
