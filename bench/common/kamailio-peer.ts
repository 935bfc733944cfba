/**
 * Kamailio as the peer of our benches, started as an operator runs it and as the peer baselines
 * measured it (/work/shared/peer-baselines, platform-facts "Peers as an operator runs them"):
 * the tlsf allocator for shared and private memory, and the cfg's own globals (children=2,
 * dns=no, rev_dns=no). Debian's build has DBG_SR_MEMORY, with which the packaged default
 * allocator (qm) keeps debug records on every allocation: 2-3x the CPU per call measured in
 * bench:sip-stack (see its main.ts).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { findBinary } from '../../common/supervisor/child.js';

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
