/**
 * sipp (Debian sip-tester) as a peer of a whole site: a trunk's far end or a phone, one process per
 * party, with its RTP echoed back (-rtp_echo) so the party talking to it hears its own tone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { SCENARIOS as SIP_SCENARIOS } from '../sip/sipp.js';

export const E2E_SCENARIOS = path.join(import.meta.dirname, 'scenarios');
/** The SIP-stack engineer's scenarios (uas-answer.xml: 180, 200 with SDP, ACK, waits for BYE). */
export { SIP_SCENARIOS };

export interface SippPeerOptions {
  /** Absolute path of the scenario file. */
  scenario: string;
  /** SIP port sipp uses (a trunk's contact port, or a phone's registered address). */
  port: number;
  /** host:port to send the first request to (uac scenarios). */
  remote?: string;
  /** [service]: the number called or registered. */
  service?: string;
  /** Duration of a bare <pause/> (-d). */
  pauseMs?: number;
  timeoutS?: number;
}

export interface SippPeer {
  port: number;
  /** Resolves when sipp exits: code 0 when its one call succeeded. */
  done: Promise<{ code: number | null; output: string }>;
  kill(): void;
}

const running = new Set<SippPeer>();

export async function sippPeer(o: SippPeerOptions): Promise<SippPeer> {
  const bin = findBinary('sipp', 'sip-tester');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-e2e-sipp-'));
  const args = [
    ...(o.remote ? [o.remote] : []),
    '-sf', o.scenario,
    '-i', '127.0.0.1',
    '-p', String(o.port),
    // sipp binds its audio and video RTP ports from -mp on: four ports.
    '-mp', String((await freePortRange(4)).min),
    '-rtp_echo',
    '-t', 'u1',
    '-m', '1',
    '-s', o.service ?? 'service',
    '-d', String(o.pauseMs ?? 1000),
    '-timeout', `${o.timeoutS ?? 30}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
    '-error_file', path.join(dir, 'errors.log'),
  ];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const peer: SippPeer = {
    port: o.port,
    done: new Promise((resolve) => {
      child.on('close', (code) => {
        running.delete(peer);
        let errors = '';
        try {
          errors = readFileSync(path.join(dir, 'errors.log'), 'utf8');
        } catch {
          errors = '';
        }
        rmSync(dir, { recursive: true, force: true });
        resolve({ code, output: output + (errors ? `\n--- sipp errors ---\n${errors.slice(-4000)}` : '') });
      });
    }),
    kill: () => child.kill('SIGKILL'),
  };
  running.add(peer);
  return peer;
}

/** Kills every sipp still running (after each test), and waits for them to exit. */
export async function killSippPeers(): Promise<void> {
  const peers = [...running];
  for (const p of peers) p.kill();
  await Promise.all(peers.map((p) => p.done));
}

/**
 * Registers `dn` from sipp, then leaves a uas on that same port to answer the DN's next call: by
 * itself (uas-answer.xml), or only after a remote answer (remote-answer-uas.xml).
 */
export async function sippPhone(sipPort: number, dn: string, o: { remoteAnswer?: boolean } = {}): Promise<SippPeer> {
  const phonePort = await freePort();
  const reg = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'register.xml'), port: phonePort, remote: `127.0.0.1:${sipPort}`, service: dn, timeoutS: 10 });
  const registered = await reg.done;
  if (registered.code !== 0) throw new Error(`sipp REGISTER ${dn} failed (${registered.code}):\n${registered.output}`);
  return sippPeer({ scenario: o.remoteAnswer ? path.join(E2E_SCENARIOS, 'remote-answer-uas.xml') : path.join(SIP_SCENARIOS, 'uas-answer.xml'), port: phonePort });
}
