/** Runs the real sipp (Debian sip-tester) with a scenario from test/sip/scenarios, bounded in time. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import net from 'node:net';

export const SCENARIOS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scenarios');

export interface SippRun {
  /** 0 when every call succeeded. */
  code: number | null;
  output: string;
}

export interface SippOptions {
  scenario: string;
  transport: 'udp' | 'tcp';
  /** host:port to call (uac scenarios); absent for uas scenarios. */
  remote?: string;
  calls: number;
  rate?: number;
  service?: string;
  localPort?: number;
  timeoutS?: number;
}

export interface SippProcess {
  port: number;
  done: Promise<SippRun>;
  kill(): void;
}

export async function startSipp(o: SippOptions): Promise<SippProcess> {
  const bin = findBinary('sipp', 'sip-tester');
  const port = o.localPort ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-sipp-'));
  const args = [
    ...(o.remote ? [o.remote] : []),
    '-sf', path.join(SCENARIOS, o.scenario),
    '-i', '127.0.0.1',
    '-p', String(port),
    // sipp binds the media port and the ones above it (RTCP, video): reserve a block.
    '-mp', String((await freePortRange(4)).min),
    '-t', o.transport === 'udp' ? 'u1' : 't1',
    '-m', String(o.calls),
    '-r', String(o.rate ?? 10),
    '-s', o.service ?? 'service',
    '-timeout', `${o.timeoutS ?? 30}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
    '-error_file', path.join(dir, 'errors.log'),
  ];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const done = new Promise<SippRun>((resolve) => {
    child.on('close', (code) => {
      const errors = readIfPresent(path.join(dir, 'errors.log'));
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, output: output + (errors ? '\n--- sipp errors ---\n' + errors.slice(-5000) : '') });
    });
  });
  const proc = { port, done, kill: () => child.kill('SIGKILL') };
  // A TCP callee must be listening before we call it (UDP callers just retransmit).
  if (!o.remote && o.transport === 'tcp') await waitUntilListening(port, child, () => output);
  return proc;
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
