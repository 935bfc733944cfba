/**
 * The headline feature end to end: a three-party conference built from desktops, a party
 * listen-disconnected and reconnected, proven by what each phone hears.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conference, exactly, Site, type Agent } from './site.js';

describe('private conversations during conference', () => {
  let site: Site;
  let a: Agent;
  let b: Agent;
  let c: Agent;
  let connID: string;

  beforeAll(async () => {
    site = await Site.start();
    a = await site.agent('7001', 0);
    b = await site.agent('7002', 1);
    c = await site.agent('7003', 2);
    connID = await conference(a, b, c);
  });
  afterAll(async () => {
    await site?.stop();
  });

  it('in the conference everyone hears the two others', async () => {
    await a.hears(exactly([b.tone, c.tone]));
    await b.hears(exactly([a.tone, c.tone]));
    await c.hears(exactly([a.tone, b.tone]));
    expect(a.desktop!.lctParties()?.map((p) => p.alias).sort()).toEqual(['7001', '7002', '7003']);
  });

  it('ListenDisconnect: 7003 hears only music, the others hear only each other', async () => {
    const answer = await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    expect(answer).toMatchObject({ event: 'EventListenDisconnected', ThisDN: '7001', OtherDN: '7003', ConnID: connID, CallState: 'Held' });
    expect(typeof answer.ReferenceID).toBe('number');
    for (const agent of [b, c]) {
      const copy = await agent.desktop!.waitFor((e) => e.event === 'EventListenDisconnected', `EventListenDisconnected on ${agent.dn}`);
      expect(copy.CallState).toBe('Held');
      expect(copy.ReferenceID).toBeUndefined();
    }
    await c.hears(exactly([], true));
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));
    await b.desktop!.waitFor(
      () => b.desktop!.lctParties()?.some((p) => p.alias === '7003' && p.state === 'ListenDisconnectedHeld') === true,
      'LCTParty state ListenDisconnectedHeld',
    );
  });

  it('ListenReconnect: two-way audio with everyone again, music stopped', async () => {
    const answer = await b.desktop!.client.listenReconnect({ thisDN: '7002', connID, otherDN: '7003' });
    expect(answer).toMatchObject({ event: 'EventListenReconnected', ThisDN: '7002', OtherDN: '7003', ConnID: connID });
    await c.hears(exactly([a.tone, b.tone]));
    await a.hears(exactly([b.tone, c.tone]));
    await b.hears(exactly([a.tone, c.tone]));
    await a.desktop!.waitFor(
      (e) => e.event === 'EventUserEvent' && e.Extensions !== undefined && !Object.keys(e.Extensions).some((k) => k.endsWith('_state')) && a.desktop!.events.indexOf(e) > a.desktop!.events.findIndex((x) => x.event === 'EventListenReconnected'),
      'LCTParty without _state after reconnect',
    );
  });
});
