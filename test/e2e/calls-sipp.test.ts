/**
 * Calls with real sipp peers: sipp as the far end of Trunk 9000 (inbound to 7001, outbound by the
 * "0" prefix) and as a phone that REGISTERs and answers with SDP. Every sipp echoes the RTP it gets,
 * so the agent talking to it hears its own tone only if media flows both ways through rtpengine.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/supervisor/ports.js';
import { callEvents, exactly, metric, Site, type Agent } from './site.js';
import { E2E_SCENARIOS, killSippPeers, sippPeer, sippPhone } from './sipp-peer.js';

describe('calls with sipp as trunk peer and as phone', () => {
  let site: Site;
  let trunkPort: number;
  let a: Agent;
  let b: Agent;

  beforeAll(async () => {
    trunkPort = await freePort();
    site = await Site.start({ edit: (yaml) => yaml.replace('contact: sip:127.0.0.1:5090', `contact: sip:127.0.0.1:${trunkPort}`) });
    a = await site.agent('7001', 0);
    b = await site.agent('7002', 1);
  });
  afterAll(async () => {
    await killSippPeers();
    await site?.stop();
  });

  it('inbound trunk call to 7001: answered, two-way audio, the trunk side hangs up', async () => {
    const invitesIn = await metric(site, 'sip_requests_total', { direction: 'in', method: 'INVITE' });
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uac-bye.xml'), port: trunkPort, remote: `127.0.0.1:${site.sipPort}`, service: '7001', pauseMs: 5000 });
    const ringing = await a.desktop!.waitFor((e) => e.event === 'EventRinging' && e.OtherDN === '5551234', 'EventRinging from the trunk');
    const connID = ringing.ConnID!;
    expect(ringing).toMatchObject({ ThisDN: '7001', CallType: 'Inbound' });
    await a.hears(exactly([a.tone]));
    expect(await metric(site, 'huddle_calls_active')).toBe(1);

    const run = await trunk.done;
    expect(run.code, run.output).toBe(0);
    await a.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased');
    expect(callEvents(a.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventReleased']);
    expect(await metric(site, 'huddle_calls_active')).toBe(0);
    expect(await metric(site, 'sip_requests_total', { direction: 'in', method: 'INVITE' })).toBe(invitesIn + 1);
    expect(await metric(site, 'sip_requests_total', { direction: 'in', method: 'BYE' })).toBeGreaterThanOrEqual(1);
  });

  it('inbound trunk call to 7001: the agent releases it from the desktop, the trunk gets the BYE', async () => {
    const trunk = await sippPeer({ scenario: path.join(E2E_SCENARIOS, 'trunk-uac-wait.xml'), port: trunkPort, remote: `127.0.0.1:${site.sipPort}`, service: '7001' });
    const established = await a.desktop!.waitFor(
      (e) => e.event === 'EventEstablished' && e.OtherDN === '5551234' && a.desktop!.events.filter((x) => x.event === 'EventEstablished').length === 2,
      'second EventEstablished from the trunk',
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

  it('a sipp phone registers 7004 and answers a MakeCall from 7001 with SDP', async () => {
    const registrations = await metric(site, 'huddle_sip_registrations');
    const phone = await sippPhone(site.sipPort, '7004');
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
});
