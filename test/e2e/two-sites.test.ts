/**
 * Two SIP Server sites joined by inter-trunk DNs on loopback, each with its own NATS, rtpengine and
 * media: a conference on site A with a party reached over the inter-trunk from site B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/supervisor/ports.js';
import { conference, exactly, Site, type Agent } from './site.js';

describe('two sites', () => {
  let siteA: Site;
  let siteB: Site;
  let a1: Agent;
  let a2: Agent;
  let b1: Agent;
  let connID: string;

  beforeAll(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    siteA = await Site.start({ sipPort: portA, edit: (y) => y.replace('contact: sip:127.0.0.1:5062', `contact: sip:127.0.0.1:${portB}`) });
    siteB = await Site.start({ sipPort: portB, base: 'config/two-site-b.yaml', edit: (y) => y.replace('contact: sip:127.0.0.1:5060', `contact: sip:127.0.0.1:${portA}`) });
    a1 = await siteA.agent('7001', 0);
    a2 = await siteA.agent('7002', 1);
    b1 = await siteB.agent('8001', 2);
  });
  afterAll(async () => {
    await siteA?.stop();
    await siteB?.stop();
  });

  it('a party reached over the inter-trunk shows with site B as its location', async () => {
    connID = await conference(a1, a2, b1);
    await a1.desktop!.waitFor(() => a1.desktop!.lctParties()?.some((p) => p.alias === '8001' && p.location === 'SiteB') === true, 'LCTParty 8001 at SiteB');
    await a2.desktop!.waitFor(() => a2.desktop!.lctParties()?.length === 3, 'LCTParty list of three');
    expect(a2.desktop!.lctParties()?.map((p) => `${p.alias}@${p.location}`).sort()).toEqual(['7001@SiteA', '7002@SiteA', '8001@SiteB']);
    await b1.hears(exactly([a1.tone, a2.tone]));
    await a1.hears(exactly([a2.tone, b1.tone]));
  });

  it('ListenDisconnect of the remote party isolates it; with sip-enable-moh false on the inter-trunk it hears silence, not site A music', async () => {
    const answer = await a2.desktop!.client.listenDisconnect({ thisDN: '7002', connID, otherDN: '8001' });
    expect(answer).toMatchObject({ event: 'EventListenDisconnected', OtherDN: '8001', CallState: 'Held' });
    await b1.hears((h) => h.silence && !h.music && h.tones.length === 0);
    await a1.hears(exactly([a2.tone]));
    await a2.hears(exactly([a1.tone]));
    expect(a1.desktop!.lctParties()?.find((p) => p.alias === '8001')?.state).toBe('ListenDisconnectedHeld');
  });

  it('ListenReconnect brings the remote party back', async () => {
    await a1.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '8001' });
    await b1.hears(exactly([a1.tone, a2.tone]));
    await a1.hears(exactly([a2.tone, b1.tone]));
  });
});
