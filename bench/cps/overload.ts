/**
 * The overload step of bench:cps (BENCH_CPS_OVERLOAD=1; issue 17 point 6): INVITEs at 1.5x and 3x
 * the highest clean rate, each call held a while. Reported per rate, from sipp's message counts
 * (-trace_counts): INVITEs answered 200 or 503, those with no final answer (timed out), established
 * calls that failed afterwards (a 200 without its BYE's 200), and, from the server's metrics, why
 * calls were refused. Then the recovery time: from the last INVITE of the flood until a new call
 * (placed every 250 ms, a 503 failing it) is answered 200.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort } from '../../common/supervisor/ports.js';
import { loadLine, sleep } from '../common/proc.js';
import { freeMediaPort, runSippLoad } from '../common/sipp.js';

const here = import.meta.dirname;
const FACTORS = (process.env.BENCH_CPS_OVERLOAD_FACTORS ?? '1.5,3').split(',').map(Number);
/** How long each rate is kept up, and how long an answered call is held. */
const SECONDS = Number(process.env.BENCH_CPS_OVERLOAD_SECONDS ?? 5);
const HOLD_MS = Number(process.env.BENCH_CPS_OVERLOAD_HOLD_MS ?? 2000);
/** sipp gives up on an INVITE (or a BYE) after this: a call timed out. */
const RECV_TIMEOUT_MS = 15_000;
/** Recovery is looked for this long at most. */
const RECOVERY_LIMIT_MS = 60_000;

export interface OverloadTarget {
  name: string;
  /** host:port sipp calls. */
  sip: string;
  /** The server's /metrics, when it has one. */
  metricsUrl?: string;
}

interface Counts {
  invites: number;
  ok: number;
  refused: number;
  byeOk: number;
}

/** The last line of sipp's message counts: the first 200 answers the INVITE, the second the BYE. */
function readCounts(dir: string): Counts {
  const file = readdirSync(dir).find((f) => f.endsWith('_counts.csv'));
  if (!file) throw new Error(`sipp wrote no message counts in ${dir}`);
  const lines = readFileSync(path.join(dir, file), 'utf8').trim().split('\n');
  const head = lines[0]!.split(';');
  const last = lines.at(-1)!.split(';');
  const cols = (re: RegExp) => head.flatMap((h, i) => (re.test(h) ? [Number(last[i])] : []));
  const [ok = 0, byeOk = 0] = cols(/^\d+_200_Recv$/);
  return { invites: cols(/^\d+_INVITE_Sent$/)[0] ?? 0, ok, refused: cols(/^\d+_503_Recv$/)[0] ?? 0, byeOk };
}

/** Refusals by reason from the server's metrics (reason -> count), summed over requests. */
async function refusals(url: string | undefined): Promise<Map<string, number>> {
  const byReason = new Map<string, number>();
  if (!url) return byReason;
  const text = await (await fetch(url)).text();
  for (const line of text.split('\n')) {
    const m = /^huddle_signaling_(?:admission_refused_total\{.*reason="([^"]+)".*\}|(setup_timeouts)_total(?:\{.*\})?) (\S+)$/.exec(line);
    if (m) byReason.set(m[1] ?? m[2]!, (byReason.get(m[1] ?? m[2]!) ?? 0) + Number(m[3]));
  }
  return byReason;
}

/** The admission figures the server exports, read once. */
async function gauges(url: string): Promise<string> {
  const text = await (await fetch(url)).text();
  const lines = text.split('\n');
  const read = (name: string) => {
    const line = lines.find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  const ms = (name: string) => `${Math.round(read(name) * 1000)}`;
  return `queue ${read('huddle_signaling_model_queue_depth')}, legs setting up ${read('huddle_signaling_legs_setting_up')}, loop ${ms('huddle_signaling_event_loop_delay_seconds')} ms, media ${ms('huddle_signaling_media_latency_seconds')} ms, calls ${read('huddle_calls_active')}`;
}

/** With BENCH_CPS_OVERLOAD_TRACE=1, the server's admission figures every second until `step.over`. */
async function trace(url: string | undefined, started: number, step: { over: boolean }): Promise<void> {
  if (!url || !process.env.BENCH_CPS_OVERLOAD_TRACE) return;
  while (!step.over) {
    console.log(`      t=${((Date.now() - started) / 1000).toFixed(1)} s: ${await gauges(url).catch((e: Error) => e.message)}`);
    await sleep(1000);
  }
}

/** One flood: sipp at `rate` for SECONDS with the overload scenario; resolves with its message counts. */
async function flood(target: OverloadTarget, rate: number): Promise<Counts & { elapsedMs: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-overload-'));
  const calls = Math.round(rate * SECONDS);
  const args = [
    target.sip,
    '-sf', path.join(here, 'uac-overload.xml'),
    // A media port of its own: the machine is shared, and a port chosen at the bench's start may be taken by now.
    '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freeMediaPort()),
    '-buff_size', String(4 * 1024 * 1024),
    '-nostdin', '-trace_counts', '-trace_err', '-error_file', path.join(dir, 'errors.log'),
    '-s', '7002', '-r', String(rate), '-m', String(calls), '-l', String(calls),
    '-d', String(HOLD_MS),
    '-recv_timeout', String(RECV_TIMEOUT_MS),
    '-timeout', `${SECONDS + 60}s`, '-timeout_error',
  ];
  const started = Date.now();
  const child = spawn(findBinary('sipp', 'sip-tester'), args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const killer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 75) * 1000);
  await new Promise((r) => child.once('exit', r));
  clearTimeout(killer);
  try {
    const counts = readCounts(dir);
    if (counts.invites === 0) throw new Error('sipp sent no INVITE');
    return { ...counts, elapsedMs: Date.now() - started };
  } catch (e) {
    const errors = existsSync(path.join(dir, 'errors.log')) ? readFileSync(path.join(dir, 'errors.log'), 'utf8').slice(-800) : '';
    throw new Error(`${(e as Error).message}\n${err}\n${errors}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** From `since` (the flood's last INVITE), calls placed every 250 ms until one is answered 200: ms until that call was placed. */
async function recovery(target: OverloadTarget, since: number): Promise<number | undefined> {
  const mediaPort = await freeMediaPort();
  while (Date.now() - since < RECOVERY_LIMIT_MS) {
    const placed = Date.now();
    const probe = runSippLoad({ target: target.sip, scenario: path.join(here, 'uac.xml'), service: '7002', rate: 1, calls: 1, pauseMs: 0, limit: 1, timeoutS: 20, mediaPort });
    const [run] = await Promise.all([probe, sleep(250)]);
    if (run.stats.successful === 1) return Math.max(0, placed - since);
  }
  return undefined;
}

/** The overload step against one server, at 1.5x and 3x `cleanRate`. */
export async function overloadStep(target: OverloadTarget, cleanRate: number): Promise<void> {
  console.log(`\nOverload (${target.name}): ${SECONDS} s at ${FACTORS.map((f) => `${f}x`).join(' and ')} the highest clean rate (${cleanRate}/s), calls held ${HOLD_MS} ms | ${loadLine()}`);
  for (const factor of FACTORS) {
    const rate = Math.round(cleanRate * factor);
    const before = await refusals(target.metricsUrl);
    const floodStart = Date.now();
    const placing = flood(target, rate);
    const step = { over: false };
    const tracing = trace(target.metricsUrl, floodStart, step);
    // The flood's last INVITE leaves SECONDS after its first; recovery is timed from then.
    await sleep(SECONDS * 1000);
    const floodEnd = Date.now();
    const [c, recoveredMs] = await Promise.all([placing, recovery(target, floodEnd)]);
    step.over = true;
    await tracing;
    const after = await refusals(target.metricsUrl);
    const reasons = [...after].map(([r, n]) => [r, n - (before.get(r) ?? 0)] as const).filter(([, n]) => n > 0);
    const unanswered = c.invites - c.ok - c.refused;
    console.log(
      `  ${String(factor).padStart(3)}x ${String(rate).padStart(5)}/s: ${c.invites} INVITEs: 200 ${c.ok}, 503 ${c.refused}, timed out ${unanswered}; ` +
        `established ${c.ok}, failed after 200 ${c.ok - c.byeOk}; recovery ${recoveredMs === undefined ? `> ${RECOVERY_LIMIT_MS} ms` : `${recoveredMs} ms`} ` +
        `(sipp done ${((c.elapsedMs - (floodEnd - floodStart)) / 1000).toFixed(1)} s after the last INVITE)` +
        (reasons.length > 0 ? `\n        refused by: ${reasons.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''),
    );
    // The held calls of this rate end before the next one starts.
    await sleep(HOLD_MS + 3000);
  }
}
