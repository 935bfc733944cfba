/**
 * The gateway on a real site: real nats-server, rtpengine, media-controller and signaling (the
 * real call model), SIP test phones making the calls. The gateway's own duties are what is
 * checked here: authentication, per-DN authorization, malformed frames, fan-out to the DNs
 * concerned, the ReferenceID only to the asker across replicas, time-outs, slow clients,
 * heartbeats and metrics.
 */
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startTlibSite, waitUntil, type TlibSite } from '../../test/tlib/harness.js';
import { openOk, openRaw, type RawClient } from '../../test/tlib/raw-client.js';
import { Subjects } from '../../common/nats/subjects.js';
import { TlibAttemptMs } from '../../common/nats/tlib-contract.js';
import { TlibClient } from '../client/index.js';
import { WebSocket } from 'ws';
import { TlibProtocolVersion, TlibSubprotocol, TlibVersionHeader } from '../../common/tlib/version.js';

const hsSecret = 'a-test-secret-of-at-least-32-bytes!!';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const JwtEnv = { HUDDLE_GATEWAY_JWT_HS256_SECRET: hsSecret, HUDDLE_GATEWAY_JWT_RS256_PUBLIC_KEY: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() };

let h: TlibSite;
const clients: RawClient[] = [];
async function open(token: string, via: 'header' | 'query' = 'header', url = h.wsUrl): Promise<RawClient> {
  const c = await openOk(url, token, via);
  clients.push(c);
  return c;
}
async function register(c: RawClient, dn: string, ref: number) {
  c.send({ request: 'RegisterAddress', ReferenceID: ref, ThisDN: dn });
  return c.next((e) => e.ReferenceID === ref);
}
const signalingRequests = (request: string) => metricValue(h.registry, 'huddle_signaling_tlib_requests_total', { request });

beforeAll(async () => {
  // The gateway takes its JWT keys from the environment the Secrets are mounted into.
  Object.assign(process.env, JwtEnv);
  h = await startTlibSite();
  await h.phones('7001', '7002', '7004', '7005');
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await h?.stop();
  for (const key of Object.keys(JwtEnv)) delete process.env[key];
});

describe('authentication', () => {
  it('accepts a configured token in the Authorization header or ?token=, refuses others with 401', async () => {
    await open('agent-7001-secret', 'header');
    await open('agent-7001-secret', 'query');
    expect(await openRaw(h.wsUrl, undefined)).toMatchObject({ refused: 401, body: expect.stringContaining('no bearer token') as unknown });
    expect(await openRaw(h.wsUrl, 'not-a-token')).toMatchObject({ refused: 401, body: expect.stringContaining('unknown token') as unknown });
    expect(await openRaw(h.wsUrl.replace('/tlib', '/other'), 'agent-7001-secret')).toMatchObject({ refused: 404 });
  });

  it('reads the tokens at connect time, so config changes apply to the next client', async () => {
    await h.site.reconfigure((c) => {
      c.spec.gateway.tokens = [...c.spec.gateway.tokens.filter((t) => t.name !== 'agent-7002'), { name: 'agent-7004', token: 'agent-7004-new-secret', dns: ['7004'] }];
    });
    expect(await openRaw(h.wsUrl, 'agent-7002-secret')).toMatchObject({ refused: 401 });
    const c = await open('agent-7004-new-secret');
    expect(await register(c, '7004', 1)).toMatchObject({ event: 'EventRegistered', ThisDN: '7004' });
  });

  it('accepts HS256 and RS256 JWTs (keys from the environment) whose dns claim lists the DNs, and refuses expired or foreign ones', async () => {
    const hs = await new SignJWT({ dns: ['7005'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('jwt-agent').setExpirationTime('5m').sign(new TextEncoder().encode(hsSecret));
    const c1 = await open(hs);
    expect(await register(c1, '7005', 1)).toMatchObject({ event: 'EventRegistered', ThisDN: '7005' });
    expect(await register(c1, '7003', 2)).toMatchObject({ event: 'EventError', ErrorCode: 53 });
    const rs = await new SignJWT({ dns: '7003' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(rsa.privateKey);
    const c2 = await open(rs, 'query');
    expect(await register(c2, '7003', 1)).toMatchObject({ event: 'EventRegistered', ThisDN: '7003' });
    const expired = await new SignJWT({ dns: ['7005'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(hsSecret));
    expect(await openRaw(h.wsUrl, expired)).toMatchObject({ refused: 401, body: expect.stringContaining('invalid JWT') as unknown });
    const foreign = await new SignJWT({ dns: ['7005'] }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-xx'));
    expect(await openRaw(h.wsUrl, foreign)).toMatchObject({ refused: 401 });
  });
});

describe('protocol version', () => {
  /** A handshake offering `protocols`: the response's status, version header and the subprotocol agreed. */
  function handshake(protocols: string[]): Promise<{ status: number; version?: string; protocol?: string; body?: string }> {
    const ws = new WebSocket(h.wsUrl, protocols, { headers: { authorization: 'Bearer agent-7001-secret' } });
    return new Promise((resolve, reject) => {
      ws.once('upgrade', (res) => {
        ws.once('open', () => {
          resolve({ status: res.statusCode ?? 0, version: res.headers[TlibVersionHeader.toLowerCase()] as string, protocol: ws.protocol });
          ws.close();
        });
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.once('error', reject);
    });
  }

  it('names its version in the handshake, agrees on huddle.tlib.v1 and refuses a client that offers only another version', async () => {
    expect(TlibSubprotocol).toBe(`huddle.tlib.v${TlibProtocolVersion}`);
    expect(await handshake([])).toEqual({ status: 101, version: String(TlibProtocolVersion), protocol: '' });
    expect(await handshake(['huddle.tlib.v0', TlibSubprotocol])).toEqual({ status: 101, version: String(TlibProtocolVersion), protocol: TlibSubprotocol });
    expect(await handshake(['huddle.tlib.v2'])).toEqual({ status: 400, body: `this gateway speaks T-Library protocol ${TlibSubprotocol}; offered: huddle.tlib.v2\n` });
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

  it('lets a client register and control only the DNs its token allows; refused requests never reach signaling', async () => {
    const c = await open('agent-7001-secret');
    const [registersBefore, callsBefore] = [await signalingRequests('RegisterAddress'), await signalingRequests('MakeCall')];
    expect(await register(c, '7002', 1)).toMatchObject({ event: 'EventError', ErrorCode: 53, ErrorMessage: expect.stringContaining('7002 is not allowed') as unknown });
    c.send({ request: 'MakeCall', ReferenceID: 2, ThisDN: '7001', OtherDN: '7002' });
    expect(await c.next((e) => e.ReferenceID === 2)).toMatchObject({ event: 'EventError', ErrorCode: 41 });
    expect(await signalingRequests('RegisterAddress')).toBe(registersBefore);
    expect(await signalingRequests('MakeCall')).toBe(callsBefore);
    expect(await register(c, '7001', 3)).toMatchObject({ event: 'EventRegistered', ThisDN: '7001' });
    expect(await signalingRequests('RegisterAddress')).toBe(registersBefore + 1);
    // Signaling's own answer comes through: 7999 is not a DN of the site.
    const sup = await open('supervisor-secret');
    expect(await register(sup, '7999', 1)).toMatchObject({ event: 'EventError', ErrorCode: 59, ReferenceID: 1 });
  });

  it("fans a real call's events out to the DNs concerned, the ReferenceID only to the asker", async () => {
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
    const connID = dialing.ConnID;
    const seen = await supervisor.next((e) => e.event === 'EventDialing' && e.ConnID === connID);
    expect(seen.ReferenceID).toBeUndefined();
    expect(await callee.next((e) => e.event === 'EventRinging')).toMatchObject({ ThisDN: '7002', ConnID: connID });
    // Both phones answer on their own: the call is up for both DNs.
    await agent.next((e) => e.event === 'EventEstablished' && e.ConnID === connID);
    await callee.next((e) => e.event === 'EventEstablished' && e.ConnID === connID);
    await supervisor.next((e) => e.event === 'EventEstablished' && e.ConnID === connID);
    // A user event on 7003 after the call events: the bystander got it and nothing about the call.
    bystander.send({ request: 'SendUserEvent', ReferenceID: 8, ThisDN: '7003', UserData: { marker: 1 } });
    expect(await bystander.next((e) => e.ReferenceID === 8)).toMatchObject({ event: 'EventACK' });
    expect(await bystander.next((e) => e.event === 'EventUserEvent')).toMatchObject({ ThisDN: '7003', UserData: { marker: 1 } });
    expect(bystander.events.filter((e) => e.ConnID === connID)).toHaveLength(0);

    callee.send({ request: 'ReleaseCall', ReferenceID: 43, ThisDN: '7002', ConnID: connID });
    expect(await callee.next((e) => e.event === 'EventReleased' && e.ConnID === connID)).toMatchObject({ ReferenceID: 43, ThisDN: '7002' });
    expect((await agent.next((e) => e.event === 'EventReleased' && e.ConnID === connID)).ReferenceID).toBeUndefined();
    expect(agent.events.filter((e) => e.ConnID === connID && e.ReferenceID !== undefined).map((e) => e.event)).toEqual(['EventDialing']);
  });

  it('gives a registering client the current state of its calls, and only that client', async () => {
    const [caller] = h.site.agents.filter((agent) => agent.dn === '7004');
    const other = await open('supervisor-secret');
    await register(other, '7004', 1);
    await caller!.dial('7005');
    const established = await other.next((e) => e.event === 'EventEstablished' && e.ThisDN === '7004');
    const c = await open('supervisor-secret');
    await register(c, '7004', 9);
    const info = await c.next((e) => e.event === 'EventPartyInfo' && e.ConnID === established.ConnID);
    expect(info.ReferenceID).toBe(9);
    expect(info.Parties?.map((p) => p.DN).sort()).toEqual(['7004', '7005']);
    expect(await c.next((e) => e.event === 'EventUserEvent' && e.ConnID === established.ConnID)).toMatchObject({ ReferenceID: 9, Extensions: { LCTParty0: '7004', LCTParty1: '7005', LCTPartiesLength: 2 } });
    c.send({ request: 'ReleaseCall', ReferenceID: 10, ThisDN: '7004', ConnID: established.ConnID });
    await other.next((e) => e.event === 'EventReleased' && e.ConnID === established.ConnID);
    expect(other.events.filter((e) => e.event === 'EventPartyInfo')).toHaveLength(0);
  });

  it("ends a closed connection's registrations in signaling too", async () => {
    const c = await open('supervisor-secret');
    await register(c, '7004', 1);
    await register(c, '7005', 2);
    const before = await metricValue(h.registry, 'huddle_signaling_tlib_requests_total', { request: 'UnregisterAddress', result: 'ok' });
    await c.close();
    await waitUntil(async () => (await metricValue(h.registry, 'huddle_signaling_tlib_requests_total', { request: 'UnregisterAddress', result: 'ok' })) === before + 2, 'both DNs unregistered in signaling');
  });

  it('counts clients, registered DNs, events and requests', async () => {
    const before = await metricValue(h.registry, 'huddle_gateway_clients');
    const c = await open('agent-7003-secret');
    await waitUntil(async () => (await metricValue(h.registry, 'huddle_gateway_clients')) === before + 1, 'client counted');
    await register(c, '7003', 1);
    expect(await metricValue(h.registry, 'huddle_gateway_registered_dns')).toBeGreaterThanOrEqual(1);
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'ok' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'forbidden' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'error' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'invalid', result: 'invalid' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_request_duration_seconds', { request: 'RegisterAddress' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_tlib_request_duration_seconds', { request: 'MakeCall' })).toBeGreaterThan(0);
    expect(await metricValue(h.registry, 'huddle_gateway_events_total', { result: 'delivered' })).toBeGreaterThan(0);
    await c.close();
    await waitUntil(async () => (await metricValue(h.registry, 'huddle_gateway_clients')) === before, 'client gone');
  });
});

describe('at scale', () => {
  it('delivers through any replica: events reach clients of both, the ReferenceID only the asker', async () => {
    const replica = await h.startReplica('gw-2');
    const onOne = await open('supervisor-secret');
    const onTwo = await open('supervisor-secret', 'header', replica.wsUrl);
    await register(onOne, '7004', 1);
    await register(onTwo, '7004', 1);
    onTwo.send({ request: 'MakeCall', ReferenceID: 3, ThisDN: '7004', OtherDN: '7005' });
    const mine = await onTwo.next((e) => e.event === 'EventDialing');
    expect(mine.ReferenceID).toBe(3);
    const theirs = await onOne.next((e) => e.event === 'EventDialing' && e.ConnID === mine.ConnID);
    expect(theirs.ReferenceID).toBeUndefined();
    await onOne.next((e) => e.event === 'EventEstablished' && e.ConnID === mine.ConnID);
    onOne.send({ request: 'ReleaseCall', ReferenceID: 4, ThisDN: '7004', ConnID: mine.ConnID });
    expect(await onOne.next((e) => e.event === 'EventReleased')).toMatchObject({ ReferenceID: 4 });
    expect((await onTwo.next((e) => e.event === 'EventReleased')).ReferenceID).toBeUndefined();
  });

  it('drops a client that does not read, with a close reason, instead of queueing without bound', async () => {
    const replica = await h.startReplica('gw-slow', { maxQueuedBytes: 64 * 1024 });
    const slow = await open('supervisor-secret', 'header', replica.wsUrl);
    await register(slow, '7002', 1);
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // Real events for 7002: user events another desktop on 7002 sends through signaling.
    const sender = await TlibClient.connect({ url: h.wsUrl, token: 'supervisor-secret', reconnect: false });
    try {
      await sender.registerAddress({ thisDN: '7002' });
      const filler = 'x'.repeat(48 * 1024);
      const dropped = async () => (await metricValue(replica.registry, 'huddle_gateway_events_total', { result: 'dropped' })) > 0;
      for (let batch = 0; batch < 200 && !(await dropped()); batch++) {
        await Promise.all(Array.from({ length: 10 }, (_, i) => sender.sendUserEvent({ thisDN: '7002', userData: { filler, i: batch * 10 + i } })));
      }
      await waitUntil(dropped, 'an event dropped for the slow client');
    } finally {
      await sender.close();
    }
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    // What was queued before the limit still arrives, then the close frame with the reason.
    expect(await slow.closed).toEqual({ code: 1008, reason: 'slow client: send queue over 65536 bytes' });
    await waitUntil(() => replica.clientCount() === 0, 'slow client gone');
  });

  it('cuts off a client that stops answering heartbeats', async () => {
    const replica = await h.startReplica('gw-hb', { heartbeatMs: 1000 });
    const mute = await openOk(replica.wsUrl, 'agent-7001-secret', 'header', { autoPong: false });
    clients.push(mute);
    const lively = await open('agent-7001-secret', 'header', replica.wsUrl);
    const closed = await mute.closed;
    expect(closed.code).toBe(1006);
    expect(lively.ws.readyState).toBe(lively.ws.OPEN);
  });
});

// Last: these stall the bus and then stop signaling for good.
describe('when signaling does not answer', () => {
  it('sends an unanswered request again with the same id, and signaling carries it out once', async () => {
    const c = await open('supervisor-secret');
    const observer = await open('supervisor-secret');
    expect(await register(c, '7002', 80)).toMatchObject({ event: 'EventRegistered' });
    expect(await register(observer, '7002', 81)).toMatchObject({ event: 'EventRegistered' });
    const attempts: string[] = [];
    const nc = h.site.context('signaling').nc;
    const watch = nc.subscribe(Subjects.tlibRequest(h.location, '7002'), {
      callback: (_err, msg) => {
        attempts.push((msg.json() as { id?: string }).id ?? 'none');
      },
    });
    await nc.flush();
    const pid = h.site.nats.process.pid!;
    // A bus that takes nothing for longer than one attempt: the gateway's second attempt queues behind the first.
    process.kill(pid, 'SIGSTOP');
    c.send({ request: 'SendUserEvent', ReferenceID: 82, ThisDN: '7002', UserData: { once: 'yes' } });
    await new Promise((r) => setTimeout(r, TlibAttemptMs + 500));
    process.kill(pid, 'SIGCONT');
    expect(await c.next((e) => e.ReferenceID === 82)).toMatchObject({ event: 'EventACK' });
    await new Promise((r) => setTimeout(r, 1000));
    watch.unsubscribe();
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(attempts).size).toBe(1);
    expect(observer.events.filter((e) => e.event === 'EventUserEvent' && (e.UserData as { once?: string } | undefined)?.once === 'yes')).toHaveLength(1);
  });

  it('answers EventError 57 when signaling does not answer in time', async () => {
    const replica = await h.startReplica('gw-timeout', { requestTimeoutMs: 1000 });
    const c = await open('supervisor-secret', 'header', replica.wsUrl);
    const pid = h.site.nats.process.pid;
    if (pid === undefined) throw new Error('nats-server has no pid');
    // A stalled bus: the request reaches nobody until the gateway has given up on it.
    process.kill(pid, 'SIGSTOP');
    try {
      expect(await register(c, '7005', 77)).toMatchObject({ event: 'EventError', ErrorCode: 57, ReferenceID: 77, ErrorMessage: expect.stringContaining('did not answer RegisterAddress') as unknown });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(await metricValue(replica.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'timeout' })).toBe(1);
    expect(await register(c, '7005', 78)).toMatchObject({ event: 'EventRegistered', ThisDN: '7005' });
  });

  it('answers EventError 58 once no signaling service answers for the site', async () => {
    const c = await open('supervisor-secret');
    expect(await register(c, '7004', 5)).toMatchObject({ event: 'EventRegistered' });
    await h.site.stopComponent('signaling');
    expect(await register(c, '7005', 6)).toMatchObject({ event: 'EventError', ErrorCode: 58, ReferenceID: 6 });
    c.send({ request: 'QueryCall', ReferenceID: 7, ThisDN: '7004', ConnID: '0123456789abcdef' });
    expect(await c.next((e) => e.ReferenceID === 7)).toMatchObject({ event: 'EventError', ErrorCode: 58 });
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'RegisterAddress', result: 'unavailable' })).toBe(1);
  });
});
