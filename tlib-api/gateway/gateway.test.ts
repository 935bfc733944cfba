/**
 * The gateway against a real nats-server and the contract responder standing in for signaling
 * (end-to-end tests with the real signaling service live with the platform tests).
 */
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startTlibHarness, waitUntil, type TlibHarness } from '../../test/tlib/harness.js';
import { openOk, openRaw, type RawClient } from '../../test/tlib/raw-client.js';

const hsSecret = 'a-test-secret-of-at-least-32-bytes!!';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

let h: TlibHarness;
const clients: RawClient[] = [];
async function open(token: string, via: 'header' | 'query' = 'header', url = h.gateway.wsUrl): Promise<RawClient> {
  const c = await openOk(url, token, via);
  clients.push(c);
  return c;
}
async function register(c: RawClient, dn: string, ref: number) {
  c.send({ request: 'RegisterAddress', ReferenceID: ref, ThisDN: dn });
  return c.next((e) => e.ReferenceID === ref);
}

beforeAll(async () => {
  h = await startTlibHarness({
    requestTimeoutMs: 500,
    jwtKeys: { hs256Secret: new TextEncoder().encode(hsSecret), rs256PublicKey: rsa.publicKey },
  });
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await h?.stop();
});

describe('authentication', () => {
  it('accepts a configured token in the Authorization header or ?token=, refuses others with 401', async () => {
    await open('agent-7001-secret', 'header');
    await open('agent-7001-secret', 'query');
    expect(await openRaw(h.gateway.wsUrl, undefined)).toMatchObject({ refused: 401, body: expect.stringContaining('no bearer token') as unknown });
    expect(await openRaw(h.gateway.wsUrl, 'not-a-token')).toMatchObject({ refused: 401, body: expect.stringContaining('unknown token') as unknown });
    expect(await openRaw(h.gateway.wsUrl.replace('/tlib', '/other'), 'agent-7001-secret')).toMatchObject({ refused: 404 });
  });

  it('reads the tokens at connect time, so config changes apply to the next client', async () => {
    await h.updateCluster((c) => {
      c.spec.gateway.tokens = [...c.spec.gateway.tokens.filter((t) => t.name !== 'agent-7002'), { name: 'agent-7004', token: 'agent-7004-new-secret', dns: ['7004'] }];
    });
    expect(await openRaw(h.gateway.wsUrl, 'agent-7002-secret')).toMatchObject({ refused: 401 });
    const c = await open('agent-7004-new-secret');
    expect(await register(c, '7004', 1)).toMatchObject({ event: 'EventRegistered', ThisDN: '7004' });
  });

  it('accepts HS256 and RS256 JWTs whose dns claim lists the DNs, and refuses expired or foreign ones', async () => {
    const hs = await new SignJWT({ dns: ['7005'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('jwt-agent').setExpirationTime('5m').sign(new TextEncoder().encode(hsSecret));
    const c1 = await open(hs);
    expect(await register(c1, '7005', 1)).toMatchObject({ event: 'EventRegistered', ThisDN: '7005' });
    expect(await register(c1, '7003', 2)).toMatchObject({ event: 'EventError', ErrorCode: 53 });
    const rs = await new SignJWT({ dns: '7003' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(rsa.privateKey);
    const c2 = await open(rs, 'query');
    expect(await register(c2, '7003', 1)).toMatchObject({ event: 'EventRegistered', ThisDN: '7003' });
    const expired = await new SignJWT({ dns: ['7005'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(hsSecret));
    expect(await openRaw(h.gateway.wsUrl, expired)).toMatchObject({ refused: 401, body: expect.stringContaining('invalid JWT') as unknown });
    const foreign = await new SignJWT({ dns: ['7005'] }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-xx'));
    expect(await openRaw(h.gateway.wsUrl, foreign)).toMatchObject({ refused: 401 });
  });
});

describe('requests', () => {
  it('answers malformed frames with EventError 53 naming the problem', async () => {
    const c = await open('agent-7001-secret');
    c.send('{not json');
    expect(await c.next((e) => e.event === 'EventError' && /not JSON/.test(e.ErrorMessage ?? ''))).toMatchObject({ ErrorCode: 53 });
    c.send({ request: 'Dance', ReferenceID: 5, ThisDN: '7001' });
    expect(await c.next((e) => e.ReferenceID === 5)).toMatchObject({ event: 'EventError', ErrorCode: 53, ErrorMessage: 'invalid request Dance: unknown request "Dance"' });
    c.send({ request: 'MakeCall', ReferenceID: 6, ThisDN: 7001 });
    expect(await c.next((e) => e.ReferenceID === 6)).toMatchObject({ ErrorCode: 53, ErrorMessage: expect.stringContaining('ThisDN') as unknown });
    c.send({ request: 'MakeCall', ReferenceID: 7, ThisDN: '7001', Colour: 'blue' });
    expect(await c.next((e) => e.ReferenceID === 7)).toMatchObject({ ErrorCode: 53, ErrorMessage: expect.stringContaining('"Colour"') as unknown });
    c.send({ request: 'MakeCall', ThisDN: '7001' });
    expect(await c.next((e) => /ReferenceID is required/.test(e.ErrorMessage ?? ''))).toMatchObject({ ErrorCode: 53 });
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await c.next((e) => /binary/.test(e.ErrorMessage ?? ''))).toMatchObject({ ErrorCode: 53 });
  });

  it('lets a client register and control only the DNs its token allows', async () => {
    const c = await open('agent-7001-secret');
    expect(await register(c, '7002', 1)).toMatchObject({ event: 'EventError', ErrorCode: 53, ErrorMessage: expect.stringContaining('7002 is not allowed') as unknown });
    c.send({ request: 'MakeCall', ReferenceID: 2, ThisDN: '7001', OtherDN: '7002' });
    expect(await c.next((e) => e.ReferenceID === 2)).toMatchObject({ event: 'EventError', ErrorCode: 41 });
    expect(await register(c, '7001', 3)).toMatchObject({ event: 'EventRegistered', ThisDN: '7001' });
    const sup = await open('supervisor-secret');
    expect(await register(sup, '7999', 1)).toMatchObject({ event: 'EventError', ErrorCode: 59 });
    expect(h.signaling.requests.filter((r) => r.request.ThisDN === '7002')).toHaveLength(0);
  });

  it('routes to signaling with the origin and fans events out to the DNs concerned, ReferenceID only to the asker', async () => {
    const agent = await open('agent-7001-secret');
    const supervisor = await open('supervisor-secret');
    const callee = await open('supervisor-secret');
    const bystander = await open('agent-7003-secret');
    await register(agent, '7001', 1);
    await register(supervisor, '7001', 1);
    await register(callee, '7002', 1);
    await register(bystander, '7003', 1);
    agent.send({ request: 'MakeCall', ReferenceID: 42, ThisDN: '7001', OtherDN: '7002' });
    const dialing = await agent.next((e) => e.event === 'EventDialing');
    expect(dialing).toMatchObject({ ReferenceID: 42, ThisDN: '7001', OtherDN: '7002' });
    const seen = await supervisor.next((e) => e.event === 'EventDialing' && e.ConnID === dialing.ConnID);
    expect(seen.ReferenceID).toBeUndefined();
    expect(await callee.next((e) => e.event === 'EventRinging')).toMatchObject({ ThisDN: '7002', ConnID: dialing.ConnID });
    const asked = h.signaling.requests.find((r) => r.request.ReferenceID === 42 && r.request.request === 'MakeCall');
    expect(asked?.origin.gateway).toMatch(/-gw-1$/);
    // A marker on 7003 after the call events: the bystander got it and nothing about the call.
    h.signaling.publish('7003', { event: 'EventUserEvent', ThisDN: '7003', UserData: { marker: 1 } });
    await bystander.next((e) => e.event === 'EventUserEvent');
    expect(bystander.events.filter((e) => e.ConnID === dialing.ConnID)).toHaveLength(0);
  });

  it('gives a registering client the current state of its calls', async () => {
    const call = h.signaling.addCall([
      { DN: '7001', location: h.location },
      { DN: '7003', location: h.location, listenDisconnected: true },
    ]);
    const c = await open('agent-7001-secret');
    await register(c, '7001', 9);
    const info = await c.next((e) => e.event === 'EventPartyInfo' && e.ConnID === call.connID);
    expect(info.ReferenceID).toBe(9);
    expect(info.Parties?.map((p) => p.DN)).toEqual(['7001', '7003']);
    expect(await c.next((e) => e.event === 'EventUserEvent' && e.ConnID === call.connID)).toMatchObject({ Extensions: { LCTParty1_state: 'ListenDisconnectedHeld', LCTPartiesLength: 2 } });
    h.signaling.calls.delete(call.connID);
  });

  it('answers EventError 57 when signaling does not answer in time', async () => {
    const c = await open('supervisor-secret');
    h.signaling.silentDNs.add('7005');
    expect(await register(c, '7005', 77)).toMatchObject({ event: 'EventError', ErrorCode: 57, ErrorMessage: expect.stringContaining('did not answer RegisterAddress') as unknown });
    h.signaling.silentDNs.delete('7005');
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'timeout' })).toBeGreaterThanOrEqual(1);
  });

  it('answers EventError 58 when no signaling service answers for the site', async () => {
    const c = await open('supervisor-secret');
    h.signaling.stop();
    try {
      await h.nc.flush();
      expect(await register(c, '7004', 5)).toMatchObject({ event: 'EventError', ErrorCode: 58, ReferenceID: 5 });
    } finally {
      h.signaling.start();
      await h.nc.flush();
    }
    expect(await register(c, '7004', 6)).toMatchObject({ event: 'EventRegistered' });
  });

  it('counts clients, registered DNs, events and requests', async () => {
    const before = await metricValue(h.registry, 'huddle_gateway_clients');
    const c = await open('agent-7003-secret');
    await waitUntil(async () => (await metricValue(h.registry, 'huddle_gateway_clients')) === before + 1, 'client counted');
    await register(c, '7003', 1);
    expect(await metricValue(h.registry, 'huddle_gateway_registered_dns')).toBeGreaterThanOrEqual(1);
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'ok' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'invalid', result: 'invalid' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_request_duration_seconds', { request: 'RegisterAddress' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_gateway_events_total', { result: 'delivered' })).toBeGreaterThan(0);
    await c.close();
    await waitUntil(async () => (await metricValue(h.registry, 'huddle_gateway_clients')) === before, 'client gone');
  });
});

describe('at scale', () => {
  it('delivers through any replica: events reach clients of both, the ReferenceID only the asker', async () => {
    const replica = await h.startReplica('host-gw-2');
    const onOne = await open('supervisor-secret');
    const onTwo = await open('supervisor-secret', 'header', replica.wsUrl);
    await register(onOne, '7004', 1);
    await register(onTwo, '7004', 1);
    onTwo.send({ request: 'MakeCall', ReferenceID: 3, ThisDN: '7004', OtherDN: '7005' });
    const mine = await onTwo.next((e) => e.event === 'EventDialing');
    expect(mine.ReferenceID).toBe(3);
    const theirs = await onOne.next((e) => e.event === 'EventDialing' && e.ConnID === mine.ConnID);
    expect(theirs.ReferenceID).toBeUndefined();
  });

  it('drops a client that does not read, with a close reason, instead of queueing without bound', async () => {
    const replica = await h.startReplica('host-gw-slow', { maxQueuedBytes: 64 * 1024 });
    const slow = await open('supervisor-secret', 'header', replica.wsUrl);
    await register(slow, '7002', 1);
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const filler = 'x'.repeat(8 * 1024);
    const dropped = async () => (await metricValue(replica.registry, 'huddle_gateway_events_total', { result: 'dropped' })) > 0;
    for (let i = 0; i < 20_000 && !(await dropped()); i++) {
      h.signaling.publish('7002', { event: 'EventUserEvent', ThisDN: '7002', UserData: { filler, i } });
      if (i % 100 === 99) await h.nc.flush();
    }
    await waitUntil(dropped, 'an event dropped for the slow client');
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    // What was queued before the limit still arrives, then the close frame with the reason.
    expect(await slow.closed).toEqual({ code: 1008, reason: 'slow client: send queue over 65536 bytes' });
    await waitUntil(() => replica.clientCount() === 0, 'slow client gone');
  });

  it('cuts off a client that stops answering heartbeats', async () => {
    const replica = await h.startReplica('host-gw-hb', { heartbeatMs: 500 });
    const mute = await openOk(replica.wsUrl, 'agent-7001-secret', 'header', { autoPong: false });
    clients.push(mute);
    const lively = await open('agent-7001-secret', 'header', replica.wsUrl);
    const closed = await mute.closed;
    expect(closed.code).toBe(1006);
    expect(lively.ws.readyState).toBe(lively.ws.OPEN);
  });
});
