/**
 * `npm run bench:pike`: how much of a one-source flood our SIP stack absorbs per core while
 * legitimate calls still go through. A UAS on our stack (bench/pike/uas.ts, compiled by tsc, on
 * its own CPU) gets, for BENCH_SECONDS at each flood rate, OPTIONS from sipp on 127.0.0.2 (the
 * flood, flood.xml) and, at the same time, INVITE/ACK/BYE calls from a second sipp on 127.0.0.1
 * (bench/sip-stack/uac.xml, BENCH_CALL_RATE calls/s). It runs once with spec.sip.rateLimit's
 * defaults (200 requests per 2 s, then a 60 s ban) and once without the limit, and prints per
 * flood rate: what sipp really sent, what the limiter dropped, the UAS's CPU, the flood messages
 * absorbed per CPU-second, and the legitimate calls that succeeded and failed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort } from '../../common/supervisor/ports.js';
import { compileBenchProgram, loadLine, onCpu, startStatsChild, type StatsChild } from '../common/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const FLOOD_RATES = (process.env.BENCH_RATES ?? '5000,10000,20000,40000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CALL_RATE = Number(process.env.BENCH_CALL_RATE ?? 20);
const FLOOD_SOURCE = '127.0.0.2';


/** With two CPUs or more the UAS has one to itself and both sipp share the other. */
const PIN = os.cpus().length >= 2 && process.env.BENCH_PIN !== '0';
const pinned = (cpu: number, bin: string, args: string[]): [string, string[]] => (PIN ? onCpu(cpu, bin, args) : [bin, args]);

interface Uas extends StatsChild<{ cpuUs: number; dropped: number }> {
  port: number;
}

async function startUas(compiled: string, limit: boolean): Promise<Uas> {
  const port = await freePort();
  const uas = await startStatsChild<{ cpuUs: number; dropped: number }>('UAS', pinned(1, process.execPath, [compiled, String(port), limit ? 'limit' : 'open']));
  return { port, ...uas };
}

interface SippResult {
  successful: number;
  failed: number;
}

/** One sipp run from `source` to completion (bounded by its own -timeout and a kill). */
async function runSipp(source: string, port: number, scenario: string, rate: number, calls: number): Promise<SippResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-pike-'));
  const args = [
    `127.0.0.1:${port}`,
    '-sf', scenario,
    '-i', source, '-p', String(await freePort()), '-mp', String(await freePort()),
    '-r', String(rate), '-m', String(calls), '-l', String(Math.max(rate * 2, 100)),
    '-buff_size', String(4 * 1024 * 1024),
    '-recv_timeout', '5000',
    '-timeout', `${SECONDS + 20}s`, '-timeout_error', '-nostdin',
    '-trace_stat', '-stf', path.join(dir, 'stat.csv'), '-fd', '1',
  ];
  const child = spawn(...pinned(0, findBinary('sipp', 'sip-tester'), args), { cwd: dir, stdio: 'ignore' });
  const killer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 30) * 1000);
  await new Promise((r) => child.once('exit', r));
  clearTimeout(killer);
  try {
    const lines = readFileSync(path.join(dir, 'stat.csv'), 'utf8').trim().split('\n');
    const head = lines[0]!.split(';');
    const last = lines.at(-1)!.split(';');
    const col = (name: string) => Number(last[head.indexOf(name)] ?? NaN);
    return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Row {
  limit: boolean;
  floodRate: number;
  floodSent: number;
  elapsedS: number;
  dropped: number;
  cpuShare: number;
  absorbedPerCpuSecond: number;
  calls: SippResult;
}

async function measure(compiled: string, limit: boolean, floodRate: number): Promise<Row> {
  const uas = await startUas(compiled, limit);
  try {
    const before = await uas.stats();
    const started = performance.now();
    const [flood, calls] = await Promise.all([
      runSipp(FLOOD_SOURCE, uas.port, path.join(here, 'flood.xml'), floodRate, floodRate * SECONDS),
      runSipp('127.0.0.1', uas.port, path.join(ROOT, 'bench', 'sip-stack', 'uac.xml'), CALL_RATE, CALL_RATE * SECONDS),
    ]);
    const elapsedS = (performance.now() - started) / 1000;
    const after = await uas.stats();
    const cpuS = (after.cpuUs - before.cpuUs) / 1e6;
    const floodSent = flood.successful + flood.failed;
    return {
      limit,
      floodRate,
      floodSent,
      elapsedS,
      dropped: after.dropped - before.dropped,
      cpuShare: cpuS / elapsedS,
      absorbedPerCpuSecond: floodSent / cpuS,
      calls,
    };
  } finally {
    await uas.stop();
  }
}

const compiled = compileBenchProgram(ROOT, 'bench-pike', 'bench/pike/uas.ts');
console.log(`bench:pike — ${loadLine()}; ${SECONDS} s per rate, legitimate calls ${CALL_RATE}/s from 127.0.0.1, flood from ${FLOOD_SOURCE}${PIN ? '; UAS on CPU 1, sipp on CPU 0' : ''}`);
console.log('limit  flood asked/s  flood sent/s  dropped  UAS CPU  flood msgs per CPU-s  calls ok  calls failed');
// "flood sent/s" is over the whole run (sipp's start and end included), so a little under what was asked.
for (const floodRate of FLOOD_RATES) {
  for (const limit of [true, false]) {
    const r = await measure(compiled, limit, floodRate);
    console.log(
      [
        (r.limit ? 'pike' : 'none').padEnd(5),
        String(r.floodRate).padStart(13),
        String(Math.round(r.floodSent / r.elapsedS)).padStart(13),
        String(r.dropped).padStart(8),
        `${(r.cpuShare * 100).toFixed(0)}%`.padStart(8),
        String(Math.round(r.absorbedPerCpuSecond)).padStart(21),
        String(r.calls.successful).padStart(9),
        String(r.calls.failed).padStart(13),
      ].join(' '),
    );
  }
}
