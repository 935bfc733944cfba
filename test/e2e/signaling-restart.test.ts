/**
 * Signaling killed (SIGKILL) during a three-party conference with a listen-disconnected party
 * and a two-party call, and started again: the calls come back from JetStream and go on. Audio
 * never depended on signaling, so it never stops; in-dialog requests are answered, T-Library
 * requests work, the leaving rule still applies, desktops are resynced without registering again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TEvent } from '../../common/tlib/messages.js';
import { SignalingProcess } from './signaling-process.js';
import { conferenceAndCall, exactly, Site, until, watchAudio, type Agent } from './site.js';

describe('signaling restart keeps every call', () => {
  let site: Site;
  let signaling: SignalingProcess;
  let a: Agent, b: Agent, c: Agent, d: Agent, e: Agent;
  let connID: string;

  beforeAll(async () => {
    site = await Site.start({ signaling: false });
    signaling = await SignalingProcess.start(site, 'signaling-0');
    [a, b, c, d, e] = await Promise.all([site.agent('7001', 1), site.agent('7002', 2), site.agent('7003', 3), site.agent('7004', 4), site.agent('7005', 5)]);
  }, 90_000);

  afterAll(async () => {
    await signaling?.stop();
    await site?.stop();
  });

  it('calls, conference and listen-disconnect survive SIGKILL and a restart', async () => {
    const calls = await conferenceAndCall(a, b, c, d, e);
    connID = calls.connID;
    expect(await signaling.metric('huddle_calls_active')).toBe(2);
    expect(await signaling.metric('huddle_call_state_writes_total')).toBeGreaterThan(0);

    // What every phone hears, every 250 ms, from the kill until the calls are carried on.
    const stopWatching = watchAudio(calls.expected);

    const eventsBefore = new Map([a, b, c, d, e].map((x) => [x, x.desktop!.events.length]));
    await signaling.kill();
    await new Promise((r) => setTimeout(r, 2000));
    await signaling.restart();
    expect(await stopWatching()).toEqual([]);
    expect(await signaling.metric('huddle_calls_active')).toBe(2);

    // Each registered DN got its state again, without registering: EventRegistered, then its calls.
    for (const agent of [a, b, c, d, e]) {
      const since = (ev: TEvent) => agent.desktop!.events.indexOf(ev) >= eventsBefore.get(agent)!;
      await agent.desktop!.waitFor((ev) => since(ev) && ev.event === 'EventRegistered', `resync of ${agent.dn}`);
      await agent.desktop!.waitFor((ev) => since(ev) && ev.event === 'EventPartyInfo' && ev.ConnID !== undefined, `EventPartyInfo for ${agent.dn}`);
    }
    const info = c.desktop!.events.filter((ev) => ev.event === 'EventPartyInfo' && ev.ConnID === connID).at(-1);
    expect(info?.Parties).toEqual([
      expect.objectContaining({ DN: '7001' }),
      expect.objectContaining({ DN: '7002' }),
      expect.objectContaining({ DN: '7003', State: 'ListenDisconnectedHeld' }),
    ]);

    // In-dialog requests from the phones reach the restored dialogs.
    for (const agent of [a, b, c, d, e]) expect((await agent.phone.calls.at(-1)!.request('OPTIONS')).status).toBe(200);

    // T-Library on the restored conference: ListenReconnect answered within 1 s, and 7003 hears the others again.
    const asked = Date.now();
    const answer = await a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' });
    expect(Date.now() - asked).toBeLessThan(1000);
    expect(answer).toMatchObject({ event: 'EventListenReconnected', ConnID: connID });
    await c.hears(exactly([a.tone, b.tone]));
    await a.hears(exactly([b.tone, c.tone]));
  }, 120_000);

  it('the leaving rule still applies to the restored conference', async () => {
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([], true));
    // 7001 hangs up: 7002 is the one active participant left, so 7002 and 7003 go on in a two-party call.
    expect((await a.phone.hangup())?.status).toBe(200);
    const joined = await b.desktop!.waitFor((ev) => ev.event === 'EventEstablished' && ev.PreviousConnID === connID, 'EventEstablished of the new call');
    expect(joined.OtherDN).toBe('7003');
    await b.hears(exactly([c.tone]));
    await c.hears(exactly([b.tone]));
  }, 60_000);

  it('a restored two-party call ends with BYE from a phone, and new calls work', async () => {
    const ended = d.phone.ended.length;
    expect((await e.phone.hangup())?.status).toBe(200);
    await until(() => d.phone.ended.length > ended, 'BYE to 7004');
    await d.dial('7005');
    await d.hears(exactly([e.tone]));
    await e.hears(exactly([d.tone]));
    await until(async () => (await signaling.metric('huddle_calls_active')) === 2, 'two calls owned');
  }, 60_000);
});
