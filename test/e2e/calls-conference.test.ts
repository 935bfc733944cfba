/**
 * Three-party conferences built from desktops both ways (InitiateConference + CompleteConference,
 * and SingleStepConference), DeleteFromConference, and a phone that hangs up mid-conference,
 * proven by the events each desktop gets, in order, and by what each phone hears.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEvents, exactly, metric, Site, until, type Agent } from './site.js';

describe('three-party conferences', () => {
  let site: Site;
  let a: Agent;
  let b: Agent;
  let c: Agent;

  beforeAll(async () => {
    site = await Site.start();
    a = await site.agent('7001', 0);
    b = await site.agent('7002', 1);
    // Over TCP: the B2BUA must reach it through the connection it registered on.
    c = await site.agent('7003', 2, { transport: 'tcp' });
  });
  afterAll(async () => {
    await site?.stop();
  });

  /** 7001 dials 7002 from the phone; resolves with the ConnID once both talk. */
  async function twoParty(): Promise<string> {
    const since = a.desktop!.events.length;
    await a.dial('7002');
    const established = await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && a.desktop!.events.indexOf(e) >= since, 'EventEstablished on 7001');
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));
    return established.ConnID!;
  }

  describe('InitiateConference + CompleteConference, then DeleteFromConference', () => {
    let connID: string;
    let consultID: string;

    it('InitiateConference: 7002 is held with music while 7001 consults 7003', async () => {
      connID = await twoParty();
      const answer = await a.desktop!.client.initiateConference({ thisDN: '7001', connID, otherDN: '7003' });
      expect(answer).toMatchObject({ event: 'EventHeld', ThisDN: '7001', ConnID: connID, OtherDN: '7002' });
      const established = await c.desktop!.waitFor((e) => e.event === 'EventEstablished', 'EventEstablished on 7003');
      consultID = established.ConnID!;
      expect(consultID).not.toBe(connID);
      expect(established).toMatchObject({ CallType: 'Consult', OtherDN: '7001' });
      await b.hears(exactly([], true));
      await a.hears(exactly([c.tone]));
      await c.hears(exactly([a.tone]));
      expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventHeld']);
      expect(callEvents(a.desktop!, consultID)).toEqual(['EventDialing', 'EventEstablished']);
      expect(callEvents(c.desktop!, consultID)).toEqual(['EventRinging', 'EventEstablished']);
      expect(callEvents(b.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished']);
      expect(await metric(site, 'huddle_calls_active')).toBe(2);
    });

    it('CompleteConference: one conference, everyone hears the two others', async () => {
      const answer = await a.desktop!.client.completeConference({ thisDN: '7001', connID: consultID });
      expect(answer).toMatchObject({ event: 'EventReleased', ThisDN: '7001', ConnID: consultID, CallState: 'Conferenced', OtherDN: '7003' });
      await b.desktop!.waitFor((e) => e.event === 'EventPartyAdded' && e.ConnID === connID, 'EventPartyAdded on 7002');
      const changed = await c.desktop!.waitFor((e) => e.event === 'EventPartyChanged', 'EventPartyChanged on 7003');
      expect(changed).toMatchObject({ ConnID: connID, PreviousConnID: consultID, CallState: 'Conferenced', ThirdPartyDN: '7001' });
      await a.hears(exactly([b.tone, c.tone]));
      await b.hears(exactly([a.tone, c.tone]));
      await c.hears(exactly([a.tone, b.tone]));
      expect(callEvents(a.desktop!, consultID)).toEqual(['EventDialing', 'EventEstablished', 'EventReleased']);
      expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventHeld', 'EventRetrieved', 'EventPartyAdded']);
      expect(callEvents(b.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventPartyAdded']);
      expect(callEvents(c.desktop!, connID)).toEqual(['EventPartyChanged']);
      for (const d of [a, b, c]) expect(d.desktop!.lctParties()?.map((p) => p.alias).sort(), d.dn).toEqual(['7001', '7002', '7003']);
      expect(await metric(site, 'huddle_calls_active')).toBe(1);
      expect(await metric(site, 'huddle_conferences_active')).toBe(1);
    });

    it('DeleteFromConference: 7003 is released, the others get EventPartyDeleted and keep talking', async () => {
      const answer = await a.desktop!.client.deleteFromConference({ thisDN: '7001', connID, otherDN: '7003' });
      expect(answer).toMatchObject({ event: 'EventPartyDeleted', ThisDN: '7001', ConnID: connID, OtherDN: '7003', ThirdPartyDN: '7001', ThirdPartyDNRole: 'DeletedBy' });
      await c.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7003');
      const deleted = await b.desktop!.waitFor((e) => e.event === 'EventPartyDeleted' && e.ConnID === connID, 'EventPartyDeleted on 7002');
      expect(deleted).toMatchObject({ OtherDN: '7003', ThirdPartyDN: '7001' });
      await a.hears(exactly([b.tone]));
      await b.hears(exactly([a.tone]));
      await c.hears((h) => h.packets === 0);
      await until(() => c.phone.calls.length === 0, '7003 phone got the BYE');
      expect(callEvents(a.desktop!, connID).slice(-1)).toEqual(['EventPartyDeleted']);
      expect(callEvents(b.desktop!, connID).slice(-1)).toEqual(['EventPartyDeleted']);
      expect(callEvents(c.desktop!, connID)).toEqual(['EventPartyChanged', 'EventReleased']);
      await a.phone.hangup();
      await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7002');
      expect(await metric(site, 'huddle_conferences_active')).toBe(0);
      expect(await metric(site, 'huddle_calls_active')).toBe(0);
    });
  });

  describe('SingleStepConference, then a phone hangs up mid-conference', () => {
    let connID: string;

    it('SingleStepConference adds 7003 directly: everyone hears the two others', async () => {
      connID = await twoParty();
      const answer = await a.desktop!.client.singleStepConference({ thisDN: '7001', connID, otherDN: '7003' });
      expect(answer).toMatchObject({ event: 'EventPartyAdded', ThisDN: '7001', ConnID: connID, OtherDN: '7003', ThirdPartyDN: '7001', ThirdPartyDNRole: 'AddedBy' });
      await a.hears(exactly([b.tone, c.tone]));
      await b.hears(exactly([a.tone, c.tone]));
      await c.hears(exactly([a.tone, b.tone]));
      await b.desktop!.waitFor((e) => e.event === 'EventPartyAdded' && e.ConnID === connID, 'EventPartyAdded on 7002');
      expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventPartyAdded']);
      expect(callEvents(b.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventPartyAdded']);
      expect(callEvents(c.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished']);
      expect(await metric(site, 'huddle_conferences_active')).toBe(1);
    });

    it('7003 hangs up: 7001 and 7002 get EventPartyDeleted and keep talking', async () => {
      await c.phone.hangup();
      await a.desktop!.waitFor((e) => e.event === 'EventPartyDeleted' && e.ConnID === connID, 'EventPartyDeleted on 7001');
      await b.desktop!.waitFor((e) => e.event === 'EventPartyDeleted' && e.ConnID === connID, 'EventPartyDeleted on 7002');
      await a.hears(exactly([b.tone]));
      await b.hears(exactly([a.tone]));
      await c.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7003');
      expect(callEvents(a.desktop!, connID)).toEqual(['EventDialing', 'EventEstablished', 'EventPartyAdded', 'EventPartyDeleted']);
      expect(callEvents(b.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventPartyAdded', 'EventPartyDeleted']);
      expect(callEvents(c.desktop!, connID)).toEqual(['EventRinging', 'EventEstablished', 'EventReleased']);
      await b.phone.hangup();
      await a.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7001');
      expect(await metric(site, 'huddle_conferences_active')).toBe(0);
      expect(await metric(site, 'huddle_calls_active')).toBe(0);
      await until(async () => (await metric(site, 'huddle_sip_legs_active')) === 0, 'no SIP leg left');
    });
  });
});
