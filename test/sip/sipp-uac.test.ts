/** Our stack as the caller of a real sipp (Debian sip-tester) callee over UDP and TCP. */
import { afterEach, describe, expect, it } from 'vitest';
import { createSipStack, type SipStack, type SipStackOptions } from '../../signaling/sip/index.js';
import { dropEvery } from './lossy.js';
import { callCounts, startSipp, type SippProcess } from '../support/sipp.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n';

let uac: SipStack | undefined;
let sippProc: SippProcess | undefined;
afterEach(async () => {
  sippProc?.kill();
  sippProc = undefined;
  await uac?.close(0);
  uac = undefined;
});

async function startUac(extra: Partial<SipStackOptions> = {}): Promise<SipStack> {
  uac = await createSipStack({
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    ...extra,
  });
  return uac;
}

function target(port: number, transport: 'udp' | 'tcp'): string {
  return `sip:sipp@127.0.0.1:${port}${transport === 'tcp' ? ';transport=tcp' : ''}`;
}

describe.each(['udp', 'tcp'] as const)('calling sipp over %s', (transport) => {
  it('3 calls: 180, 200 with SDP, ACK, our BYE', async () => {
    const stack = await startUac();
    sippProc = await startSipp({ scenario: 'uas-answer.xml', transport, calls: 3 });
    for (let i = 0; i < 3; i++) {
      const call = stack.invite(target(sippProc.port, transport), { body: OFFER });
      const ringing: number[] = [];
      call.onProvisional((r) => ringing.push(r.status));
      const res = await call.result;
      if (!res.ok) throw new Error(`call ${i} failed: ${res.status} ${res.reason}`);
      expect(ringing).toContain(180);
      expect(res.response.body.toString()).toContain('m=audio');
      expect((await res.dialog.bye()).status).toBe(200);
    }
    const run = await sippProc.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 3, failed: 0 });
  });

  it('CANCEL after 180 ends the call with 487', async () => {
    const stack = await startUac();
    sippProc = await startSipp({ scenario: 'uas-ring-cancel.xml', transport, calls: 1 });
    const call = stack.invite(target(sippProc.port, transport));
    call.onProvisional((r) => {
      if (r.status === 180) call.cancel();
    });
    const res = await call.result;
    expect(res.ok ? 200 : res.status).toBe(487);
    const run = await sippProc.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 1, failed: 0 });
  });

  it('re-INVITE to hold, then BYE', async () => {
    const stack = await startUac();
    sippProc = await startSipp({ scenario: 'uas-reinvite.xml', transport, calls: 1 });
    const res = await stack.invite(target(sippProc.port, transport), { body: OFFER }).result;
    if (!res.ok) throw new Error(`call failed: ${res.status}`);
    const hold = await res.dialog.request('INVITE', { body: OFFER + 'a=sendonly\r\n' });
    expect(hold.status).toBe(200);
    expect(hold.body.toString()).toContain('a=recvonly');
    expect((await res.dialog.bye()).status).toBe(200);
    const run = await sippProc.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 1, failed: 0 });
  });
});

describe('calling sipp over a lossy UDP link', () => {
  it('lost INVITEs and BYEs are recovered by Timer A and Timer E retransmission', async () => {
    // ACKs are not dropped here: sipp's scenario would see our BYE overtake a lost ACK (stack.test.ts covers ACK loss).
    const loss = dropEvery(2, ['INVITE', 'BYE']);
    const stack = await startUac({ wrapTransport: loss.wrap, timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
    sippProc = await startSipp({ scenario: 'uas-answer.xml', transport: 'udp', calls: 4 });
    for (let i = 0; i < 4; i++) {
      const res = await stack.invite(target(sippProc.port, 'udp'), { body: OFFER }).result;
      if (!res.ok) throw new Error(`call ${i} failed: ${res.status} ${res.reason}`);
      expect((await res.dialog.bye()).status).toBe(200);
    }
    const run = await sippProc.done;
    expect(callCounts(run.output), run.output).toEqual({ successful: 4, failed: 0 });
    expect(loss.dropped()).toBeGreaterThanOrEqual(4);
  });
});
