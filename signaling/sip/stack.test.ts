import dgram from 'node:dgram';
import net from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DigestChallenger } from './digest.js';
import { createSipStack, type Dialog, type ServerRequest, type SipStack, type SipStackOptions, type Transport } from './index.js';
import { SipResponse } from './message.js';
import { parseMessage } from './parser.js';

const stacks: SipStack[] = [];
const sockets: (dgram.Socket | net.Socket)[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) {
    if (s instanceof net.Socket) s.destroy();
    else s.close();
  }
  await Promise.all(stacks.splice(0).map((s) => s.close(0)));
});

async function stack(extra: Partial<SipStackOptions> = {}): Promise<SipStack> {
  const s = await createSipStack({
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
    ...extra,
  });
  stacks.push(s);
  return s;
}

function target(s: SipStack, transport: 'udp' | 'tcp', user = 'bob'): string {
  const a = s.addresses.find((x) => x.transport === transport)!;
  return `sip:${user}@127.0.0.1:${a.port}${transport === 'tcp' ? ';transport=tcp' : ''}`;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw UDP peer for exchanges our own stack would never produce. */
async function rawUdp(): Promise<{ port: number; sock: dgram.Socket; received: string[]; send(text: string, port: number): void }> {
  const sock = dgram.createSocket('udp4');
  sockets.push(sock);
  const received: string[] = [];
  sock.on('message', (m) => received.push(m.toString()));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, sock, received, send: (text, port) => sock.send(Buffer.from(text), port, '127.0.0.1') };
}

describe.each(['udp', 'tcp'] as const)('call over %s', (transport) => {
  it('INVITE/180/200/ACK, re-INVITE with offer, INFO, BYE from the callee', async () => {
    const uas = await stack();
    const uac = await stack();
    const incoming: Dialog[] = [];
    const acks: string[] = [];
    const reoffers: string[] = [];
    uas.onRequest((req) => {
      expect(req.method).toBe('INVITE');
      req.respond(180);
      const d = req.accept({ body: 'answer-1' });
      d.onAck((ack) => acks.push(ack.method));
      d.onRequest((r) => {
        if (r.method === 'INVITE') reoffers.push(r.message.body.toString());
        r.respond(200, { body: 'answer-2' });
      });
      incoming.push(d);
    });
    const call = uac.invite(target(uas, transport), { body: 'offer-1', from: 'sip:alice@127.0.0.1' });
    const provisional: number[] = [];
    call.onProvisional((r) => provisional.push(r.status));
    const res = await call.result;
    if (!res.ok) throw new Error(`call failed: ${res.status}`);
    expect(res.response.body.toString()).toBe('answer-1');
    expect(provisional).toContain(180);
    await until(() => acks.length === 1, 'ACK');
    const re = await res.dialog.request('INVITE', { body: 'offer-2' });
    expect(re.status).toBe(200);
    expect(re.body.toString()).toBe('answer-2');
    expect(reoffers).toEqual(['offer-2']);
    await until(() => acks.length === 2, 'ACK of the re-INVITE');
    expect((await res.dialog.request('INFO', { body: 'x', contentType: 'application/dtmf-relay' })).status).toBe(200);
    const ended = res.dialog.terminated;
    expect((await incoming[0]!.bye()).status).toBe(200);
    expect((await ended).cause).toBe('remote-bye');
    expect(incoming[0]!.state).toBe('terminated');
  });

  it('CANCEL after 180: callee learns of it, call ends 487', async () => {
    const uas = await stack();
    const uac = await stack();
    const canceled: string[] = [];
    let pending: ServerRequest | undefined;
    uas.onRequest((req) => {
      pending = req;
      req.onCancel((c) => canceled.push(c.method));
      req.respond(180);
    });
    const call = uac.invite(target(uas, transport));
    call.onProvisional((r) => {
      if (r.status === 180) call.cancel();
    });
    const res = await call.result;
    expect(res.ok).toBe(false);
    expect(!res.ok && res.status).toBe(487);
    expect(canceled).toEqual(['CANCEL']);
    expect(pending?.canceled).toBe(true);
  });
});

describe('UA core answers', () => {
  it('481 for an in-dialog request without a dialog; 501 without a handler; OPTIONS 200', async () => {
    const uas = await stack();
    const uac = await stack();
    const bye = await uac.request('BYE', target(uas, 'udp'), { to: '<sip:bob@127.0.0.1>;tag=nosuchdialog' });
    expect(bye.status).toBe(481);
    expect((await uac.request('MESSAGE', target(uas, 'udp'), { body: 'hi', contentType: 'text/plain' })).status).toBe(501);
    const opt = await uac.request('OPTIONS', target(uas, 'tcp'));
    expect(opt.status).toBe(200);
    expect(opt.get('allow')).toContain('INVITE');
  });

  it('420 for an unsupported Require', async () => {
    const uas = await stack();
    const uac = await stack();
    uas.onRequest((r) => r.respond(200));
    const res = await uac.request('OPTIONS', target(uas, 'udp'), { headers: { Require: 'foo' } });
    expect(res.status).toBe(420);
    expect(res.get('unsupported')).toBe('foo');
  });

  it('100 Trying only for an INVITE the TU does not answer inside its handler (§17.2.1)', async () => {
    const uas = await stack();
    const peer = await rawUdp();
    const port = uas.addresses[0]!.port;
    uas.onRequest((req) => {
      if (req.message.callId === 'sync') {
        req.accept();
        return;
      }
      setTimeout(() => req.accept(), 300);
    });
    const invite = (callId: string) =>
      `INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bK${callId}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:${peer.port}>\r\nContent-Length: 0\r\n\r\n`;
    const of = (callId: string) => peer.received.filter((m) => m.includes(`Call-ID: ${callId}\r\n`)).map((m) => m.split('\r\n')[0]);

    peer.send(invite('sync'), port);
    await until(() => of('sync').length > 0, '200 to the synchronously answered INVITE');
    // A synchronous answer is well within 200 ms: the 100 would be an extra message.
    expect(of('sync')).toEqual(['SIP/2.0 200 OK']);

    const sentAt = Date.now();
    peer.send(invite('async'), port);
    await until(() => of('async').length > 0, '100 to the asynchronously answered INVITE');
    expect(of('async')).toEqual(['SIP/2.0 100 Trying']);
    expect(Date.now() - sentAt).toBeLessThan(200);
    await until(() => of('async').length > 1, '200 after the 100');
    expect(of('async')).toEqual(['SIP/2.0 100 Trying', 'SIP/2.0 200 OK']);
  });

  it('a malformed request gets 400 with the reason; UDP and TCP', async () => {
    const uas = await stack();
    const peer = await rawUdp();
    const port = uas.addresses[0]!.port;
    peer.send(`INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bKz\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: bad1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n`, port);
    await until(() => peer.received.length > 0, '400');
    expect(peer.received[0]).toMatch(/^SIP\/2.0 400 CSeq method does not match request method\r\n/);
    expect(peer.received[0]).toContain('Call-ID: bad1');

    const tcpPort = uas.addresses[1]!.port;
    const sock = net.connect(tcpPort, '127.0.0.1');
    sockets.push(sock);
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    const ok = `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKt1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    const ok2 = ok.replace('z9hG4bKt1', 'z9hG4bKt2').replace('Call-ID: t1', 'Call-ID: t2');
    // Two messages in one write, the second split across writes.
    sock.write(ok + ok2.slice(0, 20));
    await new Promise((r) => setTimeout(r, 50));
    sock.write(ok2.slice(20));
    await until(() => (got.match(/SIP\/2.0 200/g) ?? []).length === 2, 'two 200s over TCP');
    sock.write('INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKt3\r\nCall-ID: t3\r\nContent-Length: 0\r\n\r\n');
    await until(() => got.includes('400 Missing From header'), '400 over TCP');
  });

  it('a request over the size limit gets 513', async () => {
    const uas = await stack({ limits: { maxMessageBytes: 2000 } });
    const peer = await rawUdp();
    peer.send(`MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bKb\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: big\r\nCSeq: 1 MESSAGE\r\nContent-Length: 3000\r\n\r\n${'x'.repeat(3000)}`, uas.addresses[0]!.port);
    await until(() => peer.received.length > 0, '513');
    expect(peer.received[0]).toMatch(/^SIP\/2.0 513 Message Too Large/);
  });

  it('491 when a re-INVITE arrives while ours is pending (glare)', async () => {
    const uas = await stack();
    const uac = await stack();
    let calleeDialog: Dialog | undefined;
    let held: ServerRequest | undefined;
    uas.onRequest((req) => {
      calleeDialog = req.accept({ body: 'a' });
      calleeDialog.onRequest((r) => (held = r));
    });
    const res = await uac.invite(target(uas, 'udp')).result;
    if (!res.ok) throw new Error('call failed');
    const ours = res.dialog.request('INVITE', { body: 'o2' });
    await until(() => held !== undefined, 're-INVITE at the callee');
    // The callee has an incoming re-INVITE pending: its own is refused locally with 491.
    expect((await calleeDialog!.request('INVITE', { body: 'x' })).status).toBe(491);
    // A peer racing us with its own re-INVITE gets 491 from our side.
    const peer = await rawUdp();
    const d = res.dialog;
    peer.send(
      `INVITE ${d.initialRequest.get('contact')!.replace(/[<>]/g, '')} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bKglare\r\nFrom: ${d.remoteUri}\r\nTo: ${d.localUri}\r\nCall-ID: ${d.callId}\r\nCSeq: 5000 INVITE\r\nContact: <sip:x@127.0.0.1:${peer.port}>\r\nContent-Length: 0\r\n\r\n`,
      uac.addresses[0]!.port,
    );
    await until(() => peer.received.some((m) => m.startsWith('SIP/2.0 491')), '491');
    held!.respond(200, { body: 'a2' });
    expect((await ours).status).toBe(200);
  });

  it('digest: REGISTER and INVITE answer 401/407 challenges (SHA-256)', async () => {
    const uas = await stack();
    const uac = await stack();
    const challenger = new DigestChallenger({ realm: 'huddle' });
    uas.onRequest(async (req) => {
      const proxy = req.method === 'INVITE';
      const v = await challenger.verify(req.message, (u) => (u === '7001' ? 'secret' : undefined), proxy);
      if (!v.ok) {
        req.respond(proxy ? 407 : 401, { headers: { [proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate']: challenger.challenge() } });
        return;
      }
      if (req.method === 'INVITE') req.accept();
      else req.respond(200, { headers: { Contact: req.message.get('contact')! + ';expires=60' } });
    });
    const reg = await uac.request('REGISTER', `sip:127.0.0.1:${uas.addresses[0]!.port}`, { from: 'sip:7001@huddle', to: 'sip:7001@huddle', auth: { username: '7001', password: 'secret' } });
    expect(reg.status).toBe(200);
    const bad = await uac.request('REGISTER', `sip:127.0.0.1:${uas.addresses[0]!.port}`, { auth: { username: '7001', password: 'wrong' } });
    expect(bad.status).toBe(401);
    const call = await uac.invite(target(uas, 'tcp'), { auth: { username: '7001', password: 'secret' } }).result;
    expect(call.ok).toBe(true);
    if (call.ok) await call.dialog.bye();
  });
});

/** Drops the first `budget[method]` outgoing requests of each method: a lossy link in front of a stack. */
function lossy(budget: Record<string, number>): (t: Transport) => Transport {
  return (t) => {
    const left = { ...budget };
    const send = t.send.bind(t);
    t.send = (data, dest, onError) => {
      const method = data.toString('latin1', 0, 12).split(' ')[0]!;
      if ((left[method] ?? 0) > 0) {
        left[method]!--;
        return;
      }
      send(data, dest, onError);
    };
    return t;
  };
}

describe('transport and matching details', () => {
  it('RFC 2543 peers (no magic cookie): a retransmitted request matches its transaction', async () => {
    const uas = await stack();
    let seen = 0;
    uas.onRequest((r) => {
      seen++;
      r.respond(200);
    });
    const peer = await rawUdp();
    const msg = `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: old-2543\r\nCSeq: 9 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    peer.send(msg, uas.addresses[0]!.port);
    await until(() => peer.received.length === 1, 'first 200');
    peer.send(msg, uas.addresses[0]!.port);
    await until(() => peer.received.length === 2, 'retransmitted 200');
    expect(seen).toBe(1);
    expect(peer.received[1]).toBe(peer.received[0]);
  });

  it('rport: responses go back to the source port, with received and rport stamped', async () => {
    const uas = await stack();
    const peer = await rawUdp();
    peer.send(`OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKnat;rport\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: nat\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, uas.addresses[0]!.port);
    await until(() => peer.received.length === 1, 'response at the NAT source port');
    expect(peer.received[0]).toContain(`Via: SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKnat;rport=${peer.port};received=127.0.0.1`);
  });

  it('TCP: requests to one peer reuse one connection; responses come back on it', async () => {
    const uac = await stack();
    let connections = 0;
    const server = net.createServer((sock) => {
      connections++;
      sockets.push(sock);
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const r = parseMessage(Buffer.from(buf.slice(0, end + 4)), undefined, true);
          buf = buf.slice(end + 4);
          if (!r.ok || r.message instanceof SipResponse) continue;
          const res = new SipResponse(200, 'OK');
          for (const h of r.message.headers) if (['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
          sock.write(res.toBuffer());
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      for (let i = 0; i < 3; i++) expect((await uac.request('OPTIONS', `sip:peer@127.0.0.1:${port};transport=tcp`)).status).toBe(200);
      expect(connections).toBe(1);
    } finally {
      for (const sock of sockets.splice(0)) if (sock instanceof net.Socket) sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('TCP: an unreachable peer yields a local 503', async () => {
    const uac = await stack();
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const res = await uac.request('OPTIONS', `sip:nobody@127.0.0.1:${port};transport=tcp`);
    expect(res.status).toBe(503);
  });

  it('idle TCP connections are closed after tcpIdleTimeoutMs', async () => {
    const uas = await stack({ tcpIdleTimeoutMs: 200 });
    const sock = net.connect(uas.addresses[1]!.port, '127.0.0.1');
    sockets.push(sock);
    const closed = new Promise<boolean>((resolve) => sock.on('close', () => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000));
    expect(await Promise.race([closed, timeout])).toBe(true);
  });

  it('close() answers new requests with 503 while draining', async () => {
    const uas = await stack();
    const uac = await stack();
    let held: ServerRequest | undefined;
    uas.onRequest((r) => (held = r));
    const pending = uac.request('MESSAGE', target(uas, 'udp'), { body: 'a', contentType: 'text/plain' });
    await until(() => held !== undefined, 'first request');
    const closing = uas.close(5000);
    const refused = await uac.request('OPTIONS', target(uas, 'udp'));
    expect(refused.status).toBe(503);
    held!.respond(200);
    expect((await pending).status).toBe(200);
    await closing;
  });
});

describe('retransmission under loss (UDP)', () => {
  it('lost INVITEs are retransmitted (Timer A), lost ACKs make the UAS retransmit its 2xx', async () => {
    const registry = new Registry();
    const uas = await stack({ registry });
    const uacRegistry = new Registry();
    const uac = await stack({ registry: uacRegistry, wrapTransport: lossy({ INVITE: 2, ACK: 1 }) });
    let acked = 0;
    uas.onRequest((req) => req.accept().onAck(() => acked++));
    const res = await uac.invite(target(uas, 'udp')).result;
    expect(res.ok).toBe(true);
    await until(() => acked === 1, 'ACK after 2xx retransmission');
    const retransmitted = async (r: Registry) => {
      const m = (await r.getMetricsAsJSON()).find((x) => x.name === 'huddle_sip_retransmissions_total')!;
      return m.values.find((v) => v.labels.direction === 'out' && v.labels.method === 'INVITE')?.value ?? 0;
    };
    // The UAC resent its INVITE twice; the UAS resent its 200 until the second ACK arrived.
    expect(await retransmitted(uacRegistry)).toBeGreaterThanOrEqual(2);
    expect(await retransmitted(registry)).toBeGreaterThanOrEqual(1);
    const text = await registry.metrics();
    expect(text).toContain('huddle_sip_dialogs_active 1');
    expect(text).toMatch(/huddle_sip_transactions_active\{kind="ist"\} 1/);
    expect(text).toMatch(/huddle_sip_requests_total\{direction="in",method="INVITE"\} 1/);
    if (res.ok) expect((await res.dialog.bye()).status).toBe(200);
  });

  it('a UAS that never gets the ACK ends the dialog with BYE after 64*T1', async () => {
    const uas = await stack();
    const uac = await stack({ wrapTransport: lossy({ ACK: 1000 }) });
    let uasDialog: Dialog | undefined;
    uas.onRequest((req) => (uasDialog = req.accept()));
    const res = await uac.invite(target(uas, 'udp')).result;
    if (!res.ok) throw new Error('call failed');
    expect((await uasDialog!.terminated).cause).toBe('no-ack');
    expect((await res.dialog.terminated).cause).toBe('remote-bye');
  });
});

describe('forked answers', () => {
  it('the first 2xx wins; a second fork is ACKed and sent BYE', async () => {
    const uac = await stack();
    const peer = await rawUdp();
    peer.sock.on('message', (m) => {
      const r = parseMessage(m);
      if (!r.ok || r.message instanceof SipResponse || r.message.method !== 'INVITE') return;
      const req = r.message;
      for (const tag of ['fork1', 'fork2']) {
        const res = new SipResponse(200, 'OK');
        for (const h of req.headers) if (['via', 'from', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
        res.append('To', req.get('to')! + ';tag=' + tag);
        res.append('Contact', `<sip:${tag}@127.0.0.1:${peer.port}>`);
        peer.sock.send(res.toBuffer(), uac.addresses[0]!.port, '127.0.0.1');
      }
    });
    const res = await uac.invite(`sip:bob@127.0.0.1:${peer.port}`).result;
    if (!res.ok) throw new Error('call failed');
    expect(res.dialog.remoteTag).toBe('fork1');
    await until(() => peer.received.filter((m) => m.startsWith('ACK')).length === 2, 'two ACKs');
    await until(() => peer.received.some((m) => m.startsWith('BYE sip:fork2@')), 'BYE to the second fork');
    expect(peer.received.some((m) => m.startsWith('BYE sip:fork1@'))).toBe(false);
  });
});

describe('route sets and CANCEL timing', () => {
  it('a Record-Route in the 2xx becomes the route set: in-dialog requests go to the proxy with Route', async () => {
    const uac = await stack();
    const callee = await rawUdp();
    const proxy = await rawUdp();
    callee.sock.on('message', (m) => {
      const r = parseMessage(m);
      if (!r.ok || r.message instanceof SipResponse || r.message.method !== 'INVITE') return;
      const req = r.message;
      const res = new SipResponse(200, 'OK');
      for (const h of req.headers) if (['via', 'from', 'call-id', 'cseq'].includes(h.key)) res.headers.push({ ...h });
      res.append('To', req.get('to')! + ';tag=callee');
      res.append('Record-Route', `<sip:127.0.0.1:${proxy.port};lr>`);
      res.append('Contact', `<sip:callee@127.0.0.1:${callee.port}>`);
      callee.sock.send(res.toBuffer(), uac.addresses[0]!.port, '127.0.0.1');
    });
    const res = await uac.invite(`sip:bob@127.0.0.1:${callee.port}`).result;
    if (!res.ok) throw new Error('call failed');
    expect(res.dialog.routeSet).toEqual([`<sip:127.0.0.1:${proxy.port};lr>`]);
    void res.dialog.bye();
    await until(() => proxy.received.some((m) => m.startsWith('BYE')), 'BYE at the proxy');
    const bye = proxy.received.find((m) => m.startsWith('BYE'))!;
    expect(bye.startsWith(`BYE sip:callee@127.0.0.1:${callee.port} SIP/2.0`)).toBe(true);
    expect(bye).toContain(`Route: <sip:127.0.0.1:${proxy.port};lr>`);
    // The ACK for the 2xx took the same route.
    expect(proxy.received.some((m) => m.startsWith('ACK'))).toBe(true);
  });

  it('cancel() before any provisional waits for one (§9.1); cancel() before sending sends nothing', async () => {
    const uas = await stack();
    const uac = await stack();
    let invites = 0;
    uas.onRequest(async (req) => {
      invites++;
      // An asynchronous TU: the stack sends 100 Trying for it.
      await new Promise((r) => setTimeout(r, 50));
      if (!req.canceled) req.respond(180);
    });
    const early = uac.invite(target(uas, 'udp'));
    await early.request;
    early.cancel();
    const r1 = await early.result;
    expect(r1.ok ? 200 : r1.status).toBe(487);
    const never = uac.invite(target(uas, 'udp'));
    never.cancel();
    const r2 = await never.result;
    expect(r2.ok ? 200 : r2.status).toBe(487);
    expect(invites).toBe(1);
  });
});

describe('subscriptions', () => {
  it('SUBSCRIBE creates a dialog; NOTIFYs reach the subscriber until terminated', async () => {
    const notifier = await stack();
    const subscriber = await stack();
    notifier.onRequest((req) => {
      const d = req.accept({ headers: { Expires: '60' } });
      void (async () => {
        await d.request('NOTIFY', { headers: { Event: 'conference', 'Subscription-State': 'active;expires=60' }, body: '<conference-info version="1"/>', contentType: 'application/conference-info+xml' });
        await d.request('NOTIFY', { headers: { Event: 'conference', 'Subscription-State': 'terminated;reason=noresource' }, body: '<conference-info version="2"/>', contentType: 'application/conference-info+xml' });
      })();
    });
    const bodies: string[] = [];
    const sub = await subscriber.subscribe(target(notifier, 'udp', 'conf'), { event: 'conference', onNotify: (n) => bodies.push(n.body.toString()) });
    expect(sub.response.status).toBe(200);
    expect(sub.dialog).toBeDefined();
    expect((await sub.dialog!.terminated).cause).toBe('subscription-terminated');
    expect(bodies).toEqual(['<conference-info version="1"/>', '<conference-info version="2"/>']);
  });
});
