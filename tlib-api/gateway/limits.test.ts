/**
 * What one T-Library client may push, on a real site (nats-server, rtpengine, media-controller,
 * signaling, the gateway, SIP test phones): a burst of requests is refused past the client's
 * rate and in-flight cap with EventError 1429, the gateway's memory stays bounded and another
 * client is still served within a second; frames over the size limit close the connection; and a
 * call's parties are told only to a DN in the call, or to a supervisor's token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { metricValue, startTlibSite, type TlibSite } from '../../test/tlib/harness.js';
import { openOk, type RawClient } from '../../test/tlib/raw-client.js';
import { ErrorCodes } from '../../common/tlib/errors.js';

let h: TlibSite;
const clients: RawClient[] = [];
async function open(token: string): Promise<RawClient> {
  const c = await openOk(h.wsUrl, token);
  clients.push(c);
  return c;
}
async function ask(c: RawClient, frame: Record<string, unknown> & { ReferenceID: number }) {
  c.send(frame);
  return c.next((e) => e.ReferenceID === frame.ReferenceID);
}

beforeAll(async () => {
  h = await startTlibSite();
  await h.phones('7001', '7002');
  await h.site.reconfigure((c) => {
    c.spec.gateway.tokens = [...c.spec.gateway.tokens, { name: 'team-lead', token: 'team-lead-secret', dns: ['7003'], supervisor: true }, { name: 'agent-7003b', token: 'agent-7003b-secret', dns: ['7003'] }];
  });
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await h?.stop();
});

describe('QueryCall only for a DN in the call, or a supervisor', () => {
  let connId = '';
  beforeAll(async () => {
    const watcher = await open('supervisor-secret');
    await ask(watcher, { request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7001' });
    const [caller] = h.site.agents;
    await caller!.dial('7002');
    connId = (await watcher.next((e) => e.event === 'EventEstablished')).ConnID!;
  });

  it('refuses a DN that is not in the call with EventError 56', async () => {
    const stranger = await open('agent-7003b-secret');
    await ask(stranger, { request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7003' });
    expect(await ask(stranger, { request: 'QueryCall', ReferenceID: 2, ThisDN: '7003', ConnID: connId })).toMatchObject({
      event: 'EventError',
      ErrorCode: ErrorCodes.InvalidConnID,
      ErrorMessage: `DN 7003 is not a party of call ${connId}`,
    });
  });

  it('answers a DN in the call, and a supervisor token for any call of the site', async () => {
    const party = await open('agent-7002-secret');
    await ask(party, { request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7002' });
    expect(await ask(party, { request: 'QueryCall', ReferenceID: 2, ThisDN: '7002', ConnID: connId })).toMatchObject({ event: 'EventPartyInfo', ConnID: connId });
    const lead = await open('team-lead-secret');
    await ask(lead, { request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7003' });
    expect(await ask(lead, { request: 'QueryCall', ReferenceID: 2, ThisDN: '7003', ConnID: connId })).toMatchObject({
      event: 'EventPartyInfo',
      ConnID: connId,
      Parties: [{ DN: '7001' }, { DN: '7002' }],
    });
  });

  it('a client cannot make itself a supervisor: the flag in its frame is an unknown attribute', async () => {
    const stranger = await open('agent-7003b-secret');
    await ask(stranger, { request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7003' });
    expect(await ask(stranger, { request: 'QueryCall', ReferenceID: 2, ThisDN: '7003', ConnID: connId, supervisor: true })).toMatchObject({ event: 'EventError', ErrorCode: 53 });
  });
});

describe('per-client limits', () => {
  it('refuses a burst past the rate with EventError 1429, then cuts the client off; memory stays bounded; another client is served within 1 s', async () => {
    const BURST = 50_000;
    // The flooding desktop, by hand: it only counts what it gets, so the test's own memory stays flat.
    const flood = new WebSocket(h.wsUrl, { headers: { authorization: 'Bearer supervisor-secret' } });
    let answers = 0;
    let limited = 0;
    let inFlightRefusals = 0;
    let firstLimited: Record<string, unknown> | undefined;
    let registered: () => void = () => undefined;
    const isRegistered = new Promise<void>((r) => (registered = r));
    flood.on('message', (data) => {
      const text = String(data as Buffer);
      if (text.includes('"EventRegistered"')) return registered();
      answers++;
      if (text.includes(`"ErrorCode":${ErrorCodes.TooManyRequests}`)) {
        limited++;
        if (text.includes('already in flight')) inFlightRefusals++;
        firstLimited ??= JSON.parse(text) as Record<string, unknown>;
      }
    });
    const closed = new Promise<number>((r) => flood.on('close', (code) => r(code)));
    await new Promise((r) => flood.once('open', r));
    flood.send(JSON.stringify({ request: 'RegisterAddress', ReferenceID: 0, ThisDN: '7004' }));
    await isRegistered;

    const other = await open('agent-7001-secret');
    await ask(other, { request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7001' });

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    let waitedMs = NaN;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    try {
      for (let i = 1; i <= BURST; i++) flood.send(`{"request":"QueryCall","ReferenceID":${i},"ThisDN":"7004","ConnID":"0123456789abcdef"}`);
      const started = performance.now();
      const served = await ask(other, { request: 'QueryCall', ReferenceID: 2, ThisDN: '7001', ConnID: '0123456789abcdef' });
      waitedMs = performance.now() - started;
      expect(served).toMatchObject({ event: 'EventError', ErrorCode: ErrorCodes.InvalidConnID });
      expect(waitedMs, `another client waited ${waitedMs.toFixed(0)} ms`).toBeLessThan(1000);
      // A client that keeps sending after being refused is cut off.
      expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 10_000))])).toBe(1008);
    } finally {
      clearInterval(sampler);
    }
    const grownMiB = (rssPeak - rssBefore) / 2 ** 20;
    console.log(`burst of ${BURST}: ${answers} answered, ${limited} refused 1429 (${inFlightRefusals} for the in-flight cap); RSS +${grownMiB.toFixed(1)} MiB at peak; the other client answered in ${waitedMs.toFixed(0)} ms`);
    expect(limited).toBeGreaterThan(0);
    // The burst's first 100 frames fit the bucket; beyond 16 unanswered, they are refused too.
    expect(inFlightRefusals).toBeGreaterThan(0);
    expect(answers).toBeLessThan(BURST);
    expect(firstLimited).toMatchObject({ event: 'EventError', ErrorCode: 1429, ErrorMessage: expect.stringMatching(/^Too many requests: /) as unknown });
    expect(typeof firstLimited?.ReferenceID).toBe('number');
    // Before the limits, 50,000 requests grew the gateway by 263 MiB (139 -> 402).
    expect(grownMiB).toBeLessThan(96);
    // The frame that got the client cut off is counted, but its answer is not sent.
    expect(await metricValue(h.registry, 'huddle_tlib_requests_total', { request: 'QueryCall', result: 'limited' })).toBeGreaterThanOrEqual(limited);
  });

  it('closes a connection that sends a frame over the size limit (1009)', async () => {
    const c = await open('agent-7001-secret');
    c.send(JSON.stringify({ request: 'RegisterAddress', ReferenceID: 1, ThisDN: '7001', pad: 'x'.repeat(70 * 1024) }));
    expect(await c.closed).toMatchObject({ code: 1009 });
  });
});
