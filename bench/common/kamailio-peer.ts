/**
 * Kamailio as the peer of our benches, started as an operator runs it and as the peer baselines
 * measured it (/work/shared/peer-baselines, platform-facts "Peers as an operator runs them"):
 * the tlsf allocator for shared and private memory, and the cfg's own globals (children=2,
 * dns=no, rev_dns=no). Debian's build has DBG_SR_MEMORY, with which the packaged default
 * allocator (qm) keeps debug records on every allocation: 2-3x the CPU per call measured in
 * bench:sip-stack (see its main.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../common/process/logger.js';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { startRtpengine } from '../../common/supervisor/rtpengine.js';
import { sleep, stopChild, treeCpuUs } from './proc.js';

export const KAMAILIO_ALLOCATOR = 'tlsf';

/** Command-line arguments that set the allocator (-x shared memory, -X private memory). */
export function allocatorArgs(): string[] {
  return ['-x', KAMAILIO_ALLOCATOR, '-X', KAMAILIO_ALLOCATOR];
}

export function kamailioVersion(): string {
  const out = execFileSync(findBinary('kamailio', 'kamailio'), ['-v'], { encoding: 'utf8' });
  return /kamailio (\S+)/.exec(out)?.[1] ?? 'unknown';
}

/** The cfg's settings that change its cost (workers, DNS), read from the file itself so the header cannot drift from it. */
export function cfgSettings(cfgFile: string): string {
  const wanted = /^(children|dns|rev_dns|maxbuffer|disable_tcp)\s*=/;
  return readFileSync(cfgFile, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => wanted.test(l))
    .join(', ');
}

/** One line for a bench header: version, allocator, cfg settings. */
export function kamailioSettings(cfgFile: string): string {
  return `Kamailio ${kamailioVersion()} with -x ${KAMAILIO_ALLOCATOR} -X ${KAMAILIO_ALLOCATOR}, ${cfgSettings(cfgFile)}`;
}

/** Kamailio proxying to one UAS, with its own instance of our rtpengine binary and flags. */
export interface KamailioProxy {
  /** host:port callers send to. */
  sip: string;
  /** Its rtpengine's ng address (host:port). */
  rtpengineNg: string;
  /** CPU of Kamailio's processes and its rtpengine, µs. */
  cpuUs(): number;
  /** The pids of Kamailio's main process and of its rtpengine (the roots of cpuUs's trees). */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * Starts `cfgFile` (which reads UAS_URI and RTPENGINE_SOCK, e.g. bench/cps/kamailio.cfg) on a free
 * port, relaying to `uasUri`, with a fresh rtpengine of `mediaPorts` ports started as our server starts its own
 * (`rtpengineThreads`: its --num-threads, as a bench's own server has it; rtpengine's default when unset).
 */
export async function startKamailioProxy(cfgFile: string, uasUri: string, mediaPorts: number, rtpengineThreads?: number): Promise<KamailioProxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-kamailio-'));
  const media = await freePortRange(mediaPorts);
  const rtp = await startRtpengine({ portMin: media.min, portMax: media.max, dataDir: dir, log: createLogger('bench-rtpengine', 'warn'), name: 'rtpengine-kamailio', threads: rtpengineThreads });
  const port = await freePort();
  const args = [
    '-f', cfgFile, ...allocatorArgs(), '-DD', '-E',
    '-l', `udp:127.0.0.1:${port}`, '-P', path.join(dir, 'pid'), '-Y', dir, '-m', '512', '-M', '16',
    '-A', `UAS_URI="${uasUri}"`, '-A', `RTPENGINE_SOCK="udp:${rtp.ng}"`,
  ];
  const child: ChildProcess = spawn(findBinary('kamailio', 'kamailio'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  await sleep(1500);
  if (child.exitCode !== null) {
    await rtp.process.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`kamailio did not start:\n${err}`);
  }
  return {
    sip: `127.0.0.1:${port}`,
    rtpengineNg: rtp.ng,
    cpuUs: () => treeCpuUs(child.pid!) + (rtp.process.pid ? treeCpuUs(rtp.process.pid) : 0),
    pids: () => [child.pid!, ...(rtp.process.pid ? [rtp.process.pid] : [])],
    stop: async () => {
      await stopChild(child, () => child.kill('SIGTERM'));
      await rtp.process.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
