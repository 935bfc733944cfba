/**
 * The real sipp (Debian sip-tester) as a test peer, bounded in time: a UAC calling us, a UAS we
 * call, a trunk's far end or a phone (one process per party). Benchmarks drive sipp for load with
 * bench/common/sipp.ts, which reads its statistics file instead of its screen.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';

/** The SIP stack's scenarios; a relative scenario name is looked up here. */
export const SIP_SCENARIOS = path.resolve(import.meta.dirname, '../sip/scenarios');

export interface SippOptions {
  /** Absolute path, or a file name in SIP_SCENARIOS. */
  scenario: string;
  transport?: 'udp' | 'tcp';
  /** host:port to send the first request to (uac scenarios); absent for uas scenarios. */
  remote?: string;
  /** Calls before sipp exits (default 1). */
  calls?: number;
  rate?: number;
  /** [service]: the number called or registered. */
  service?: string;
  /** SIP port sipp uses (a trunk's contact port, or a phone's registered address). */
  localPort?: number;
  /** Loopback address sipp sends from (default 127.0.0.1): another 127.0.0.x is another source. */
  localHost?: string;
  /** Duration of a bare <pause/> (-d). */
  pauseMs?: number;
  /** Digest credentials (-au/-ap) for the scenario's [authentication]; sipp answers MD5 only. */
  auth?: { username: string; password: string };
  /** Echo received RTP back (-rtp_echo), so the party talking to sipp hears its own tone. */
  rtpEcho?: boolean;
  timeoutS?: number;
  /** A call whose next expected message does not come within this fails (-recv_timeout); default: only timeoutS bounds it. */
  recvTimeoutMs?: number;
}

export interface SippProcess {
  port: number;
  /** Resolves when sipp exits: code 0 when every call succeeded. */
  done: Promise<{ code: number | null; output: string }>;
  kill(): void;
}

const running = new Set<SippProcess>();

export async function startSipp(o: SippOptions): Promise<SippProcess> {
  const bin = findBinary('sipp', 'sip-tester');
  const port = o.localPort ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-sipp-'));
  const transport = o.transport ?? 'udp';
  const args = [
    ...(o.remote ? [o.remote] : []),
    '-sf', path.resolve(SIP_SCENARIOS, o.scenario),
    '-i', o.localHost ?? '127.0.0.1',
    '-p', String(port),
    // sipp binds the media port and the ones above it (RTCP, video): reserve a block.
    '-mp', String((await freePortRange(4)).min),
    ...(o.rtpEcho ? ['-rtp_echo'] : []),
    ...(o.auth ? ['-au', o.auth.username, '-ap', o.auth.password] : []),
    '-t', transport === 'udp' ? 'u1' : 't1',
    '-m', String(o.calls ?? 1),
    '-r', String(o.rate ?? 10),
    '-s', o.service ?? 'service',
    ...(o.pauseMs !== undefined ? ['-d', String(o.pauseMs)] : []),
    ...(o.recvTimeoutMs !== undefined ? ['-recv_timeout', String(o.recvTimeoutMs)] : []),
    '-timeout', `${o.timeoutS ?? 30}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
    '-error_file', path.join(dir, 'errors.log'),
  ];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const proc: SippProcess = {
    port,
    done: new Promise((resolve) => {
      child.on('close', (code) => {
        running.delete(proc);
        const errors = readIfPresent(path.join(dir, 'errors.log'));
        rmSync(dir, { recursive: true, force: true });
        resolve({ code, output: output + (errors ? `\n--- sipp errors (${errorKinds(errors)}) ---\n${errors.slice(-5000)}` : '') });
      });
    }),
    kill: () => child.kill('SIGKILL'),
  };
  running.add(proc);
  // A TCP callee must be listening before we call it (UDP callers just retransmit).
  if (!o.remote && transport === 'tcp') await waitUntilListening(port, child, () => output);
  return proc;
}

/** Kills every sipp still running (after each test), and waits for them to exit. */
export async function killSipps(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill();
  await Promise.all(all.map((p) => p.done));
}

async function waitUntilListening(port: number, child: { exitCode: number | null }, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sipp exited (${child.exitCode}) before listening:\n${output()}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sipp does not listen on 127.0.0.1:${port}:\n${output()}`);
}

function readIfPresent(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Counts from sipp's final statistics screen: [successful, failed] calls. */
export function callCounts(output: string): { successful: number; failed: number } {
  const s = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(output);
  const f = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(output);
  return { successful: Number(s?.[1] ?? -1), failed: Number(f?.[1] ?? -1) };
}

/** What sipp's error log holds, counted by the first line of each message it did not expect (all of them, where the log shown is only its tail). */
function errorKinds(errors: string): string {
  const counts = new Map<string, number>();
  for (const m of errors.matchAll(/(?:received '|call:\n)((?:SIP\/2\.0 \d{3}[^\r\n']*)|(?:[A-Z]+) )/g)) {
    const kind = m[1]!.trim();
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].map(([kind, n]) => `${n} x ${kind}`).join(', ') || 'none recognised';
}
