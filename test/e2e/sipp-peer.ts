/**
 * sipp (test/support/sipp.ts) as a peer of a whole site: a trunk's far end or a phone, one process
 * per party, with its RTP echoed back (-rtp_echo) so the party talking to it hears its own tone.
 */
import path from 'node:path';
import { freePort } from '../../common/supervisor/ports.js';
import { SIP_SCENARIOS, startSipp, type SippProcess } from '../support/sipp.js';

export const E2E_SCENARIOS = path.join(import.meta.dirname, 'scenarios');

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
  auth?: { username: string; password: string };
}

/** One call's sipp on `port`, echoing the RTP it gets. */
export function sippPeer(o: SippPeerOptions): Promise<SippProcess> {
  const { port, ...rest } = o;
  return startSipp({ ...rest, localPort: port, rtpEcho: true });
}

/**
 * Registers `dn` from sipp with its digest password, then leaves a uas on that same port to answer the DN's next call: by
 * itself (uas-answer.xml: 180, 200 with SDP, ACK, waits for BYE), or only after a remote answer
 * (remote-answer-uas.xml).
 */
export async function sippPhone(sipPort: number, dn: string, password: string, o: { remoteAnswer?: boolean } = {}): Promise<SippProcess> {
  const phonePort = await freePort();
  const reg = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'register.xml'), port: phonePort, remote: `127.0.0.1:${sipPort}`, service: dn, timeoutS: 10, auth: { username: dn, password } });
  const registered = await reg.done;
  if (registered.code !== 0) throw new Error(`sipp REGISTER ${dn} failed (${registered.code}):\n${registered.output}`);
  return sippPeer({ scenario: o.remoteAnswer ? path.join(E2E_SCENARIOS, 'remote-answer-uas.xml') : path.join(SIP_SCENARIOS, 'uas-answer.xml'), port: phonePort });
}
