import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactly, Site } from './site.js';

describe('a two-party call through the SIP Server', () => {
  let site: Site;
  beforeAll(async () => {
    site = await Site.start();
  });
  afterAll(async () => {
    await site?.stop();
  });

  it('7001 dials 7002: both desktops follow it and each phone hears the other', async () => {
    const a = await site.agent('7001', 0);
    const b = await site.agent('7002', 1);
    await a.dial('7002');
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));
    const established = await a.desktop!.waitFor((e) => e.event === 'EventEstablished', 'EventEstablished');
    expect(established.ConnID).toMatch(/^[0-9a-f]{16}$/);
    await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === established.ConnID, 'EventEstablished');
    expect(a.desktop!.names().slice(0, 2)).toEqual(['EventRegistered', 'EventDialing']);
    expect(b.desktop!.names()).toContain('EventRinging');
    expect(a.desktop!.lctParties()?.map((p) => p.alias).sort()).toEqual(['7001', '7002']);

    await b.phone.hangup();
    await a.desktop!.waitFor((e) => e.event === 'EventReleased', 'EventReleased');
    await b.desktop!.waitFor((e) => e.event === 'EventReleased', 'EventReleased');
  });
});
