/**
 * Third-party call control from desktops with our test phones: MakeCall (RFC 3725, the caller's
 * phone first), HoldCall/RetrieveCall with music to the held party, AnswerCall on a phone without
 * remote answer, and a bad request of each kind answered by its EventError without any change to
 * the call or its audio. The SIP and call metrics follow the calls.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { TEvent } from '../../common/tlib/messages.js';
import { TlibClient, TlibError } from '../../tlib-api/client/index.js';
import { SipPhone } from '../support/sip-phone.js';
import { callEvents, exactly, metric, Site, until, type Agent } from './site.js';

/** Resolves with the TlibError a request is refused with (fails if it is accepted). */
async function refused(request: Promise<TEvent>): Promise<TlibError> {
  const outcome = await request.then(
    (event) => new Error(`expected an EventError, got ${JSON.stringify(event)}`),
    (err: unknown) => err,
  );
  if (!(outcome instanceof TlibError)) throw outcome;
  return outcome;
}

describe('call control from desktops', () => {
  let site: Site;
  let a: Agent;
  let b: Agent;
  /** The order in which phones were offered calls. */
  const invited: string[] = [];

  beforeAll(async () => {
    site = await Site.start();
    a = await site.agent('7001', 0);
    b = await site.agent('7002', 1);
    for (const agent of [a, b]) {
      agent.phone.onIncoming((offer) => {
        invited.push(agent.dn);
        return agent.media.answer(offer);
      });
    }
  });
  afterAll(async () => {
    await site?.stop();
  });

  let connID: string;

  it('MakeCall 7001→7002: 7001 phone is called first, then 7002; both desktops follow; two-way audio; metrics move', async () => {
    expect(await metric(site, 'huddle_sip_registrations')).toBe(2);
    const invitesOut = await metric(site, 'huddle_sip_requests_total', { direction: 'out', method: 'INVITE' });
    const answered = await metric(site, 'huddle_sip_responses_total', { direction: 'in', method: 'INVITE', code: '200' });

    const dialing = await a.desktop!.client.makeCall({ thisDN: '7001', otherDN: '7002' });
    expect(dialing).toMatchObject({ event: 'EventDialing', ThisDN: '7001', OtherDN: '7002', CallType: 'Internal' });
    connID = dialing.ConnID!;
    expect(connID).toMatch(/^[0-9a-f]{16}$/);
    await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === connID, 'EventEstablished on 7001');
    await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === connID, 'EventEstablished on 7002');
    expect(invited).toEqual(['7001', '7002']);
    expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished']);
    expect(callEvents(b.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished']);
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));

    expect(await metric(site, 'huddle_calls_active')).toBe(1);
    expect(await metric(site, 'huddle_sip_requests_total', { direction: 'out', method: 'INVITE' })).toBe(invitesOut + 2);
    // A phone's 200 may be retransmitted (and counted) before our ACK reaches it on a loaded machine.
    expect(await metric(site, 'huddle_sip_responses_total', { direction: 'in', method: 'INVITE', code: '200' })).toBeGreaterThanOrEqual(answered + 2);
  });

  it('HoldCall: 7002 hears the configured music, 7001 hears nothing; RetrieveCall restores two-way audio', async () => {
    const held = await a.desktop!.client.holdCall({ thisDN: '7001', connID });
    expect(held).toMatchObject({ event: 'EventHeld', ThisDN: '7001', ConnID: connID, OtherDN: '7002' });
    await b.hears(exactly([], true));
    await a.hears((h) => h.tones.length === 0 && !h.music);

    const retrieved = await a.desktop!.client.retrieveCall({ thisDN: '7001', connID });
    expect(retrieved).toMatchObject({ event: 'EventRetrieved', ThisDN: '7001', ConnID: connID, OtherDN: '7002' });
    await b.hears(exactly([a.tone]));
    await a.hears(exactly([b.tone]));
    expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventHeld', 'EventRetrieved']);
  });

  it('each bad request gets its EventError (code and message) and changes neither the call nor its audio', async () => {
    const client = a.desktop!.client;
    const restricted = await TlibClient.connect({ url: site.gatewayUrl, token: 'agent-7001-secret', reconnect: false });
    onTestFinished(() => restricted.close());
    const parties = async () => (await client.queryCall({ thisDN: '7001', connID })).Parties;
    const before = await parties();
    expect(before).toHaveLength(2);
    const holdErrors = await metric(site, 'huddle_tlib_requests_total', { request: 'HoldCall', result: 'error' });
    const cases: { what: string; request: () => Promise<TEvent>; code: number; message: RegExp }[] = [
      { what: 'unknown attribute', request: () => client.request('HoldCall', { ThisDN: '7001', ConnID: connID, Bogus: 1 } as never), code: 53, message: /unknown attribute "Bogus"/ },
      { what: 'missing ConnID', request: () => client.request('HoldCall', { ThisDN: '7001' }), code: 53, message: /needs attribute ConnID/ },
      { what: 'ConnID not 16 hex digits', request: () => client.holdCall({ thisDN: '7001', connID: 'not-a-connid' }), code: 56, message: /16 lowercase hexadecimal/ },
      { what: 'no such call', request: () => client.holdCall({ thisDN: '7001', connID: 'ffffffffffffffff' }), code: 56, message: /no call with ConnID/ },
      { what: 'DN not configured', request: () => client.registerAddress({ thisDN: '7999' }), code: 59, message: /DN 7999 is not configured/ },
      { what: 'DN not registered by this client', request: () => client.holdCall({ thisDN: '7004', connID }), code: 41, message: /not registered/ },
      { what: 'retrieve a call not held', request: () => client.retrieveCall({ thisDN: '7001', connID }), code: 43, message: /does not hold/ },
      { what: 'called number without route', request: () => client.makeCall({ thisDN: '7001', otherDN: '12345' }), code: 71, message: /neither a DN of this site nor a number matching a Trunk prefix/ },
      { what: 'add a party already in the call', request: () => client.singleStepConference({ thisDN: '7001', connID, otherDN: '7002' }), code: 53, message: /already a party/ },
      { what: 'delete from a two-party call', request: () => client.deleteFromConference({ thisDN: '7001', connID, otherDN: '7002' }), code: 565, message: /needs a conference of three or more parties/ },
      { what: 'complete without consultation', request: () => client.completeConference({ thisDN: '7001', connID }), code: 565, message: /has no consultation call/ },
      { what: 'unknown request', request: () => client.request('TransferCall' as never, { ThisDN: '7001', ConnID: connID }), code: 53, message: /TransferCall/ },
      { what: 'DN outside the token', request: () => restricted.holdCall({ thisDN: '7002', connID }), code: 53, message: /ThisDN 7002 is not allowed for this client's token/ },
      { what: 'requester not a party of the call', request: () => client.holdCall({ thisDN: '7003', connID }), code: 56, message: /DN 7003 is not a party of call/ },
    ];
    // The requester of the last case: registered, but not in the call.
    await client.registerAddress({ thisDN: '7003' });
    for (const c of cases) {
      const err = await refused(c.request());
      expect({ what: c.what, code: err.ErrorCode }).toEqual({ what: c.what, code: c.code });
      expect(err.ErrorMessage, c.what).toMatch(c.message);
      expect(err.event?.event, c.what).toBe('EventError');
      expect(await parties(), c.what).toEqual(before);
    }
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));
    expect(callEvents(b.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished']);
    expect(await metric(site, 'huddle_calls_active')).toBe(1);
    expect(await metric(site, 'huddle_tlib_requests_total', { request: 'HoldCall', result: 'error' })).toBeGreaterThan(holdErrors);
  });

  it('ReleaseCall ends the call for both; the metrics return to idle', async () => {
    const byesOut = await metric(site, 'huddle_sip_requests_total', { direction: 'out', method: 'BYE' });
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7002');
    await a.hears((h) => h.packets === 0);
    await b.hears((h) => h.packets === 0);
    expect(await metric(site, 'huddle_calls_active')).toBe(0);
    await until(async () => (await metric(site, 'huddle_sip_legs_active')) === 0, 'no SIP leg left');
    expect(await metric(site, 'huddle_sip_requests_total', { direction: 'out', method: 'BYE' })).toBe(byesOut + 2);
  });

  it('the phone holds and resumes by re-INVITE (sendonly, then sendrecv): EventHeld/EventRetrieved, music to the other party', async () => {
    const since = a.desktop!.events.length;
    await a.dial('7002');
    const established = await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && a.desktop!.events.indexOf(e) >= since, 'EventEstablished on 7001');
    const call = established.ConnID!;
    await b.hears(exactly([a.tone]));
    const dialog = a.phone.calls.at(-1)!;
    const hold = await dialog.request('INVITE', { body: a.media.offer().replace('a=sendrecv', 'a=sendonly'), contentType: 'application/sdp' });
    expect(hold.status).toBe(200);
    await a.desktop!.waitFor((e) => e.event === 'EventHeld' && e.ConnID === call, 'EventHeld on 7001');
    await b.hears(exactly([], true));
    const resume = await dialog.request('INVITE', { body: a.media.offer(), contentType: 'application/sdp' });
    expect(resume.status).toBe(200);
    a.media.accept(resume.body.toString());
    await a.desktop!.waitFor((e) => e.event === 'EventRetrieved' && e.ConnID === call, 'EventRetrieved on 7001');
    await b.hears(exactly([a.tone]));
    await a.hears(exactly([b.tone]));
    expect(callEvents(a.desktop!, call)).toEqual(['EventDialing', 'EventEstablished', 'EventHeld', 'EventRetrieved']);
    await a.phone.hangup();
    await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === call, 'EventReleased on 7002');
    await until(async () => (await metric(site, 'huddle_sip_legs_active')) === 0, 'no SIP leg left');
  });

  it('huddle_sip_registrations follows a phone that registers and unregisters (Expires: 0)', async () => {
    const phone = await SipPhone.start({ user: '7005', password: site.password('7005') });
    onTestFinished(() => phone.close());
    const registrar = `sip:127.0.0.1:${site.sipPort}`;
    const registers = await metric(site, 'huddle_sip_requests_total', { direction: 'in', method: 'REGISTER' });
    expect((await phone.register(registrar, 'sip:7005@127.0.0.1')).status).toBe(200);
    expect(await metric(site, 'huddle_sip_registrations')).toBe(3);
    expect((await phone.register(registrar, 'sip:7005@127.0.0.1', phone.contact, { expires: 0 })).status).toBe(200);
    expect(await metric(site, 'huddle_sip_registrations')).toBe(2);
    // Each REGISTER is digest-challenged first: the 401'd request and its authenticated retry.
    expect(await metric(site, 'huddle_sip_requests_total', { direction: 'in', method: 'REGISTER' })).toBe(registers + 4);
    expect(await metric(site, 'huddle_sip_responses_total', { direction: 'out', method: 'REGISTER', code: '401' })).toBeGreaterThanOrEqual(2);
    expect(await metric(site, 'huddle_sip_responses_total', { direction: 'out', method: 'REGISTER', code: '200' })).toBeGreaterThanOrEqual(4);
  });

  it('AnswerCall for a phone without remote answer: a clear EventError, and the phone keeps ringing', async () => {
    b.phone.onIncoming((offer) => b.media.answer(offer), { ringMs: 60_000 });
    const dialing = await a.desktop!.client.makeCall({ thisDN: '7001', otherDN: '7002' });
    const call = dialing.ConnID!;
    await b.desktop!.waitFor((e) => e.event === 'EventRinging' && e.ConnID === call, 'EventRinging on 7002');
    const err = await refused(b.desktop!.client.answerCall({ thisDN: '7002', connID: call }));
    expect(err.ErrorCode).toBe(51);
    expect(err.ErrorMessage).toMatch(/does not accept a remote answer \(option remote-answer is false\)/);
    const info = await a.desktop!.client.queryCall({ thisDN: '7001', connID: call });
    expect(info.Parties).toEqual([
      expect.objectContaining({ DN: '7001', Role: 'Origination', State: 'Dialing' }),
      expect.objectContaining({ DN: '7002', Role: 'Destination', State: 'Ringing' }),
    ]);
    expect(callEvents(b.desktop!, call)).toEqual(['EventRinging']);
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID: call });
    await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === call, 'EventReleased on 7002');
    b.phone.onIncoming((offer) => b.media.answer(offer));
  });
});
