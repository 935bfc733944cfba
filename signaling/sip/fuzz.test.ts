import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSipStack } from './index.js';
import { SipRequest, SipResponse } from './message.js';
import { parseMessage, StreamFramer } from './parser.js';
import type { SipStack } from './types.js';

const SEEDS = [
  'INVITE sip:bob@127.0.0.1:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\nFrom: "A" <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5070>\r\nRecord-Route: <sip:p;lr>, <sip:q;lr>\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n',
  'SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h:5060;branch=z9hG4bK2;received=1.2.3.4\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nWWW-Authenticate: Digest realm="r", nonce="n,1", qop="auth"\r\nl: 0\r\n\r\n',
  'REGISTER sips:reg.example.com SIP/2.0\r\nv: SIP/2.0/TLS [::1]:5061;branch=z9hG4bK3\r\nf: <tel:+123;phone-context=x>;tag=9\r\nt: <tel:+123;phone-context=x>\r\ni: q\r\nCSeq: 3 REGISTER\r\nm: *\r\nExpires: 0\r\n\r\n',
];

/** A deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ALPHABET = Buffer.from(' \t\r\n:;,<>"\\@=/?&[]%0123456789abcdefSIPsip/2.0\u0000\u00ff');

function mutate(base: Buffer, r: () => number): Buffer {
  const b = Buffer.from(base);
  const ops = 1 + Math.floor(r() * 8);
  let out = b;
  for (let i = 0; i < ops; i++) {
    const pos = Math.floor(r() * out.length);
    const kind = Math.floor(r() * 4);
    if (kind === 0) out[pos] = ALPHABET[Math.floor(r() * ALPHABET.length)]!;
    else if (kind === 1) out = Buffer.concat([out.subarray(0, pos), out.subarray(Math.min(out.length, pos + 1 + Math.floor(r() * 20)))]);
    else if (kind === 2) out = Buffer.concat([out.subarray(0, pos), out.subarray(pos, pos + Math.floor(r() * 40)), out.subarray(pos)]);
    else out = Buffer.concat([out.subarray(0, pos), Buffer.from([ALPHABET[Math.floor(r() * ALPHABET.length)]!]), out.subarray(pos)]);
  }
  return out;
}

function exercise(buf: Buffer): void {
  const r = parseMessage(buf);
  if (r.ok) {
    // Touch every lazily parsed accessor: they must throw only ordinary errors, if at all.
    const m = r.message;
    for (const h of m.headers) m.getAll(h.key);
    void m.toBuffer();
    if (m instanceof SipRequest) void m.requestUri;
  } else {
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.reason.length).toBeGreaterThan(0);
    if (r.request) void r.request.toBuffer();
  }
}

describe('parser fuzzing', () => {
  it('survives 20,000 mutated messages without throwing', () => {
    const r = rng(0x5eed);
    for (let i = 0; i < 20_000; i++) {
      const seed = Buffer.from(SEEDS[i % SEEDS.length]!);
      const buf = mutate(seed, r);
      expect(() => exercise(buf), `case ${i}: ${JSON.stringify(buf.toString('latin1'))}`).not.toThrow();
    }
  });

  it('survives 5,000 random byte strings', () => {
    const r = rng(42);
    for (let i = 0; i < 5_000; i++) {
      const len = Math.floor(r() * 600);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = r() < 0.7 ? ALPHABET[Math.floor(r() * ALPHABET.length)]! : Math.floor(r() * 256);
      expect(() => exercise(buf)).not.toThrow();
    }
  });

  it('a stream framer fed garbage keeps its buffer bounded by the message limit', () => {
    const r = rng(7);
    const limits = { maxMessageBytes: 4096, maxHeaders: 64 };
    let framer = new StreamFramer(limits);
    for (let i = 0; i < 3_000; i++) {
      const chunk = mutate(Buffer.from(SEEDS[i % SEEDS.length]!), r).subarray(0, 1 + Math.floor(r() * 300));
      for (const ev of framer.push(chunk)) {
        if (ev.kind === 'message') exercise(ev.data);
        if (ev.kind === 'error') framer = new StreamFramer(limits);
      }
      expect(framer.buffered).toBeLessThanOrEqual(limits.maxMessageBytes + 300);
    }
  });
});

/**
 * TCP framing against the real TCP transport of a real stack on loopback: messages split at
 * random points, several per segment, keep-alives and garbage between, lengths that lie. The
 * UAS echoes each body, so a framing slip shows as a wrong body, a missing answer or a stray one.
 */
describe('TCP framing fuzzing (real TCP transport)', () => {
  let sip: SipStack;
  let port: number;

  beforeAll(async () => {
    sip = await createSipStack({ listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }] });
    sip.onRequest((req) => req.respond(200, { body: req.message.body, contentType: 'application/octet-stream' }));
    port = sip.addresses[0]!.port;
  });
  afterAll(async () => {
    await sip.close(0);
  });

  it('answers every message of streams split at random points, several per segment, with keep-alives between', async () => {
    const r = rng(0x7c9);
    for (let round = 0; round < 25; round++) {
      const count = 1 + Math.floor(r() * 8);
      const sent = Array.from({ length: count }, (_, i) => tcpRequest(`r${round}m${i}`, randomBody(r), r));
      const stream = Buffer.concat(sent.flatMap((m) => (r() < 0.3 ? [m.bytes, Buffer.from('\r\n\r\n')] : [m.bytes])));
      const answers = await converse(port, splitRandomly(stream, r), count);
      expect(answers.responses.map((a) => [a.callId, a.status, a.body.toString('latin1')]), `round ${round}`).toEqual(
        sent.map((m) => [m.callId, 200, m.body.toString('latin1')]),
      );
      expect(answers.closed).toBe(false);
    }
  });

  it('over TCP a request without Content-Length is answered 400 and the stream goes on (RFC 3261 §18.3)', async () => {
    const first = tcpRequest('no-cl', Buffer.alloc(0), rng(1));
    const missing = Buffer.from(first.bytes.toString('latin1').replace('Content-Length: 0\r\n', ''), 'latin1');
    const next = tcpRequest('after-no-cl', Buffer.from('ok'), rng(2));
    const answers = await converse(port, [missing, next.bytes], 2);
    expect(answers.responses.map((a) => [a.callId, a.status, a.reason])).toEqual([
      ['no-cl', 400, 'Missing Content-Length header'],
      ['after-no-cl', 200, 'OK'],
    ]);
  });

  it('a second Content-Length that disagrees fails the stream: 400, then the connection is closed (no smuggled request)', async () => {
    const smuggled = tcpRequest('smuggled', Buffer.alloc(0), rng(3)).bytes.toString('latin1');
    const text = tcpRequest('two-cl', Buffer.from('x'.repeat(10)), rng(4)).bytes.toString('latin1').replace('Content-Length: 10\r\n', `Content-Length: 10\r\nl: ${10 + smuggled.length}\r\n`);
    const answers = await converse(port, [Buffer.from(text.replace(/x{10}$/, 'x'.repeat(10) + smuggled), 'latin1')], 2, 1000, true);
    expect(answers.responses.map((a) => [a.callId, a.status, a.reason])).toEqual([['two-cl', 400, 'Duplicate Content-Length header']]);
    expect(answers.closed).toBe(true);
  });

  it('a huge Content-Length is a 513 and closes the connection; earlier messages are answered and the stack keeps serving', async () => {
    for (const huge of ['99999999', '4294967296', '000000000000000000070000']) {
      const before = tcpRequest(`before-${huge}`, Buffer.from('a'), rng(5));
      const liar = tcpRequest(`huge-${huge}`, Buffer.alloc(0), rng(6)).bytes.toString('latin1').replace('Content-Length: 0', `Content-Length: ${huge}`);
      const answers = await converse(port, [before.bytes, Buffer.from(liar + 'tail', 'latin1')], 2, 1000, true);
      expect(answers.responses.map((a) => [a.callId, a.status])).toEqual([
        [`before-${huge}`, 200],
        [`huge-${huge}`, 513],
      ]);
      expect(answers.closed).toBe(true);
    }
    const after = tcpRequest('after-huge', Buffer.alloc(0), rng(7));
    expect((await converse(port, [after.bytes], 1)).responses.map((a) => a.status)).toEqual([200]);
  });

  it('garbage between messages never crashes the stack: whatever is answered is a whole SIP response (a bare 400 for a head naming no request), and a new connection is served', async () => {
    const r = rng(0x9a7b);
    for (let round = 0; round < 30; round++) {
      const a = tcpRequest(`g${round}a`, randomBody(r), r);
      const b = tcpRequest(`g${round}b`, randomBody(r), r);
      const garbage = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 120) }, () => (r() < 0.6 ? ALPHABET[Math.floor(r() * ALPHABET.length)]! : Math.floor(r() * 256))));
      const answers = await converse(port, splitRandomly(Buffer.concat([a.bytes, garbage, b.bytes]), r), 3, 80);
      // The message before the garbage is always framed and answered; after it the stream may be lost.
      expect(answers.responses[0]?.callId, `round ${round}`).toBe(a.callId);
      expect(answers.responses[0]?.body.equals(a.body)).toBe(true);
      for (const res of answers.responses) expect(res.status === 200 || res.status >= 400).toBe(true);
    }
    const after = tcpRequest('after-garbage', Buffer.alloc(0), r);
    expect((await converse(port, [after.bytes], 1)).responses.map((x) => x.status)).toEqual([200]);
  });

  it('survives 120 connections of mutated messages split at random points', async () => {
    const r = rng(0xfa11);
    for (let i = 0; i < 120; i++) {
      const stream = Buffer.concat(Array.from({ length: 1 + Math.floor(r() * 3) }, (_, k) => mutate(Buffer.from(SEEDS[(i + k) % SEEDS.length]!), r)));
      const answers = await converse(port, splitRandomly(stream, r), 4, 25);
      for (const res of answers.responses) expect(res.status).toBeGreaterThanOrEqual(100);
    }
    const after = tcpRequest('after-mutations', Buffer.alloc(0), r);
    expect((await converse(port, [after.bytes], 1)).responses.map((x) => x.status)).toEqual([200]);
  });
});

interface SentRequest {
  callId: string;
  body: Buffer;
  bytes: Buffer;
}

/** An OPTIONS or MESSAGE with the given body; Content-Length sometimes compact or with leading zeros (both legal). */
function tcpRequest(callId: string, body: Buffer, r: () => number): SentRequest {
  const method = body.length > 0 || r() < 0.5 ? 'MESSAGE' : 'OPTIONS';
  const cl = r() < 0.2 ? `l: 000${body.length}` : `Content-Length: ${body.length}`;
  const head = [
    `${method} sip:uas@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-${callId};rport`,
    'From: <sip:fuzz@127.0.0.1>;tag=f',
    'To: <sip:uas@127.0.0.1>',
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    ...(body.length > 0 ? ['Content-Type: application/octet-stream'] : []),
  ].join('\r\n');
  return { callId, body, bytes: Buffer.concat([Buffer.from(head + '\r\n' + cl + '\r\n\r\n'), body]) };
}

/** Bodies with the bytes that confuse framers: CR LF, blank lines, a fake head. */
function randomBody(r: () => number): Buffer {
  const kinds = [
    () => Buffer.alloc(0),
    () => Buffer.from('v=0\r\n\r\ns=-\r\n'),
    () => Buffer.from('INVITE sip:x@h SIP/2.0\r\nContent-Length: 5\r\n\r\n'),
    () => Buffer.from(Array.from({ length: Math.floor(r() * 400) }, () => Math.floor(r() * 256))),
  ];
  return kinds[Math.floor(r() * kinds.length)]!();
}

function splitRandomly(stream: Buffer, r: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; ) {
    const n = r() < 0.2 ? 1 : 1 + Math.floor(r() * 300);
    out.push(stream.subarray(i, i + n));
    i += n;
  }
  return out;
}

/**
 * Writes the segments one by one (each its own write, no Nagle), then reads answers until
 * `expected` came, the peer closed, or a quiet spell; `awaitClose` then waits (bounded) for the close.
 */
async function converse(port: number, segments: Buffer[], expected: number, quietMs = 1000, awaitClose = false): Promise<{ responses: SipResponse[]; closed: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const framer = new StreamFramer();
  const responses: SipResponse[] = [];
  const strays: string[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    for (const ev of framer.push(chunk)) {
      if (ev.kind !== 'message') continue;
      const p = parseMessage(ev.data, undefined, true);
      if (p.ok && p.message instanceof SipResponse) {
        responses.push(p.message);
        continue;
      }
      // A refusal (400, 505 ...) of a malformed request echoes what it could read of Via, From, To, Call-ID and CSeq
      // (transport-layer.ts answerMalformed): nothing for a head naming no request, the raw text
      // of a header that does not parse, never a lone CR or LF (each line below is a whole line).
      const bare = /^SIP\/2\.0 ([45]\d\d) ([^\r\n]*)\r\n(?:[^\r\n]+\r\n)*Content-Length: 0\r\n\r\n$/.exec(ev.data.toString('latin1'));
      if (bare) responses.push(new SipResponse(Number(bare[1]), bare[2]!));
      else strays.push(ev.data.toString('latin1'));
    }
    wake?.();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  for (const s of segments) {
    if (closed) break;
    socket.write(s);
    await new Promise((resolve) => setImmediate(resolve));
  }
  while (responses.length < expected && !closed) {
    const heard = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), quietMs);
      wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    wake = undefined;
    if (!heard) break;
  }
  // A connection we fail is ended right after its answer: give the FIN a moment to arrive.
  for (let i = 0; awaitClose && !closed && i < 50; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  socket.destroy();
  if (strays.length > 0) throw new Error(`not a SIP response: ${strays[0]}`);
  return { responses, closed };
}
