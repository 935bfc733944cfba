/**
 * Calls with real sipp peers: sipp as the far end of Trunk 9000 (inbound to 7001 released from
 * either side or cancelled, outbound by the "0" prefix) and as phones that REGISTER and answer with
 * SDP (by themselves, or after a remote answer). Every sipp echoes the RTP it gets, so the agent
 * talking to it hears its own tone only if media flows both ways through rtpengine.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { freePort } from '../../common/supervisor/ports.js';
import { callEvents, exactly, metric, Site, until, type Agent } from './site.js';
import { killSipps } from '../support/sipp.js';
import { E2E_SCENARIOS, sippPeer, sippPhone } from './sipp-peer.js';

describe('calls with sipp as trunk peer and as phone', () => {
  let site: Site;
  let trunkPort: number;
  let a: Agent;
  let b: Agent;

  beforeAll(async () => {
    trunkPort = await freePort();
    site = await Site.start({
      edit: (yaml) =>
        yaml
          .replace('contact: sip:127.0.0.1:5090', `contact: sip:127.0.0.1:${trunkPort}`)
          .replace('number: "7003", type: Extension, options: {', 'number: "7003", type: Extension, options: { remote-answer: true,'),
    });
    a = await site.agent('7001', 0);
    b = await site.agent('7002', 1);
  });
  // A sipp left over by a failed test would hold the trunk port for the next one.
  afterEach(async () => {
    await killSipps();
  });
  afterAll(async () => {
    await site?.stop();
  });

  it('inbound trunk call to 7001: answered, two-way audio, the trunk side hangs up', async () => {
    const invitesIn = await metric(site, 'huddle_sip_requests_total', { direction: 'in', method: 'INVITE' });
    const setups = await metric(site, 'huddle_call_setup_seconds');
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uac-bye.xml'), port: trunkPort, remote: `127.0.0.1:${site.sipPort}`, service: '7001', pauseMs: 6000 });
    const ringing = await a.desktop!.waitFor((e) => e.event === 'EventRinging' && e.OtherDN === '5551234', 'EventRinging from the trunk');
    const connID = ringing.ConnID!;
    expect(ringing).toMatchObject({ ThisDN: '7001', CallType: 'Inbound' });
    // The 180 to the trunk ends the call's set-up time: one observation, not another at the 200.
    await until(async () => (await metric(site, 'huddle_call_setup_seconds')) === setups + 1, 'the call set-up time observed');
    await a.hears(exactly([a.tone]));
    expect(await metric(site, 'huddle_calls_active')).toBe(1);
    expect(await metric(site, 'huddle_call_setup_seconds')).toBe(setups + 1);

    const run = await trunk.done;
    expect(run.code, run.output).toBe(0);
    await a.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased');
    expect(callEvents(a.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventReleased']);
    expect(await metric(site, 'huddle_calls_active')).toBe(0);
    // Both legs are gone from the B2BUA, the one the trunk ended by BYE included.
    await until(async () => (await metric(site, 'huddle_sip_legs_active')) === 0, 'no SIP leg left');
    expect(await metric(site, 'huddle_sip_requests_total', { direction: 'in', method: 'INVITE' })).toBe(invitesIn + 1);
    expect(await metric(site, 'huddle_sip_requests_total', { direction: 'in', method: 'BYE' })).toBeGreaterThanOrEqual(1);
  });

  it('inbound trunk call to 7001: the agent releases it from the desktop, the trunk gets the BYE', async () => {
    const since = a.desktop!.events.length;
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uac-wait.xml'), port: trunkPort, remote: `127.0.0.1:${site.sipPort}`, service: '7001' });
    const established = await a.desktop!.waitFor(
      (e) => e.event === 'EventEstablished' && e.OtherDN === '5551234' && a.desktop!.events.indexOf(e) >= since,
      'EventEstablished of the second trunk call',
    );
    const connID = established.ConnID!;
    await a.hears(exactly([a.tone]));
    const released = await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    expect(released).toMatchObject({ event: 'EventReleased', ThisDN: '7001', ConnID: connID });
    const run = await trunk.done;
    expect(run.code, run.output).toBe(0);
    expect(callEvents(a.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventReleased']);
    await a.hears((h) => h.packets === 0);
  });

  it('inbound trunk call that the trunk cancels while 7001 rings: 487 to the trunk, EventRinging then EventReleased, nothing left', async () => {
    a.phone.onIncoming((offer) => a.media.answer(offer), { ringMs: 60_000 });
    onTestFinished(() => a.phone.onIncoming((offer) => a.media.answer(offer)));
    const since = a.desktop!.events.length;
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uac-cancel.xml'), port: trunkPort, remote: `127.0.0.1:${site.sipPort}`, service: '7001', pauseMs: 500 });
    const run = await trunk.done;
    expect(run.code, run.output).toBe(0);
    const released = await a.desktop!.waitFor((e) => e.event === 'EventReleased' && a.desktop!.events.indexOf(e) >= since, 'EventReleased of the cancelled call');
    expect(callEvents(a.desktop!, released.ConnID!)).toEqual(['EventRinging', 'EventReleased']);
    expect(await metric(site, 'huddle_calls_active')).toBe(0);
    await until(async () => (await metric(site, 'huddle_sip_legs_active')) === 0, 'no SIP leg left');
  });

  it('outbound from 7002 to 0612345678 leaves through Trunk 9000 by prefix and reaches the sipp callee', async () => {
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uas.xml'), port: trunkPort });
    await b.dial('0612345678');
    await b.hears(exactly([b.tone]));
    const established = await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.OtherDN === '0612345678', 'EventEstablished to 0612345678');
    const connID = established.ConnID!;
    expect(established.CallType).toBe('Outbound');
    await b.phone.hangup();
    const run = await trunk.done;
    expect(run.code, run.output).toBe(0);
    await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased');
    expect(callEvents(b.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventReleased']);
  });

  it('MakeCall 7001→0612345678: 7001 phone first, then the trunk; the desktop releases it', async () => {
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uas.xml'), port: trunkPort });
    const dialing = await a.desktop!.client.makeCall({ thisDN: '7001', otherDN: '0612345678' });
    expect(dialing).toMatchObject({ event: 'EventDialing', ThisDN: '7001', OtherDN: '0612345678', CallType: 'Outbound' });
    const connID = dialing.ConnID!;
    await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === connID, 'EventEstablished with 0612345678');
    await a.hears(exactly([a.tone]));
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    const run = await trunk.done;
    expect(run.code, run.output).toBe(0);
    expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventReleased']);
  });

  it('a sipp phone registers 7004 and answers a MakeCall from 7001 with SDP', async () => {
    const registrations = await metric(site, 'huddle_sip_registrations');
    const phone = await sippPhone(site.sipPort, '7004', site.password('7004'));
    expect(await metric(site, 'huddle_sip_registrations')).toBe(registrations + 1);
    const dialing = await a.desktop!.client.makeCall({ thisDN: '7001', otherDN: '7004' });
    expect(dialing).toMatchObject({ event: 'EventDialing', ThisDN: '7001', OtherDN: '7004' });
    const connID = dialing.ConnID!;
    await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === connID, 'EventEstablished with 7004');
    await a.hears(exactly([a.tone]));
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    const run = await phone.done;
    expect(run.code, run.output).toBe(0);
    expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventReleased']);
  });

  it('7002 dials 7005, a sipp phone: it answers with SDP and gets the BYE when 7002 hangs up', async () => {
    const phone = await sippPhone(site.sipPort, '7005', site.password('7005'));
    const since = b.desktop!.events.length;
    await b.dial('7005');
    await b.hears(exactly([b.tone]));
    const established = await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.OtherDN === '7005' && b.desktop!.events.indexOf(e) >= since, 'EventEstablished with 7005');
    const connID = established.ConnID!;
    expect(established.CallType).toBe('Internal');
    await b.phone.hangup();
    const run = await phone.done;
    expect(run.code, run.output).toBe(0);
    await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased');
    expect(callEvents(b.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventReleased']);
  });

  it('AnswerCall for a sipp phone that accepts a remote answer (7003): NOTIFY talk, it answers, EventEstablished answers the request', async () => {
    const phone = await sippPhone(site.sipPort, '7003', site.password('7003'), { remoteAnswer: true });
    const desk = await site.desktop('7003');
    onTestFinished(() => desk.close());
    const dialing = await a.desktop!.client.makeCall({ thisDN: '7001', otherDN: '7003' });
    const connID = dialing.ConnID!;
    await desk.waitFor((e) => e.event === 'EventRinging' && e.ConnID === connID, 'EventRinging on 7003');
    const answered = await desk.client.answerCall({ thisDN: '7003', connID });
    expect(answered).toMatchObject({ event: 'EventEstablished', ThisDN: '7003', ConnID: connID, OtherDN: '7001' });
    await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === connID, 'EventEstablished on 7001');
    await a.hears(exactly([a.tone]));
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    const run = await phone.done;
    expect(run.code, run.output).toBe(0);
    expect(callEvents(desk, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventReleased']);
  });
});
