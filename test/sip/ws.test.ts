/**
 * SIP over WebSocket on our stack (RFC 7118, issue 19 point 1), with raw `ws` clients: the `sip`
 * subprotocol, one SIP message per frame, replies and requests over the client's connection only,
 * the flow reported when it closes, and what a stranger gets (garbage, caps, deadlines).
 */
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { metricValue, until } from '../e2e/site.js';
import { createSipStack, type Endpoint, type ServerRequest, type SipStack, type SipStackOptions } from '../../signaling/sip/index.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

let ca: TestCa;
const stacks: SipStack[] = [];
const clients: WebSocket[] = [];

beforeAll(() => {
  ca = createTestCa();
});
afterAll(() => ca.remove());
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(stacks.splice(0).map((s) => s.close(0)));
});

async function stack(opts: Partial<SipStackOptions> = {}): Promise<SipStack> {
  const s = await createSipStack({
    listen: [
      { transport: 'ws', host: '127.0.0.1', port: 0 },
      { transport: 'wss', host: '127.0.0.1', port: 0 },
      { transport: 'udp', host: '127.0.0.1', port: 0 },
    ],
    tls: { ...ca.issue(`ws-stack-${stacks.length}`), ca: ca.caPem },
    ...opts,
  });
  stacks.push(s);
  return s;
}

const portOf = (s: SipStack, transport: 'ws' | 'wss') => s.addresses.find((a) => a.transport === transport)!.port;

/** A browser-like client: the `sip` subprotocol unless told otherwise. */
function connect(url: string, protocols: string[] = ['sip']): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { ca: ca.caPem });
    clients.push(ws);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** What JsSIP and SIP.js send: a Via and Contact host under .invalid, transport WS. */
function register(callId: string, transport = 'WS'): string {
  return [
    'REGISTER sip:127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/${transport} q7ocb1an2k8d.invalid;branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    'From: <sip:7001@127.0.0.1>;tag=ftag',
    'To: <sip:7001@127.0.0.1>',
    `Call-ID: ${callId}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:k2j4f8@q7ocb1an2k8d.invalid;transport=${transport.toLowerCase()}>;expires=600`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function nextFrame(ws: WebSocket, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      clearTimeout(timer);
      expect(isBinary, 'SIP goes in text frames').toBe(false);
      resolve(data.toString('utf8'));
    });
  });
}

function closed(ws: WebSocket, timeoutMs = 3000): Promise<number> {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(-1);
    const timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    ws.once('close', (code: number) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('SIP over WebSocket (RFC 7118)', () => {
  it('answers over ws and wss on the connection the request came on; the top Via is stamped with where it came from', async () => {
    const s = await stack();
    const seen: ServerRequest[] = [];
    s.onRequest((req) => {
      seen.push(req);
      req.respond(200);
    });
    for (const transport of ['ws', 'wss'] as const) {
      const ws = await connect(`${transport}://127.0.0.1:${portOf(s, transport)}`);
      expect(ws.protocol).toBe('sip');
      const answer = nextFrame(ws);
      ws.send(register(`reg-${transport}`, transport.toUpperCase()));
      const text = await answer;
      expect(text).toMatch(/^SIP\/2\.0 200 /);
      expect(text).toMatch(new RegExp(`Via: SIP/2\\.0/${transport.toUpperCase()} q7ocb1an2k8d\\.invalid;branch=z9hG4bK-reg-${transport};received=127\\.0\\.0\\.1`));
      const req = seen.at(-1)!;
      expect(req.source.protocol).toBe(transport);
      expect(req.source.connectionId).toBe(`127.0.0.1:${req.source.port}`);
    }
  });

  it('sends a request to a browser over the connection it opened (no connection of our own), Via WS; fails it at once when the flow closed and reports the flow', async () => {
    const registry = new Registry();
    const server = await stack({ registry, listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }] });
    let flow: Endpoint | undefined;
    server.onRequest((req) => {
      flow = req.source;
      req.respond(200);
    });
    const flowsClosed: Endpoint[] = [];
    server.onFlowClosed((f) => flowsClosed.push(f));
    const ws = await connect(`ws://127.0.0.1:${portOf(server, 'ws')}`);
    const registered = nextFrame(ws);
    ws.send(register('reg-flow'));
    await registered;
    // Only the registered host and port, as the registrar keeps them: the connection is found by them.
    const binding = { protocol: 'ws' as const, host: flow!.host, port: flow!.port };

    const incoming = nextFrame(ws);
    const options = server.request('OPTIONS', 'sip:k2j4f8@q7ocb1an2k8d.invalid;transport=ws', { destination: binding });
    const text = await incoming;
    expect(text).toMatch(/^OPTIONS sip:k2j4f8@q7ocb1an2k8d\.invalid;transport=ws SIP\/2\.0\r\n/);
    expect(text).toMatch(/\r\nVia: SIP\/2\.0\/WS 127\.0\.0\.1:\d+;branch=z9hG4bK/);
    const branch = /branch=([^;\r\n]+)/.exec(text)![1];
    const callId = /\r\nCall-ID: ([^\r\n]+)/.exec(text)![1];
    const from = /\r\nFrom: ([^\r\n]+)/.exec(text)![1];
    const to = /\r\nTo: ([^\r\n]+)/.exec(text)![1];
    const via = /\r\nVia: ([^\r\n]+)/.exec(text)![1];
    ws.send(`SIP/2.0 200 OK\r\nVia: ${via}\r\nFrom: ${from}\r\nTo: ${to};tag=b\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
    expect((await options).status).toBe(200);
    expect(branch).toMatch(/^z9hG4bK/);
    expect(await metricValue(registry, 'huddle_sip_connections', { transport: 'ws' })).toBe(1);

    ws.close();
    await closed(ws);
    await until(() => flowsClosed.length === 1, 'the flow to be reported closed');
    expect(flowsClosed[0]).toMatchObject({ protocol: 'ws', host: binding.host, port: binding.port });
    const started = Date.now();
    const late = await server.request('OPTIONS', 'sip:k2j4f8@q7ocb1an2k8d.invalid;transport=ws', { destination: binding });
    expect(late.status).toBe(503);
    expect(late.reason).toMatch(/no ws connection/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('takes a message without Content-Length (the frame delimits it, RFC 7118 §5.1): its body is the rest of the frame', async () => {
    const s = await stack();
    const bodies: string[] = [];
    s.onRequest((req) => {
      bodies.push(req.message.body.toString('utf8'));
      req.respond(200);
    });
    const ws = await connect(`ws://127.0.0.1:${portOf(s, 'ws')}`);
    const answer = nextFrame(ws);
    const message = register('no-cl')
      .replace('REGISTER sip:127.0.0.1', 'MESSAGE sip:7002@127.0.0.1')
      .replace('CSeq: 1 REGISTER', 'CSeq: 1 MESSAGE')
      .replace('Content-Length: 0\r\n\r\n', 'Content-Type: text/plain\r\n\r\nhello über\r\n');
    expect(message).not.toMatch(/Content-Length/);
    ws.send(message);
    expect(await answer).toMatch(/^SIP\/2\.0 200 /);
    expect(bodies).toEqual(['hello über\r\n']);
  });

  it('refuses to start a wss listener without a certificate', async () => {
    await expect(createSipStack({ listen: [{ transport: 'wss', host: '127.0.0.1', port: 0 }] })).rejects.toThrow(/is wss but no certificate is configured/);
  });

  it('answers the RFC 5626 CRLF keep-alive SIP.js sends with a CRLF', async () => {
    const s = await stack();
    const ws = await connect(`ws://127.0.0.1:${portOf(s, 'ws')}`);
    const pong = nextFrame(ws);
    ws.send('\r\n\r\n');
    expect(await pong).toBe('\r\n');
  });
});

describe('SIP over WebSocket: strangers', () => {
  it('refuses an upgrade without the sip subprotocol, and plain HTTP', async () => {
    const s = await stack();
    await expect(connect(`ws://127.0.0.1:${portOf(s, 'ws')}`, ['chat'])).rejects.toThrow(/HTTP 400/);
    await expect(connect(`ws://127.0.0.1:${portOf(s, 'ws')}`, [])).rejects.toThrow(/HTTP 400/);
    const res = await fetch(`http://127.0.0.1:${portOf(s, 'ws')}/`);
    expect(res.status).toBe(426);
  });

  it('answers a malformed request 400 and closes the connection; a frame that is no SIP at all closes it too', async () => {
    const registry = new Registry();
    const s = await stack({ registry });
    const handled: string[] = [];
    s.onRequest((req) => {
      handled.push(req.method);
      req.respond(200);
    });
    const ws = await connect(`ws://127.0.0.1:${portOf(s, 'ws')}`);
    const answer = nextFrame(ws);
    const gone = closed(ws);
    ws.send(register('bad-cseq').replace('CSeq: 1 REGISTER', 'CSeq: 1 INVITE'));
    expect(await answer).toMatch(/^SIP\/2\.0 400 CSeq method does not match request method/);
    expect(await gone).toBe(1002);

    const garbage = await connect(`ws://127.0.0.1:${portOf(s, 'ws')}`);
    const garbageGone = closed(garbage);
    garbage.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
    expect(await garbageGone).toBe(1002);
    expect(handled).toEqual([]);
    expect(await metricValue(registry, 'huddle_sip_parse_errors_total', { transport: 'ws' })).toBe(2);
  });

  it('closes a frame larger than a SIP message may be (1009) before it is read whole', async () => {
    const s = await stack({ limits: { maxMessageBytes: 4096 } });
    const ws = await connect(`ws://127.0.0.1:${portOf(s, 'ws')}`);
    const gone = closed(ws);
    ws.send('x'.repeat(10_000));
    expect(await gone).toBe(1009);
  });

  it('caps connections per source address and in total, as TCP and TLS', async () => {
    const registry = new Registry();
    const s = await stack({ registry, connections: { maxPerSource: 2 } });
    const url = `ws://127.0.0.1:${portOf(s, 'ws')}`;
    await connect(url);
    await connect(url);
    await expect(connect(url)).rejects.toThrow();
    expect(await metricValue(registry, 'huddle_sip_connections_refused_total', { transport: 'ws', reason: 'max-per-source' })).toBe(1);
    expect(await metricValue(registry, 'huddle_sip_connections', { transport: 'ws' })).toBe(2);
  });

  it('closes a connection that upgrades but sends no SIP message within the head deadline, and one that never upgrades', async () => {
    const registry = new Registry();
    const s = await stack({ registry, connections: { headTimeoutMs: 300 } });
    const ws = await connect(`ws://127.0.0.1:${portOf(s, 'ws')}`);
    const started = Date.now();
    await closed(ws, 3000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await metricValue(registry, 'huddle_sip_connections_timed_out_total', { transport: 'ws', phase: 'head' })).toBe(1);

    const { Socket } = await import('node:net');
    const raw = new Socket();
    await new Promise<void>((resolve) => raw.connect(portOf(s, 'ws'), '127.0.0.1', () => resolve()));
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await new Promise<void>((resolve) => raw.once('close', () => resolve()));
    expect(await metricValue(registry, 'huddle_sip_connections_timed_out_total', { transport: 'ws', phase: 'handshake' })).toBe(1);
  });
});
