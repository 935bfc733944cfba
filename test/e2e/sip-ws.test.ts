/**
 * SIP over WebSocket through a whole site (issue 19 point 1): SIP.js clients, as a browser runs
 * them, register their DN with digest over ws and wss, are called by tone phones and call them,
 * always over the connection they opened; when that connection closes their registration ends.
 * Their media is a tone phone's plain RTP through rtpengine (WebRTC media is point 2), so each call
 * is proven with audio both ways.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { freePort } from '../../common/supervisor/ports.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';
import { TonePhone, toneFrequency } from '../support/tone-phone.js';
import { WsPhone } from '../support/ws-phone.js';
import { metric, Site, until } from './site.js';

let ca: TestCa;
let site: Site;
let wsPort: number;
let wssPort: number;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  ca = createTestCa();
  const server = ca.issue('site');
  wsPort = await freePort();
  wssPort = await freePort();
  const tlsPort = await freePort();
  site = await Site.start({
    edit: (yaml) =>
      yaml.replace(
        /\n {2}sip:\n {4}listen:\n/,
        `\n  sip:\n    tls: { certFile: ${server.certFile}, keyFile: ${server.keyFile}, port: ${tlsPort} }\n    listen:\n` +
          `      - { transport: ws, host: 127.0.0.1, port: ${wsPort} }\n      - { transport: wss, host: 127.0.0.1, port: ${wssPort} }\n`,
      ),
  });
}, 60_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await site?.stop();
  ca?.remove();
});

/** A registered browser on `dn` sending tone k. */
async function browser(dn: string, tone: number, transport: 'ws' | 'wss' = 'ws'): Promise<{ phone: WsPhone; media: TonePhone }> {
  const media = await TonePhone.start({ frequency: toneFrequency(tone) });
  const phone = await WsPhone.start({
    dn,
    password: site.password(dn),
    server: `${transport}://127.0.0.1:${transport === 'ws' ? wsPort : wssPort}`,
    domain: '127.0.0.1',
    media,
    ...(transport === 'wss' ? { ca: ca.caPem } : {}),
  });
  closers.push(async () => {
    await phone.close();
    await media.close();
  });
  expect(await phone.register()).toBe(200);
  return { phone, media };
}

async function phone(dn: string, tone: number) {
  const agent = await site.agent(dn, tone, { desktop: false });
  closers.push(() => agent.close());
  return agent;
}

const wsConnections = () => metric(site, 'huddle_sip_connections', { transport: 'ws' });

describe('SIP over WebSocket through a site', () => {
  it('a SIP.js client registers over ws with digest, is called by a tone phone and answers: both hear each other; the INVITE came over its own connection, Via WS', async () => {
    const challengedBefore = await metric(site, 'huddle_sip_responses_total', { direction: 'out', method: 'REGISTER', code: '401' });
    const b = await browser('7001', 1);
    expect(await metric(site, 'huddle_sip_responses_total', { direction: 'out', method: 'REGISTER', code: '401' })).toBe(challengedBefore + 1);
    const caller = await phone('7002', 2);

    await caller.dial('7001');
    await b.phone.established();
    await caller.hears((h) => h.tones.includes(toneFrequency(1)));
    await b.media.waitFor((h) => h.tones.includes(toneFrequency(2)), 8000);

    const invite = b.phone.invitations[0]!.request;
    expect(invite.getHeader('Via')).toMatch(/^SIP\/2\.0\/WS 127\.0\.0\.1:\d+;/);
    expect(invite.getHeader('Contact')).toMatch(/;transport=ws>/);
    // The request reached the browser over the socket it opened; none other was opened either way.
    expect(b.phone.socketsOpened).toBe(1);
    expect(await wsConnections()).toBe(1);
    await caller.phone.hangup();
    await until(() => b.phone.invitations[0]!.state === 'Terminated', 'the BYE to reach the browser');
  }, 40_000);

  it('the SIP.js client calls a tone phone (its INVITE challenged 407 and answered over the WebSocket): both hear each other', async () => {
    const b = await browser('7003', 3);
    const callee = await phone('7004', 4);
    const challengedBefore = await metric(site, 'huddle_sip_responses_total', { direction: 'out', method: 'INVITE', code: '407' });
    expect(await b.phone.call('7004')).toBe(200);
    await b.phone.established();
    expect(await metric(site, 'huddle_sip_responses_total', { direction: 'out', method: 'INVITE', code: '407' })).toBe(challengedBefore + 1);
    await callee.hears((h) => h.tones.includes(toneFrequency(3)));
    await b.media.waitFor((h) => h.tones.includes(toneFrequency(4)), 8000);
    await b.phone.hangup();
  }, 40_000);

  it('the browser closing its socket ends its registration: a later call to its DN is answered 480 at once', async () => {
    const caller = await phone('7002', 2);
    const b = await browser('7005', 5);
    const registered = await metric(site, 'huddle_sip_registrations');
    const connections = await wsConnections();
    b.phone.dropConnection();
    await until(async () => (await wsConnections()) === connections - 1, 'signaling to see the WebSocket close');
    await until(async () => (await metric(site, 'huddle_sip_registrations')) === registered - 1, 'the binding to go');
    const started = Date.now();
    const outcome = await caller.phone.call(`sip:7005@127.0.0.1:${site.sipPort}`, caller.media.offer());
    expect(outcome.answered).toBe(false);
    expect(outcome.answered ? 0 : outcome.status).toBe(480);
    expect(Date.now() - started).toBeLessThan(2000);
  }, 40_000);

  it('wss with the TLS certificate of SIP over TLS: a SIP.js client trusting the test CA registers and is called, Via WSS', async () => {
    const b = await browser('7001', 6, 'wss');
    const caller = await phone('7003', 7);
    await caller.dial('7001');
    await b.phone.established();
    await caller.hears((h) => h.tones.includes(toneFrequency(6)));
    await b.media.waitFor((h) => h.tones.includes(toneFrequency(7)), 8000);
    expect(b.phone.invitations[0]!.request.getHeader('Via')).toMatch(/^SIP\/2\.0\/WSS 127\.0\.0\.1:\d+;/);
    expect(await metric(site, 'huddle_sip_connections', { transport: 'wss' })).toBe(1);
    await caller.phone.hangup();
  }, 40_000);
});

describe('SIP over WebSocket: strangers', () => {
  function rawClient(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}`, ['sip']);
      closers.push(() => ws.terminate());
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  }

  it('an unauthenticated REGISTER over ws is challenged 401; wrong credentials never register', async () => {
    const ws = await rawClient();
    const answer = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    ws.send(
      [
        `REGISTER sip:127.0.0.1 SIP/2.0`,
        'Via: SIP/2.0/WS stranger.invalid;branch=z9hG4bK-stranger-1',
        'Max-Forwards: 70',
        'From: <sip:7002@127.0.0.1>;tag=s1',
        'To: <sip:7002@127.0.0.1>',
        'Call-ID: stranger-1',
        'CSeq: 1 REGISTER',
        'Contact: <sip:x@stranger.invalid;transport=ws>',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    const text = await answer;
    expect(text).toMatch(/^SIP\/2\.0 401 /);
    expect(text).toMatch(/\r\nWWW-Authenticate: Digest realm="SiteA"/);

    const media = await TonePhone.start({ frequency: null });
    closers.push(() => media.close());
    const intruder = await WsPhone.start({ dn: '7002', password: 'not-the-password', server: `ws://127.0.0.1:${wsPort}`, domain: '127.0.0.1', media });
    closers.push(() => intruder.close());
    expect(await intruder.register()).toBe(401);
  }, 20_000);

  it('garbage frames are dropped with the connection closed', async () => {
    const ws = await rawClient();
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
    ws.send('GET / HTTP/1.1\r\n\r\n');
    expect(await closed).toBe(1002);
  });
});
