import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.js';
import { SipRequest, SipResponse } from './message.js';
import { parseMessage } from './parser.js';
import { ClientTransaction, ServerTransaction, type TransactionContext } from './transaction.js';
import type { Endpoint } from './transport/transport.js';
import { fakeTransport } from '../../test/support/sip-stacks.js';

const T1 = 500;
const T2 = 4000;
const T4 = 5000;

interface Sent {
  at: number;
  text: string;
  retransmission: boolean;
}

function context(clock: FakeClock) {
  const sent: Sent[] = [];
  const terminated: unknown[] = [];
  const ctx: TransactionContext = {
    clock,
    timers: { t1: T1, t2: T2, t4: T4 },
    send: (msg, _dest, _t, retransmission) => {
      sent.push({ at: clock.now(), text: msg.startLine(), retransmission });
      return msg.toBuffer();
    },
    resend: (wire) => sent.push({ at: clock.now(), text: wire.split('\r\n')[0]!, retransmission: true }),
    terminated: (tx) => terminated.push(tx),
  };
  return { ctx, sent, terminated };
}

const dest: Endpoint = { protocol: 'udp', host: '127.0.0.1', port: 5070 };

function request(method: string, branch = 'z9hG4bKabc'): SipRequest {
  const r = parseMessage(
    Buffer.from(
      `${method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=${branch}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c1\r\nCSeq: 1 ${method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`,
    ),
  );
  if (!r.ok || !(r.message instanceof SipRequest)) throw new Error('test request did not parse');
  return r.message;
}

function response(req: SipRequest, status: number, toTag = 'tt'): SipResponse {
  const res = new SipResponse(status, 'X');
  for (const h of req.headers) if (h.key !== 'max-forwards' && h.key !== 'content-length') res.headers.push({ ...h, value: h.key === 'to' ? h.value + ';tag=' + toTag : h.value });
  return res;
}

function client(method: string, reliable = false) {
  const clock = new FakeClock();
  const { ctx, sent, terminated } = context(clock);
  const responses: number[] = [];
  const failures: number[] = [];
  const req = request(method);
  const tx = new ClientTransaction(ctx, req, dest, fakeTransport(reliable), 'z9hG4bKabc', {
    onResponse: (res) => responses.push(res.status),
    onFailure: (status) => failures.push(status),
  });
  tx.start();
  return { clock, sent, terminated, responses, failures, tx, req };
}

function server(method: string, reliable = false) {
  const clock = new FakeClock();
  const { ctx, sent, terminated } = context(clock);
  const req = request(method);
  const tx = new ServerTransaction(ctx, 'k', req.method, dest, fakeTransport(reliable));
  const noAck: unknown[] = [];
  tx.user = { onNoAck: (t) => noAck.push(t) };
  return { clock, sent, terminated, tx, req, noAck };
}

describe('INVITE client transaction', () => {
  it('Timer A retransmits at T1, 2T1, 4T1... and Timer B ends it with 408 at 64*T1', () => {
    const c = client('INVITE');
    c.clock.advance(64 * T1);
    const times = c.sent.map((s) => s.at);
    expect(times).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(c.sent.slice(1).every((s) => s.retransmission)).toBe(true);
    expect(c.failures).toEqual([408]);
    expect(c.tx.state).toBe('terminated');
  });

  it('no retransmissions over a reliable transport, Timer B still applies', () => {
    const c = client('INVITE', true);
    c.clock.advance(64 * T1);
    expect(c.sent).toHaveLength(1);
    expect(c.failures).toEqual([408]);
  });

  it('a provisional response stops Timer A and B', () => {
    const c = client('INVITE');
    c.clock.advance(600);
    c.tx.receive(response(c.req, 180));
    c.clock.advance(100 * T1);
    expect(c.sent).toHaveLength(2);
    expect(c.failures).toEqual([]);
    expect(c.tx.state).toBe('proceeding');
    expect(c.responses).toEqual([180]);
  });

  it('a non-2xx final response is ACKed (also when retransmitted) and Timer D ends the transaction after 32 s', () => {
    const c = client('INVITE');
    c.tx.receive(response(c.req, 486));
    expect(c.sent.map((s) => s.text)).toEqual(['INVITE sip:bob@127.0.0.1 SIP/2.0', 'ACK sip:bob@127.0.0.1 SIP/2.0']);
    c.tx.receive(response(c.req, 486));
    expect(c.sent).toHaveLength(3);
    expect(c.responses).toEqual([486]);
    c.clock.advance(31_999);
    expect(c.tx.state).toBe('completed');
    c.clock.advance(1);
    expect(c.tx.state).toBe('terminated');
  });

  it('2xx moves to Accepted: later 2xx (forks) reach the TU until Timer M (64*T1)', () => {
    const c = client('INVITE');
    c.tx.receive(response(c.req, 200, 'a'));
    c.tx.receive(response(c.req, 200, 'b'));
    expect(c.responses).toEqual([200, 200]);
    expect(c.sent).toHaveLength(1);
    c.clock.advance(64 * T1);
    expect(c.tx.state).toBe('terminated');
  });
});

describe('non-INVITE client transaction', () => {
  it('Timer E doubles up to T2; Timer F gives 408 at 64*T1', () => {
    const c = client('OPTIONS');
    c.clock.advance(64 * T1);
    expect(c.sent.map((s) => s.at)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(c.failures).toEqual([408]);
  });

  it('once proceeding, Timer E fires every T2', () => {
    const c = client('REGISTER');
    c.tx.receive(response(c.req, 100));
    c.clock.advance(500);
    c.clock.advance(T2 * 2);
    expect(c.sent.map((s) => s.at)).toEqual([0, 500, 4500, 8500]);
  });

  it('Timer K keeps it for T4 after the final response over UDP, zero over TCP', () => {
    const c = client('BYE');
    c.tx.receive(response(c.req, 200));
    expect(c.tx.state).toBe('completed');
    c.clock.advance(T4 - 1);
    expect(c.tx.state).toBe('completed');
    c.clock.advance(1);
    expect(c.tx.state).toBe('terminated');
    const r = client('BYE', true);
    r.tx.receive(response(r.req, 200));
    r.clock.advance(0);
    expect(r.tx.state).toBe('terminated');
  });
});

describe('INVITE server transaction', () => {
  it('a retransmitted INVITE gets the last provisional again', () => {
    const s = server('INVITE');
    s.tx.respond(response(s.req, 100));
    s.tx.receiveRequest(s.req);
    expect(s.sent.map((x) => x.retransmission)).toEqual([false, true]);
  });

  it('Timer G retransmits a non-2xx final (T1 doubling up to T2) until ACK; Timer I absorbs ACKs for T4', () => {
    const s = server('INVITE');
    s.tx.respond(response(s.req, 486));
    s.clock.advance(7500);
    expect(s.sent.map((x) => x.at)).toEqual([0, 500, 1500, 3500, 7500]);
    s.tx.receiveRequest(request('ACK'));
    expect(s.tx.state).toBe('confirmed');
    s.clock.advance(T4 * 2);
    expect(s.sent).toHaveLength(5);
    expect(s.tx.state).toBe('terminated');
  });

  it('Timer H ends the transaction at 64*T1 without ACK and tells the TU', () => {
    const s = server('INVITE');
    s.tx.respond(response(s.req, 404));
    s.clock.advance(64 * T1);
    expect(s.tx.state).toBe('terminated');
    expect(s.noAck).toHaveLength(1);
    expect(s.sent.at(-1)!.at).toBeLessThanOrEqual(64 * T1);
  });

  it('2xx goes to Accepted: INVITE retransmissions are absorbed until Timer L', () => {
    const s = server('INVITE');
    s.tx.respond(response(s.req, 200));
    s.tx.receiveRequest(s.req);
    expect(s.sent).toHaveLength(1);
    s.clock.advance(64 * T1);
    expect(s.tx.state).toBe('terminated');
    expect(() => s.tx.respond(response(s.req, 200))).toThrow();
  });

  it('no Timer G over a reliable transport', () => {
    const s = server('INVITE', true);
    s.tx.respond(response(s.req, 486));
    s.clock.advance(10_000);
    expect(s.sent).toHaveLength(1);
  });
});

describe('non-INVITE server transaction', () => {
  it('retransmissions get the final response again; Timer J ends it at 64*T1 (UDP) or at once (TCP)', () => {
    const s = server('OPTIONS');
    s.tx.receiveRequest(s.req);
    expect(s.sent).toHaveLength(0);
    s.tx.respond(response(s.req, 200));
    s.tx.receiveRequest(s.req);
    expect(s.sent.map((x) => x.retransmission)).toEqual([false, true]);
    s.clock.advance(64 * T1 - 1);
    expect(s.tx.state).toBe('completed');
    s.clock.advance(1);
    expect(s.tx.state).toBe('terminated');
    const r = server('OPTIONS', true);
    r.tx.respond(response(r.req, 200));
    r.clock.advance(0);
    expect(r.tx.state).toBe('terminated');
  });
});
