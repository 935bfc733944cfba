/**
 * The SDK against a real site: gateway, nats-server, rtpengine, media-controller and signaling
 * with the real call model; the calls are made by SIP test phones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conference, type Agent } from '../../test/e2e/site.js';
import { startTlibSite, type TlibSite } from '../../test/tlib/harness.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { TlibClient, TlibConnectError, TlibError } from './index.js';

let h: TlibSite;
let a: Agent;
let b: Agent;
let c: Agent;
const clients: TlibClient[] = [];
async function connect(token: string, url = h.wsUrl): Promise<TlibClient> {
  const client = await TlibClient.connect({ url, token, reconnectDelayMs: { min: 50, max: 500 } });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  h = await startTlibSite();
  // Three agents (phone + desktop) for a conference, and bare phones for plain calls.
  a = await h.site.agent('7001', 0);
  b = await h.site.agent('7002', 1);
  c = await h.site.agent('7003', 2);
  await h.phones('7004', '7005');
});
afterAll(async () => {
  for (const client of clients) await client.close();
  await h?.stop();
});

describe('TlibClient', () => {
  it('refuses to connect with a bad token, with the gateway reason', async () => {
    const err = await TlibClient.connect({ url: h.wsUrl, token: 'wrong-token' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlibConnectError);
    expect(err).toMatchObject({ status: 401, message: expect.stringContaining('unknown token') as unknown });
  });

  it('resolves each request with its answering event and rejects EventErrors with ErrorCode/ErrorMessage', async () => {
    const client = await connect('agent-7001-secret');
    expect(await client.registerAddress({ thisDN: '7001' })).toMatchObject({ event: 'EventRegistered', ThisDN: '7001' });
    const connID = await conference(a, b, c);
    const parties = client.waitForEvent((e) => e.event === 'EventUserEvent' && e.ConnID === connID && Object.values(e.Extensions ?? {}).includes('ListenDisconnectedHeld'));
    const answer = await client.listenDisconnect({ thisDN: '7001', otherDN: '7003', connID });
    expect(answer).toMatchObject({ event: 'EventListenDisconnected', ThisDN: '7001', OtherDN: '7003', ConnID: connID, CallState: 'Held' });
    const ext = (await parties).Extensions!;
    const n = [0, 1, 2].find((i) => ext[`LCTParty${i}`] === '7003');
    expect(ext).toMatchObject({ LCTPartiesLength: 3, [`LCTParty${n}_state`]: 'ListenDisconnectedHeld', [`LCTParty${n}_location`]: h.location });

    const again = await client.listenDisconnect({ thisDN: '7001', otherDN: '7003', connID }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(TlibError);
    expect(again).toMatchObject({ ErrorCode: 43, ErrorMessage: expect.stringContaining('already listen-disconnected') as unknown });
    expect(await client.listenReconnect({ thisDN: '7001', otherDN: '7003', connID })).toMatchObject({ event: 'EventListenReconnected', OtherDN: '7003', CallState: 'Ok' });
    await expect(client.releaseCall({ thisDN: '7001', connID: '0000000000000000' })).rejects.toMatchObject({ ErrorCode: 56 });
    // 7002 is not in this token's DNs: the gateway refuses before signaling sees it.
    await expect(client.makeCall({ thisDN: '7002', otherDN: '7003' })).rejects.toMatchObject({ ErrorCode: 53 });
    const released = c.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7003');
    expect(await client.releaseCall({ thisDN: '7001', connID })).toMatchObject({ event: 'EventReleased', ConnID: connID });
    await b.desktop!.client.releaseCall({ thisDN: '7002', connID });
    await released;
  });

  it('numbers concurrent requests itself and matches each answer', async () => {
    const client = await connect('supervisor-secret');
    const registered = await Promise.all(['7001', '7002', '7003', '7004', '7005'].map((dn) => client.registerAddress({ thisDN: dn })));
    expect(registered.map((e) => e.ThisDN)).toEqual(['7001', '7002', '7003', '7004', '7005']);
    expect(new Set(registered.map((e) => e.ReferenceID)).size).toBe(5);
    expect(client.registeredDNs).toHaveLength(5);
    const events: TEvent[] = [];
    client.on('event', (e) => events.push(e));
    // Listen before asking: the ringing may arrive in the same read as the answer.
    const ringing = client.waitForEvent((e) => e.event === 'EventRinging' && e.ThisDN === '7005');
    const dialing = await client.makeCall({ thisDN: '7004', otherDN: '7005' });
    expect(dialing).toMatchObject({ event: 'EventDialing', ThisDN: '7004' });
    expect((await ringing).ConnID).toBe(dialing.ConnID);
    await client.waitForEvent((e) => e.event === 'EventEstablished' && e.ThisDN === '7005');
    const connEvents = events.filter((e) => e.ConnID === dialing.ConnID && e.event !== 'EventUserEvent');
    expect(connEvents[0]).toMatchObject({ event: 'EventDialing', ReferenceID: dialing.ReferenceID });
    expect(connEvents.findIndex((e) => e.event === 'EventRinging')).toBeGreaterThan(0);
    const released = client.waitForEvent((e) => e.event === 'EventReleased' && e.ThisDN === '7005');
    await client.releaseCall({ thisDN: '7004', connID: dialing.ConnID! });
    await released;
  });

  it('reconnects after the gateway restarts, registers again and receives the current state', async () => {
    const replica = await h.startReplica('gw-restart');
    const client = await connect('agent-7002-secret', replica.wsUrl);
    await client.registerAddress({ thisDN: '7002' });
    const disconnected = new Promise<void>((resolve) => client.once('disconnected', () => resolve()));
    const reconnected = new Promise<void>((resolve) => client.once('reconnected', () => resolve()));
    const listen = new URL(replica.url).host;
    await replica.stop();
    await disconnected;
    // A call that starts while the desktop is away.
    const seen = a.desktop!.events.length;
    const established = a.desktop!.waitFor((e) => e.event === 'EventEstablished' && a.desktop!.events.indexOf(e) >= seen, 'EventEstablished 7001-7002');
    await a.dial('7002');
    const connID = (await established).ConnID!;
    const info = client.waitForEvent((e) => e.event === 'EventPartyInfo' && e.ConnID === connID, 20_000);
    await h.startReplica('gw-restarted', { listen });
    await reconnected;
    expect(client.connected).toBe(true);
    expect(client.registeredDNs).toEqual(['7002']);
    // The registration's answer brings the call it missed.
    expect((await info).Parties?.map((p) => p.DN).sort()).toEqual(['7001', '7002']);
    // Registered again with signaling too: it answers this connection's query about the call.
    expect(await client.queryCall({ thisDN: '7002', connID })).toMatchObject({ event: 'EventPartyInfo', ConnID: connID });
    const released = client.waitForEvent((e) => e.event === 'EventReleased' && e.ConnID === connID);
    await a.desktop!.client.releaseCall({ thisDN: '7001', connID });
    expect((await released).ReferenceID).toBeUndefined();
  });

  it('treats a silent gateway as gone and reconnects', async () => {
    const replica = await h.startReplica('gw-quiet', { heartbeatMs: 60_000 });
    const client = await TlibClient.connect({ url: replica.wsUrl, token: 'agent-7003-secret', heartbeatTimeoutMs: 300, reconnectDelayMs: { min: 50, max: 200 } });
    clients.push(client);
    await client.registerAddress({ thisDN: '7003' });
    const disconnected = new Promise<{ code: number }>((resolve) => client.once('disconnected', resolve));
    const reconnected = new Promise<void>((resolve) => client.once('reconnected', () => resolve()));
    expect((await disconnected).code).toBe(1006);
    await reconnected;
    expect(client.registeredDNs).toEqual(['7003']);
    await client.close();
  });

  it('rejects pending requests when the connection is closed', async () => {
    const client = await connect('supervisor-secret');
    const pending = client.registerAddress({ thisDN: '7003' });
    await client.close();
    await expect(pending).rejects.toMatchObject({ ErrorCode: 58 });
    await expect(client.queryCall({ thisDN: '7003' })).rejects.toMatchObject({ ErrorCode: 58 });
  });
});
