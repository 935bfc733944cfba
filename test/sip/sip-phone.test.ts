/** The scriptable test phone (test/support/sip-phone.ts) against a registrar/notifier on our stack. */
import { afterEach, describe, expect, it } from 'vitest';
import { createSipStack, DigestChallenger, type SipStack } from '../../signaling/sip/index.js';
import { SipPhone } from '../support/sip-phone.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

async function phone(user: string, transport: 'udp' | 'tcp' = 'udp'): Promise<SipPhone> {
  const p = await SipPhone.start({ user, transport, password: 'pw-' + user });
  open.push(p);
  return p;
}

/** A registrar + notifier: digest-checked REGISTER, SUBSCRIBE answered with two NOTIFYs. */
async function server(): Promise<{ stack: SipStack; port: number; tcpPort: number; bindings: Map<string, string> }> {
  const stack = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tcp', host: '127.0.0.1', port: 0 }] });
  open.push({ close: () => stack.close(0) });
  const challenger = new DigestChallenger({ realm: 'SiteA' });
  const bindings = new Map<string, string>();
  stack.onRequest(async (req) => {
    if (req.method === 'REGISTER') {
      const v = await challenger.verify(req.message, (u) => 'pw-' + u);
      if (!v.ok) return req.respond(401, { headers: { 'WWW-Authenticate': challenger.challenge({ stale: v.stale }) } });
      bindings.set(req.message.to.uri, req.message.get('contact')!);
      return req.respond(200, { headers: { Contact: req.message.get('contact')! + ';expires=3600' } });
    }
    if (req.method === 'SUBSCRIBE') {
      const d = req.accept({ headers: { Expires: '600' } });
      for (const [i, state] of ['active;expires=600', 'terminated;reason=timeout'].entries()) {
        await d.request('NOTIFY', { headers: { Event: 'conference', 'Subscription-State': state }, body: `<conference-info version="${i + 1}"/>`, contentType: 'application/conference-info+xml' });
      }
      return;
    }
    req.respond(405);
  });
  return { stack, port: stack.addresses[0]!.port, tcpPort: stack.addresses[1]!.port, bindings };
}

describe('SipPhone', () => {
  it('registers with digest auth, calls another phone that auto-answers, handles re-INVITE and hangs up', async () => {
    const reg = await server();
    const a = await phone('7001');
    const b = await phone('7002', 'tcp');
    expect((await a.register(`sip:127.0.0.1:${reg.port}`, 'sip:7001@SiteA')).status).toBe(200);
    expect((await b.register(`sip:127.0.0.1:${reg.tcpPort}`, 'sip:7002@SiteA')).status).toBe(200);
    expect(reg.bindings.get('sip:7002@SiteA')).toContain(';transport=tcp');

    b.onIncoming(async (offer) => `answer-to(${offer})`);
    b.onReinvite((offer) => (offer.includes('sendonly') ? 'recvonly' : 'sendrecv'));
    const call = await a.call(b.contact, 'offer-a');
    if (!call.answered) throw new Error(`call failed ${call.status}`);
    expect(call.answerSdp).toBe('answer-to(offer-a)');
    const inc = await b.waitForIncoming();
    expect(inc.offerSdp).toBe('offer-a');
    const hold = await call.dialog.request('INVITE', { body: 'sendonly' });
    expect(hold.body.toString()).toBe('recvonly');
    expect(b.calls).toHaveLength(1);
    await a.hangup();
    expect((await inc.dialog.terminated).cause).toBe('remote-bye');
    expect(b.calls).toHaveLength(0);
  });

  it('a failed call reports the status; an unanswering phone says 480', async () => {
    const a = await phone('7003');
    const b = await phone('7004');
    const out = await a.call(b.contact, 'offer');
    expect(out).toEqual({ answered: false, status: 480, reason: 'Temporarily Unavailable' });
  });

  it('subscribes and collects NOTIFY bodies', async () => {
    const srv = await server();
    const a = await phone('7005');
    const sub = await a.subscribe(`sip:conf1@127.0.0.1:${srv.port}`, 'conference');
    expect(sub.response.status).toBe(200);
    expect(await sub.waitForNotifies(2)).toEqual(['<conference-info version="1"/>', '<conference-info version="2"/>']);
  });
});
