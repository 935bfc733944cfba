/**
 * sipp (Debian `sip-tester`) as a load generator and as a peer: one process per role, statistics
 * read from its -trace_stat CSV (cumulative columns of the last line).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { sleep, stopChild } from './proc.js';

export interface SippStats {
  successful: number;
  failed: number;
  retransmissions: number;
  /** Messages that matched no call (a peer answering something sipp no longer knows). */
  outOfCall: number;
}

const ZERO: SippStats = { successful: 0, failed: 0, retransmissions: 0, outOfCall: 0 };

function readStats(file: string): SippStats {
  if (!existsSync(file)) return ZERO;
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  if (lines.length < 2) return ZERO;
  const head = lines[0]!.split(';');
  const last = lines.at(-1)!.split(';');
  const col = (name: string) => Number(last[head.indexOf(name)] ?? NaN);
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)'), retransmissions: col('Retransmissions(C)'), outOfCall: col('OutOfCallMsgs(C)') };
}

/** sipp binds its -mp port and the next ones (RTCP, video RTP/RTCP): all four must be free. */
export async function freeMediaPort(): Promise<number> {
  return (await freePortRange(4)).min;
}

function baseArgs(dir: string, scenario: string, port: number, mediaPort: number): string[] {
  return [
    '-sf', scenario,
    '-i', '127.0.0.1', '-p', String(port), '-mp', String(mediaPort),
    '-buff_size', String(4 * 1024 * 1024),
    '-nostdin',
    '-trace_stat', '-stf', path.join(dir, 'stat.csv'), '-fd', '1',
    '-trace_err', '-error_file', path.join(dir, 'errors.log'),
  ];
}

function lastErrors(dir: string): string {
  const file = path.join(dir, 'errors.log');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-12).join('\n') : '';
}

/** A sipp that answers (a UAS scenario) until stopped. */
export interface SippPeer {
  port: number;
  mediaPort: number;
  stats(): SippStats;
  errors(): string;
  stop(): Promise<void>;
}

/** `extraArgs`: more sipp options, e.g. `-l` to raise its limit on calls open at once. */
export async function startSippPeer(scenario: string, extraArgs: string[] = []): Promise<SippPeer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-sipp-peer-'));
  const port = await freePort();
  const mediaPort = await freeMediaPort();
  const child: ChildProcess = spawn(findBinary('sipp', 'sip-tester'), [...baseArgs(dir, scenario, port, mediaPort), ...extraArgs], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  await sleep(300);
  if (child.exitCode !== null) throw new Error(`sipp peer exited at once (${child.exitCode}): ${err}`);
  return {
    port,
    mediaPort,
    stats: () => readStats(path.join(dir, 'stat.csv')),
    errors: () => lastErrors(dir) + err,
    stop: async () => {
      await stopChild(child, () => child.kill('SIGTERM'), 3000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SippLoad {
  /** host:port of the server under test. */
  target: string;
  scenario: string;
  service: string;
  rate: number;
  calls: number;
  /** The scenario's <pause/> (ms). */
  pauseMs: number;
  /** Most calls in progress at once. */
  limit: number;
  /** Bound on the whole run. */
  timeoutS: number;
  /** sipp's own UDP media port (appears in its SDP). */
  mediaPort?: number;
}

export interface SippRun {
  stats: SippStats;
  errors: string;
  elapsedMs: number;
}

/** A UAC run to completion (or to its time bound). `onStart` gets the running child (e.g. to sample memory). */
export async function runSippLoad(load: SippLoad, onStart?: (child: ChildProcess) => void): Promise<SippRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-sipp-uac-'));
  const args = [
    load.target,
    ...baseArgs(dir, load.scenario, await freePort(), load.mediaPort ?? (await freeMediaPort())),
    '-s', load.service,
    '-r', String(load.rate), '-m', String(load.calls), '-l', String(load.limit),
    '-d', String(load.pauseMs),
    '-timeout', `${load.timeoutS}s`, '-timeout_error',
    // A call that gets no answer within 10 s is a failed call, not a hang.
    '-recv_timeout', '10000',
  ];
  const started = Date.now();
  const child = spawn(findBinary('sipp', 'sip-tester'), args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  onStart?.(child);
  const killer = setTimeout(() => child.kill('SIGKILL'), (load.timeoutS + 15) * 1000);
  await new Promise((r) => child.once('exit', r));
  clearTimeout(killer);
  try {
    return { stats: readStats(path.join(dir, 'stat.csv')), errors: (lastErrors(dir) + err).trim(), elapsedMs: Date.now() - started };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function diffStats(after: SippStats, before: SippStats): SippStats {
  return {
    successful: after.successful - before.successful,
    failed: after.failed - before.failed,
    retransmissions: after.retransmissions - before.retransmissions,
    outOfCall: after.outOfCall - before.outOfCall,
  };
}
