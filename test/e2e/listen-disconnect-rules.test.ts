/**
 * The rules around ListenDisconnect end to end: the leaving rule, the option gates, a live change
 * of music-listen-disconnect, sip-enable-moh false, bad requests, and the RFC 4575 view.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { findBinary } from '../../common/supervisor/child.js';
import { TlibError } from '../../tlib-api/client/index.js';
import { toneFrequency } from '../support/tone-phone.js';
import { conference, exactly, Site, until } from './site.js';

describe('ListenDisconnect rules, end to end', () => {
  let site: Site;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-music-'));
  beforeAll(async () => {
    site = await Site.start();
  });
  afterAll(async () => {
    await site?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the leaving rule: the disconnecting agent leaves, the last active party and the disconnected one end in a two-party call', async () => {
    const [a, b, c] = [await site.agent('7001', 0), await site.agent('7002', 1), await site.agent('7003', 2)];
    const connID = await conference(a, b, c);
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([], true));
    await a.phone.hangup();
    const deleted = await b.desktop!.waitFor((e) => e.event === 'EventPartyDeleted' && e.ConnID === connID, 'EventPartyDeleted');
    expect(deleted.OtherDN).toBe('7001');
    const released = await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased of the conference');
    const joined = await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.PreviousConnID === connID, 'EventEstablished of the two-party call');
    expect(b.desktop!.events.indexOf(released)).toBeLessThan(b.desktop!.events.indexOf(joined));
    expect(joined).toMatchObject({ OtherDN: '7003' });
    expect(joined.ConnID).not.toBe(connID);
    const cJoined = await c.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.PreviousConnID === connID, 'EventEstablished on 7003');
    expect(cJoined).toMatchObject({ ConnID: joined.ConnID, OtherDN: '7002' });
    await c.hears(exactly([b.tone]));
    await b.hears(exactly([c.tone]));
    expect(b.desktop!.lctParties()).toEqual([
      { alias: '7002', location: 'SiteA' },
      { alias: '7003', location: 'SiteA' },
    ]);
    await b.phone.hangup();
    await c.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === joined.ConnID, 'EventReleased of the two-party call');
    for (const agent of [a, b, c]) await agent.close();
    site.agents.length = 0;
  });

  it('the leaving rule with four: the party stays disconnected while two are active, and joins the last one', async () => {
    const [a, b, c, d] = [await site.agent('7001', 0), await site.agent('7002', 1), await site.agent('7003', 2), await site.agent('7004', 3)];
    const connID = await conference(a, b, c, d);
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7004' });
    await d.hears(exactly([], true));
    await a.phone.hangup();
    await b.desktop!.waitFor((e) => e.event === 'EventPartyDeleted' && e.ConnID === connID && e.OtherDN === '7001', 'EventPartyDeleted of 7001');
    // Two active parties are left: the conference goes on and 7004 stays isolated.
    await d.hears(exactly([], true));
    await b.hears(exactly([c.tone]));
    await c.hears(exactly([b.tone]));
    await until(() => b.desktop!.lctParties()?.length === 3, 'LCTParty list without 7001');
    expect(b.desktop!.lctParties()).toEqual([
      { alias: '7002', location: 'SiteA' },
      { alias: '7003', location: 'SiteA' },
      { alias: '7004', location: 'SiteA', state: 'ListenDisconnectedHeld' },
    ]);
    expect(b.desktop!.events.some((e) => e.event === 'EventReleased' && e.ConnID === connID)).toBe(false);
    await c.phone.hangup();
    const joined = await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.PreviousConnID === connID, 'EventEstablished of the two-party call');
    expect(joined).toMatchObject({ OtherDN: '7004' });
    const dJoined = await d.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.PreviousConnID === connID, 'EventEstablished on 7004');
    expect(dJoined).toMatchObject({ ConnID: joined.ConnID, OtherDN: '7002' });
    await d.hears(exactly([b.tone]));
    await b.hears(exactly([d.tone]));
    await b.phone.hangup();
    await d.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === joined.ConnID, 'EventReleased of the two-party call');
    for (const agent of [a, b, c, d]) await agent.close();
    site.agents.length = 0;
  });

  it('bad requests each get a precise EventError and change nothing', async () => {
    const [a, b, c] = [await site.agent('7001', 0), await site.agent('7002', 1), await site.agent('7003', 2)];
    const d = await site.agent('7004', 3);
    const connID = await conference(a, b);
    const err = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(TlibError);
      return e as TlibError;
    };
    // A two-party call is no conference.
    expect((await err(a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7002' }))).ErrorCode).toBe(565);
    await a.desktop!.client.singleStepConference({ thisDN: '7001', connID, otherDN: '7003' });
    await c.desktop!.waitFor((e) => e.event === 'EventEstablished', 'EventEstablished on 7003');
    const cases: [string, () => Promise<unknown>, number][] = [
      ['an OtherDN that is no alias in the call', () => a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7005' }), 53],
      ['the requester itself', () => a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7001' }), 53],
      ['an unknown ConnID', () => a.desktop!.client.listenDisconnect({ thisDN: '7001', connID: '0123456789abcdef', otherDN: '7003' }), 56],
      ['a requester not in the call', () => d.desktop!.client.listenDisconnect({ thisDN: '7004', connID, otherDN: '7003' }), 56],
      ['reconnecting a party that is not disconnected', () => a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' }), 43],
    ];
    for (const [what, request, code] of cases) {
      const e = await err(request());
      expect(e.ErrorCode, what).toBe(code);
      expect(e.message.length, what).toBeGreaterThan(10);
    }
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    expect((await err(b.desktop!.client.listenDisconnect({ thisDN: '7002', connID, otherDN: '7003' }))).ErrorCode).toBe(43);
    // Nothing changed by the refused requests: still a conference with 7003 isolated.
    await c.hears(exactly([], true));
    await a.hears(exactly([b.tone]));
    await b.desktop!.client.listenReconnect({ thisDN: '7002', connID, otherDN: '7003' });
    await c.hears(exactly([a.tone, b.tone]));
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    for (const agent of [a, b, c, d]) await agent.close();
    site.agents.length = 0;
  });

  it('a changed music-listen-disconnect applies to the next request; sip-enable-moh false gives silence', async () => {
    const [a, b, c] = [await site.agent('7001', 0), await site.agent('7002', 1), await site.agent('7003', 2)];
    const connID = await conference(a, b, c);
    // A "music" that is a single known tone, so the test phone can tell it from the default music.
    const jingle = toneFrequency(6);
    execFileSync(findBinary('sox', 'sox'), ['-n', '-r', '8000', '-c', '1', '-b', '16', path.join(tmp, 'jingle.wav'), 'synth', '1', 'sine', String(jingle), 'vol', '0.3']);
    await site.reconfigure((cluster) => {
      cluster.spec.options['music-listen-disconnect'] = path.join(tmp, 'jingle');
    });
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([jingle]));
    await a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([a.tone, b.tone]));

    await site.reconfigure((_cluster, dns) => {
      dns.find((d) => d.spec.number === '7003')!.spec.options['sip-enable-moh'] = false;
    });
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears((h) => h.tones.length === 0 && !h.music && h.silence);
    await a.hears(exactly([b.tone]));
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    await site.reconfigure((cluster, dns) => {
      cluster.spec.options['music-listen-disconnect'] = 'music/on_hold';
      dns.find((d) => d.spec.number === '7003')!.spec.options['sip-enable-moh'] = true;
    });
    for (const agent of [a, b, c]) await agent.close();
    site.agents.length = 0;
  });

  it('without sip-enable-call-info-extended the requests are unsupported (EventError 51)', async () => {
    const [a, b, c] = [await site.agent('7001', 0), await site.agent('7002', 1), await site.agent('7003', 2)];
    const connID = await conference(a, b, c);
    await site.reconfigure((cluster) => {
      cluster.spec.options['sip-enable-call-info-extended'] = false;
    });
    const e = await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' }).then(
      () => undefined,
      (x: unknown) => x as TlibError,
    );
    expect(e?.ErrorCode).toBe(51);
    await c.hears(exactly([a.tone, b.tone]));
    await site.reconfigure((cluster) => {
      cluster.spec.options['sip-enable-call-info-extended'] = true;
      cluster.spec.options['sip-enable-call-info'] = false;
    });
    const e2 = await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' }).then(
      () => undefined,
      (x: unknown) => x as TlibError,
    );
    expect(e2?.ErrorCode).toBe(51);
    await site.reconfigure((cluster) => {
      cluster.spec.options['sip-enable-call-info'] = true;
    });
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    for (const agent of [a, b, c]) await agent.close();
    site.agents.length = 0;
  });

  it('a SIP phone subscribed to the conference package sees the disconnected member on hold (RFC 4575)', async () => {
    const [a, b, c] = [await site.agent('7001', 0), await site.agent('7002', 1), await site.agent('7003', 2)];
    const connID = await conference(a, b, c);
    const sub = await b.phone.subscribe(`sip:conf-${connID}@127.0.0.1:${site.sipPort}`, 'conference');
    expect(sub.response.status).toBe(200);
    await sub.waitForNotifies(1);
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' });
    type Info = { 'conference-info': { users: { user: { entity: string; endpoint: { status: string; media: { status: string } } }[] } } };
    const deadline = Date.now() + 10_000;
    let members: [string, string, string][] = [];
    while (Date.now() < deadline) {
      const last = sub.notifies.at(-1);
      const info = last ? (parser.parse(last) as Info)['conference-info'] : undefined;
      members = (info?.users?.user ?? []).map((u) => [u.entity, u.endpoint.status, u.endpoint.media.status]);
      if (members.some(([, status]) => status === 'on-hold')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(members.sort()).toEqual([
      ['sip:7001@SiteA', 'connected', 'sendrecv'],
      ['sip:7002@SiteA', 'connected', 'sendrecv'],
      ['sip:7003@SiteA', 'on-hold', 'inactive'],
    ]);
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    for (const agent of [a, b, c]) await agent.close();
    site.agents.length = 0;
  });
});
