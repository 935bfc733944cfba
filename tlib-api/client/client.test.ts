/** The SDK against a real gateway, a real nats-server and the contract responder for signaling. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTlibHarness, type TlibHarness } from '../../test/tlib/harness.js';
import type { TEvent } from '../model/messages.js';
import { TlibClient, TlibConnectError, TlibError } from './index.js';

let h: TlibHarness;
const clients: TlibClient[] = [];
async function connect(token: string, url = h.gateway.wsUrl): Promise<TlibClient> {
  const c = await TlibClient.connect({ url, token, reconnectDelayMs: { min: 50, max: 500 } });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  h = await startTlibHarness({ requestTimeoutMs: 2000 });
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await h?.stop();
});

describe('TlibClient', () => {
  it('refuses to connect with a bad token, with the gateway reason', async () => {
    const err = await TlibClient.connect({ url: h.gateway.wsUrl, token: 'wrong-token' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlibConnectError);
    expect(err).toMatchObject({ status: 401, message: expect.stringContaining('unknown token') as unknown });
  });

  it('resolves each request with its answering event and rejects EventErrors with ErrorCode/ErrorMessage', async () => {
    const c = await connect('agent-7001-secret');
    expect(await c.registerAddress({ thisDN: '7001' })).toMatchObject({ event: 'EventRegistered', ThisDN: '7001' });
    const call = h.signaling.addCall([
      { DN: '7001', location: h.location },
      { DN: '7002', location: h.location },
      { DN: '7003', location: 'SiteB' },
    ]);
    const parties = c.waitForEvent((e) => e.event === 'EventUserEvent' && e.Extensions?.LCTParty2_state === 'ListenDisconnectedHeld');
    const answer = await c.listenDisconnect({ thisDN: '7001', otherDN: '7003', connID: call.connID });
    expect(answer).toMatchObject({ event: 'EventListenDisconnected', ThisDN: '7001', OtherDN: '7003', ConnID: call.connID, CallState: 'Held' });
    expect((await parties).Extensions).toMatchObject({ LCTParty2: '7003', LCTParty2_location: 'SiteB', LCTPartiesLength: 3 });

    const again = await c.listenDisconnect({ thisDN: '7001', otherDN: '7003', connID: call.connID }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(TlibError);
    expect(again).toMatchObject({ ErrorCode: 43, ErrorMessage: 'Already in the requested state' });
    expect(await c.listenReconnect({ thisDN: '7001', otherDN: '7003', connID: call.connID })).toMatchObject({ event: 'EventListenReconnected', CallState: 'Ok' });
    await expect(c.releaseCall({ thisDN: '7001', connID: '0000000000000000' })).rejects.toMatchObject({ ErrorCode: 56 });
    await expect(c.makeCall({ thisDN: '7002', otherDN: '7003' })).rejects.toMatchObject({ ErrorCode: 53 });
    h.signaling.calls.delete(call.connID);
  });

  it('numbers concurrent requests itself and matches each answer', async () => {
    const c = await connect('supervisor-secret');
    const registered = await Promise.all(['7001', '7002', '7003', '7004', '7005'].map((dn) => c.registerAddress({ thisDN: dn })));
    expect(registered.map((e) => e.ThisDN)).toEqual(['7001', '7002', '7003', '7004', '7005']);
    expect(new Set(registered.map((e) => e.ReferenceID)).size).toBe(5);
    expect(c.registeredDNs).toHaveLength(5);
    const events: TEvent[] = [];
    c.on('event', (e) => events.push(e));
    // Listen before asking: the ringing may arrive in the same read as the answer.
    const ringing = c.waitForEvent((e) => e.event === 'EventRinging' && e.ThisDN === '7005');
    const dialing = await c.makeCall({ thisDN: '7004', otherDN: '7005' });
    expect(dialing).toMatchObject({ event: 'EventDialing', ThisDN: '7004' });
    expect((await ringing).ConnID).toBe(dialing.ConnID);
    expect(events.map((e) => e.event)).toEqual(['EventDialing', 'EventRinging']);
  });

  it('reconnects after the gateway restarts, registers again and receives the current state', async () => {
    const replica = await h.startReplica('host-gw-restart');
    const c = await connect('agent-7002-secret', replica.wsUrl);
    await c.registerAddress({ thisDN: '7002' });
    const disconnected = new Promise<void>((resolve) => c.once('disconnected', () => resolve()));
    const reconnected = new Promise<void>((resolve) => c.once('reconnected', () => resolve()));
    const listen = new URL(replica.url).host;
    await replica.stop();
    await disconnected;
    // A call that started while the desktop was away.
    const call = h.signaling.addCall([
      { DN: '7002', location: h.location },
      { DN: '7005', location: h.location },
    ]);
    const info = c.waitForEvent((e) => e.event === 'EventPartyInfo' && e.ConnID === call.connID, 20_000);
    await h.startReplica('host-gw-restarted', { listen });
    await reconnected;
    expect((await info).Parties?.map((p) => p.DN)).toEqual(['7002', '7005']);
    expect(c.connected).toBe(true);
    h.signaling.calls.delete(call.connID);
  });

  it('treats a silent gateway as gone and reconnects', async () => {
    const replica = await h.startReplica('host-gw-quiet', { heartbeatMs: 60_000 });
    const c = await TlibClient.connect({ url: replica.wsUrl, token: 'agent-7003-secret', heartbeatTimeoutMs: 300, reconnectDelayMs: { min: 50, max: 200 } });
    clients.push(c);
    await c.registerAddress({ thisDN: '7003' });
    const disconnected = new Promise<{ code: number }>((resolve) => c.once('disconnected', resolve));
    const reconnected = new Promise<void>((resolve) => c.once('reconnected', () => resolve()));
    expect((await disconnected).code).toBe(1006);
    await reconnected;
    expect(c.registeredDNs).toEqual(['7003']);
    await c.close();
  });

  it('rejects pending requests when the connection is closed', async () => {
    const c = await connect('supervisor-secret');
    h.signaling.silentDNs.add('7003');
    const pending = c.registerAddress({ thisDN: '7003' });
    await c.close();
    await expect(pending).rejects.toMatchObject({ ErrorCode: 58 });
    h.signaling.silentDNs.delete('7003');
    await expect(c.queryCall({ thisDN: '7003' })).rejects.toMatchObject({ ErrorCode: 58 });
  });
});
