import { describe, expect, it } from 'vitest';
import { parseMessage, StreamFramer } from './parser.js';
import { SipRequest } from './message.js';

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
