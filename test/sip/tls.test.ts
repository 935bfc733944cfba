/**
 * SIP over TLS on our stack (issue 15 point 3) and the TCP/TLS connection caps and deadlines (point 5),
 * with certificates from a test CA made by the openssl CLI.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSipStack, type ServerRequest, type SipStack, type SipStackOptions } from '../../signaling/sip/index.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

let ca: TestCa;
const stacks: SipStack[] = [];
const sockets: net.Socket[] = [];

beforeAll(() => {
  ca = createTestCa();
});
afterAll(() => ca.remove());
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(stacks.splice(0).map((s) => s.close(0)));
});

async function stack(opts: Partial<SipStackOptions> & { cert?: { certFile: string; keyFile: string } } = {}): Promise<SipStack> {
  const { cert, ...rest } = opts;
  const s = await createSipStack({
    listen: [
      { transport: 'tls', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    tls: { ...(cert ?? ca.issue(`stack-${stacks.length}`)), ca: ca.caPem, reloadMs: 100 },
    ...rest,
  });
  stacks.push(s);
  return s;
}

const portOf = (s: SipStack, transport: 'tls' | 'tcp') => s.addresses.find((a) => a.transport === transport)!.port;

function options(port: number, callId: string, transport = 'TLS'): string {
  return [
    `OPTIONS sip:huddle@127.0.0.1:${port};transport=${transport.toLowerCase()} SIP/2.0`,
    `Via: SIP/2.0/${transport} 127.0.0.1:9;branch=z9hG4bK-${callId};rport`,
    'Max-Forwards: 70',
    'From: <sip:probe@127.0.0.1>;tag=1',
    'To: <sip:huddle@127.0.0.1>',
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** A TLS connection trusting the test CA; resolves once the handshake is done. */
function tlsConnect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem }, () => resolve(s));
    sockets.push(s);
    s.once('error', reject);
  });
}

/** The first response on `socket` after writing `text`. */
function exchange(socket: net.Socket, text: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms; got: ${got}`)), timeoutMs);
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as { labels: Record<string, string>; value: number }[] | undefined)?.find((x) => Object.entries(labels).every(([k, l]) => String(x.labels[k]) === l));
  return v?.value ?? 0;
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SIP over TLS', () => {
  it('carries requests with Via SIP/2.0/TLS and sends requests back over the connection they came on', async () => {
    const server = await stack();
    const phone = await stack();
    let registered: ServerRequest | undefined;
    server.onRequest((req) => {
      registered = req;
      req.respond(200);
    });
    const res = await phone.request('REGISTER', `sip:127.0.0.1:${portOf(server, 'tls')};transport=tls`, { contactUser: '7001' });
    expect(res.status).toBe(200);
    expect(registered!.source.protocol).toBe('tls');
    expect(registered!.message.get('via')).toMatch(/^SIP\/2\.0\/TLS /);
    expect(registered!.message.get('contact')).toMatch(/;transport=tls/);

    // The registered flow: the server's request reaches the phone over the phone's own connection.
    let reached: ServerRequest | undefined;
    phone.onRequest((req) => {
      reached = req;
      req.respond(200);
    });
    const back = await server.request('OPTIONS', phone.contact('7001', 'tls'), { destination: registered!.source });
    expect(back.status).toBe(200);
    expect(reached!.source.protocol).toBe('tls');
    expect(reached!.source.port).toBe(portOf(server, 'tls'));
  });

  it('a sips: URI is reached over TLS', async () => {
    const server = await stack();
    const phone = await stack();
    let via = '';
    server.onRequest((req) => {
      via = req.message.get('via') ?? '';
      req.respond(200);
    });
    expect((await phone.request('OPTIONS', `sips:huddle@127.0.0.1:${portOf(server, 'tls')}`)).status).toBe(200);
    expect(via).toMatch(/^SIP\/2\.0\/TLS /);
  });

  it('a client that does not trust the certificate gets no SIP answer: 503 from the transport', async () => {
    const server = await stack();
    const stranger = await createSipStack({ listen: [{ transport: 'tls', host: '127.0.0.1', port: 0 }], tls: ca.issue('stranger') });
    stacks.push(stranger);
    const res = await stranger.request('OPTIONS', `sip:huddle@127.0.0.1:${portOf(server, 'tls')};transport=tls`);
    expect(res.status).toBe(503);
  });

  it('plain SIP sent to the TLS port is not answered and the connection is closed', async () => {
    const server = await stack();
    const plain = net.connect(portOf(server, 'tls'), '127.0.0.1');
    sockets.push(plain);
    let answered = '';
    plain.on('data', (d: Buffer) => (answered += d.toString('latin1')));
    plain.on('error', () => undefined);
    plain.write(options(portOf(server, 'tls'), 'plain', 'TCP'));
    expect(await closedWithin(plain, 3000)).toBe(true);
    expect(answered).not.toMatch(/^SIP\/2\.0/);
  });

  it('re-reads a rotated certificate: the next connection sees the new one, an open connection keeps working', async () => {
    const files = ca.issue('rotating', 'before-rotation');
    const server = await stack({ cert: files });
    const port = portOf(server, 'tls');
    const old = await tlsConnect(port);
    expect(old.getPeerCertificate().subject.CN).toBe('before-rotation');
    expect(await exchange(old, options(port, 'before'))).toMatch(/^SIP\/2\.0 200/);

    ca.rotate(files, 'after-rotation');
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'after-rotation'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const fresh = await tlsConnect(port);
      seen = String(fresh.getPeerCertificate().subject.CN);
      fresh.destroy();
    }
    expect(seen).toBe('after-rotation');
    expect(old.destroyed).toBe(false);
    expect(await exchange(old, options(port, 'after'))).toMatch(/^SIP\/2\.0 200/);
  });

  it('a TLS handshake that does not complete within the deadline is closed', async () => {
    const registry = new Registry();
    const server = await stack({ registry, connections: { headTimeoutMs: 300 } });
    const silent = net.connect(portOf(server, 'tls'), '127.0.0.1');
    sockets.push(silent);
    silent.on('error', () => undefined);
    expect(await closedWithin(silent, 3000)).toBe(true);
    expect(await metricValue(registry, 'huddle_sip_connections_timed_out_total', { transport: 'tls', phase: 'handshake' })).toBe(1);
  });
});

describe('TCP/TLS connection caps and the message deadline', () => {
  it('1,000 stalled connections are closed by the deadline, the per-source cap refuses the excess, a REGISTER still works within 1 s', async () => {
    const registry = new Registry();
    const headTimeoutMs = 2000;
    const server = await stack({ registry, connections: { maxPerSource: 250, headTimeoutMs } });
    server.onRequest((req) => req.respond(200));
    const port = portOf(server, 'tcp');
    const halfHead = `REGISTER sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-stall\r\nFrom: <sip:7001@127.0.0.1>;tag=1\r\n`;
    // Four loopback sources with 250 connections each (the cap), then 50 more from the first.
    const open = (localAddress: string) =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
          s.write(halfHead);
          resolve(s);
        });
        s.on('error', () => undefined);
        // A refused connection may be reset before its connect event.
        s.once('close', () => resolve(s));
        sockets.push(s);
      });
    const started = Date.now();
    const stalled: net.Socket[] = [];
    for (const source of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) stalled.push(...(await Promise.all(Array.from({ length: 250 }, () => open(source)))));
    // A client counts as connected once the kernel has queued it: wait until the server took all of them.
    await until(async () => (await metricValue(registry, 'huddle_sip_connections', { transport: 'tcp' })) === 1000, 'the server to accept 1,000 connections');
    const excess = await Promise.all(Array.from({ length: 50 }, () => open('127.0.0.2')));
    expect(await Promise.all(excess.map((s) => closedWithin(s, 2000)))).toEqual(excess.map(() => true));
    expect(await metricValue(registry, 'huddle_sip_connections_refused_total', { transport: 'tcp', reason: 'max-per-source' })).toBe(50);
    expect(stalled.filter((s) => s.destroyed)).toHaveLength(0);

    const phone = await createSipStack({ listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }] });
    stacks.push(phone);
    const t0 = Date.now();
    const res = await phone.request('REGISTER', `sip:127.0.0.1:${port};transport=tcp`, { contactUser: '7001' });
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);

    const closed = await Promise.all(stalled.map((s) => closedWithin(s, headTimeoutMs + 5000)));
    expect(closed.filter((c) => !c)).toHaveLength(0);
    // Held no longer than the deadline (plus the time it took to open them all), not 10 minutes.
    expect(Date.now() - started).toBeLessThan(headTimeoutMs + 8000);
    expect(await metricValue(registry, 'huddle_sip_connections_timed_out_total', { transport: 'tcp', phase: 'head' })).toBe(1000);
    // The phone's connection completed a message: the deadline does not apply to it.
    await until(async () => (await metricValue(registry, 'huddle_sip_connections', { transport: 'tcp' })) === 1, 'only the phone connection left open');
  }, 30_000);

  it('bytes trickling in do not extend the deadline; a connection idle after complete messages stays open', async () => {
    const server = await stack({ connections: { headTimeoutMs: 500 } });
    const port = portOf(server, 'tcp');
    const trickle = net.connect(port, '127.0.0.1');
    const idle = net.connect(port, '127.0.0.1');
    sockets.push(trickle, idle);
    trickle.on('error', () => undefined);
    await new Promise((r) => idle.once('connect', r));
    expect(await exchange(idle, options(port, 'complete', 'TCP'))).toMatch(/^SIP\/2\.0 200/);
    const text = options(port, 'trickle', 'TCP');
    let i = 0;
    const timer = setInterval(() => trickle.write(text[i++ % 20]!), 50);
    const closed = await closedWithin(trickle, 3000);
    clearInterval(timer);
    expect(closed).toBe(true);
    expect(idle.destroyed).toBe(false);
    expect(await exchange(idle, options(port, 'again', 'TCP'))).toMatch(/^SIP\/2\.0 200/);
  });

  it('the total cap refuses connections beyond it', async () => {
    const registry = new Registry();
    const server = await stack({ registry, connections: { max: 3 } });
    const port = portOf(server, 'tcp');
    const conns = Array.from({ length: 5 }, () => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
      return s;
    });
    const closed = await Promise.all(conns.map((s) => closedWithin(s, 1000)));
    expect(closed.filter(Boolean)).toHaveLength(2);
    expect(await metricValue(registry, 'huddle_sip_connections_refused_total', { transport: 'tcp', reason: 'max' })).toBe(2);
  });
});
