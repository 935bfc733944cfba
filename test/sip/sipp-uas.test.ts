/** Our stack as the callee of a real sipp (Debian sip-tester) over UDP and TCP. */
import { afterEach, describe, expect, it } from 'vitest';
import { createSipStack, type SipStack, type SipStackOptions } from '../../signaling/sip/index.js';
import { dropEvery } from './lossy.js';
import { callCounts, startSipp } from '../support/sipp.js';

const ANSWER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

let uas: SipStack | undefined;
afterEach(async () => {
  await uas?.close(0);
  uas = undefined;
});

/** A UAS: "ring" rings until cancelled; anything else rings then answers; re-INVITEs with sendonly get recvonly. */
async function startUas(extra: Partial<SipStackOptions> = {}): Promise<{ stack: SipStack; udp: number; tcp: number; byes: () => number; cancels: () => number }> {
  const stack = await createSipStack({
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    ...extra,
  });
  uas = stack;
  let byes = 0;
  let cancels = 0;
  stack.onRequest((req) => {
    if (req.method !== 'INVITE') return req.respond(405);
    req.respond(180);
    const user = req.message.requestUri.scheme === 'tel' ? '' : req.message.requestUri.user;
    if (user === 'ring') {
      req.onCancel(() => cancels++);
      return;
    }
    const d = req.accept({ body: ANSWER });
    d.onRequest((r) => {
      const offer = r.message.body.toString();
      r.respond(200, { body: offer.includes('a=sendonly') ? ANSWER + 'a=recvonly\r\n' : ANSWER });
    });
    d.onTerminated((t) => {
      if (t.cause === 'remote-bye') byes++;
    });
  });
  const udp = stack.addresses.find((a) => a.transport === 'udp')!.port;
  const tcp = stack.addresses.find((a) => a.transport === 'tcp')!.port;
  return { stack, udp, tcp, byes: () => byes, cancels: () => cancels };
}

describe.each(['udp', 'tcp'] as const)('sipp caller over %s', (transport) => {
  it('20 calls INVITE/200/ACK/BYE all succeed', async () => {
    const u = await startUas();
    const sipp = await startSipp({ scenario: 'uac-call.xml', transport, remote: `127.0.0.1:${transport === 'udp' ? u.udp : u.tcp}`, calls: 20, rate: 20 });
    const run = await sipp.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 20, failed: 0 });
    expect(run.code, run.output).toBe(0);
    expect(u.byes()).toBe(20);
  });

  it('CANCEL while ringing: 200 to CANCEL, 487 to INVITE', async () => {
    const u = await startUas();
    const sipp = await startSipp({ scenario: 'uac-cancel.xml', transport, remote: `127.0.0.1:${transport === 'udp' ? u.udp : u.tcp}`, calls: 5, rate: 10, service: 'ring' });
    const run = await sipp.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 5, failed: 0 });
    expect(u.cancels()).toBe(5);
  });

  it('re-INVITE to hold (sendonly -> recvonly), then BYE', async () => {
    const u = await startUas();
    const sipp = await startSipp({ scenario: 'uac-reinvite.xml', transport, remote: `127.0.0.1:${transport === 'udp' ? u.udp : u.tcp}`, calls: 5, rate: 10 });
    const run = await sipp.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 5, failed: 0 });
    expect(u.byes()).toBe(5);
  });
});

describe('sipp caller over a lossy UDP link', () => {
  it('every third 200 we send is lost: 2xx retransmission and BYE retransmission recover all calls', async () => {
    const loss = dropEvery(3, ['SIP/2.0 200']);
    const u = await startUas({ wrapTransport: loss.wrap, timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
    const sipp = await startSipp({ scenario: 'uac-call.xml', transport: 'udp', remote: `127.0.0.1:${u.udp}`, calls: 12, rate: 12 });
    const run = await sipp.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 12, failed: 0 });
    expect(loss.dropped()).toBeGreaterThanOrEqual(6);
  });
});
