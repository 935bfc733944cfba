import { describe, expect, it } from 'vitest';
import { parseCSeq, parseNameAddr, parseVia, formatNameAddr } from './headers.js';
import { SipRequest, SipResponse } from './message.js';
import { parseMessage, StreamFramer, type ParseResult } from './parser.js';
import { formatUri, parseUri } from './uri.js';

const INVITE = [
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: "Alice \\"A\\"" <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.atlanta.example.com>',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\n',
].join('\r\n');

function ok(r: ParseResult): SipRequest | SipResponse {
  if (!r.ok) throw new Error(`expected a parse, got ${r.status} ${r.reason}`);
  return r.message;
}

function req(text: string): SipRequest {
  const m = ok(parseMessage(Buffer.from(text)));
  if (!(m instanceof SipRequest)) throw new Error('not a request');
  return m;
}

function rejected(text: string): { status: number; reason: string; request?: SipRequest } {
  const r = parseMessage(Buffer.from(text));
  if (r.ok) throw new Error('expected a rejection');
  return r;
}

describe('parser: requests', () => {
  it('parses the RFC 3261 example INVITE with quoted display name and body bytes', () => {
    const m = req(INVITE);
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:bob@biloxi.example.com');
    expect(m.from.displayName).toBe('Alice "A"');
    expect(m.fromTag).toBe('1928301774');
    expect(m.toTag).toBeUndefined();
    expect(m.cseq).toEqual({ seq: 314159, method: 'INVITE' });
    expect(m.via.branch).toBe('z9hG4bK776asdhds');
    expect(m.via.params.rport).toBeNull();
    expect(m.body.toString()).toBe('v=0\n');
  });

  it('expands compact forms, unfolds continuation lines, tolerates case and whitespace', () => {
    const m = req(
      'OPTIONS sip:x@h SIP/2.0\r\nv: SIP/2.0/TCP h:5060 ;branch=z9hG4bKa\r\nf: <sip:a@h>;tag=x\r\nt: <sip:b@h>\r\ni: abc\r\nCSEQ :  7\r\n  OPTIONS\r\nSubject: one\r\n\ttwo\r\nl: 0\r\n\r\n',
    );
    expect(m.get('Via')).toContain('branch=z9hG4bKa');
    expect(m.via.transport).toBe('TCP');
    expect(m.callId).toBe('abc');
    expect(m.cseq).toEqual({ seq: 7, method: 'OPTIONS' });
    expect(m.get('subject')).toBe('one two');
  });

  it('accepts bare LF line ends', () => {
    const m = req('BYE sip:x@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: q\nCSeq: 2 BYE\n\n');
    expect(m.toTag).toBe('2');
  });

  it('splits multi-valued and comma-separated headers, but not inside quotes or <>', () => {
    const m = req(
      'INVITE sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK3\r\nRecord-Route: <sip:p1;lr>,<sip:p2;lr>\r\nContact: "Doe, John" <sip:j@h;x=1,2>;q=0.5, <sip:k@h>\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
    );
    expect(m.getAll('via')).toHaveLength(3);
    expect(m.via.host).toBe('a');
    expect(m.getAll('record-route')).toEqual(['<sip:p1;lr>', '<sip:p2;lr>']);
    const contacts = m.getAll('contact');
    expect(contacts).toHaveLength(2);
    expect(parseNameAddr(contacts[0]!)).toEqual({ displayName: 'Doe, John', uri: 'sip:j@h;x=1,2', params: { q: '0.5' } });
  });

  it('discards bytes past Content-Length in a datagram (§18.3)', () => {
    const m = req(INVITE + 'garbage');
    expect(m.body.toString()).toBe('v=0\n');
  });

  it('takes the body as bytes (Content-Length counts bytes, not characters)', () => {
    const body = Buffer.from('é€\u0000\u00ff', 'utf8');
    const text = INVITE.replace('Content-Length: 4', `Content-Length: ${body.length}`).replace(/v=0\n$/, '');
    const m = ok(parseMessage(Buffer.concat([Buffer.from(text), body])));
    expect(m.body.equals(body)).toBe(true);
  });
});

describe('parser: rejections carry a status and a reason', () => {
  const base = (lines: string[]) => lines.join('\r\n') + '\r\n\r\n';
  const good = ['Via: SIP/2.0/UDP h;branch=z9hG4bKq', 'From: <sip:a@h>;tag=1', 'To: <sip:b@h>', 'Call-ID: c', 'CSeq: 1 INVITE'];

  it.each([
    ['missing Call-ID', ['INVITE sip:x@h SIP/2.0', ...good.filter((l) => !l.startsWith('Call-ID'))], 400, 'Missing Call-ID header'],
    ['missing Via', ['INVITE sip:x@h SIP/2.0', ...good.slice(1)], 400, 'Missing Via header'],
    ['CSeq method mismatch', ['INVITE sip:x@h SIP/2.0', ...good.slice(0, 4), 'CSeq: 1 BYE'], 400, 'CSeq method does not match request method'],
    ['CSeq not a number', ['INVITE sip:x@h SIP/2.0', ...good.slice(0, 4), 'CSeq: one INVITE'], 400, 'Malformed CSeq header: malformed sequence number'],
    ['CSeq too large', ['INVITE sip:x@h SIP/2.0', ...good.slice(0, 4), 'CSeq: 2147483648 INVITE'], 400, 'Malformed CSeq header: sequence number out of range'],
    ['bad Via', ['INVITE sip:x@h SIP/2.0', 'Via: SIP/3.0/UDP h', ...good.slice(1)], 400, 'Malformed Via header: protocol must be SIP/2.0'],
    ['bad From', ['INVITE sip:x@h SIP/2.0', good[0]!, 'From: <sip:a@h;tag=1', ...good.slice(2)], 400, 'Malformed From header: missing >'],
    ['bad Request-URI', ['INVITE sip:@ SIP/2.0', ...good], 400, 'Malformed Request-URI: Malformed URI user part'],
    ['unsupported scheme', ['INVITE http://x SIP/2.0', ...good], 416, 'Unsupported URI Scheme'],
    ['SIP/3.0', ['INVITE sip:x@h SIP/3.0', ...good], 505, 'Version Not Supported'],
    ['bad header line', ['INVITE sip:x@h SIP/2.0', ...good, 'no colon here'], 400, 'Malformed header line'],
    ['bad request line', ['INVITE sip:x@h', ...good], 400, 'Malformed Request-Line'],
    ['bad Max-Forwards', ['INVITE sip:x@h SIP/2.0', ...good, 'Max-Forwards: lots'], 400, 'Malformed Max-Forwards'],
    // Echoed into every response, a lone CR would split the header there (header injection).
    ['lone CR in a header value', ['INVITE sip:x@h SIP/2.0', ...good.slice(0, 3), 'Call-ID: c\rX-Injected: yes', good[4]!], 400, 'Malformed header line: bare CR'],
  ])('%s', (_name, lines, status, reason) => {
    const r = rejected(base(lines));
    expect(r.status).toBe(status);
    expect(r.reason).toBe(reason);
  });

  it('Content-Length larger than the datagram', () => {
    const r = rejected(INVITE.replace('Content-Length: 4', 'Content-Length: 40'));
    expect([r.status, r.reason]).toEqual([400, 'Content-Length larger than body']);
    expect(r.request?.callId).toBe('a84b4c76e66710@pc33.atlanta.example.com');
  });

  it('limits: message size (513) and header count (400 Too Many Headers)', () => {
    const big = rejected(INVITE.replace('v=0\n', 'x'.repeat(70_000)).replace('Content-Length: 4', 'Content-Length: 70000'));
    expect([big.status, big.reason]).toEqual([513, 'Message Too Large']);
    expect(big.request?.method).toBe('INVITE');
    const many = rejected(INVITE.replace('Max-Forwards: 70', Array.from({ length: 200 }, (_, i) => `X-H${i}: ${i}`).join('\r\n')));
    expect([many.status, many.reason]).toEqual([400, 'Too Many Headers']);
  });
});

describe('parser: RFC 3261 §25 grammar corners', () => {
  const base = (lines: string[]) => lines.join('\r\n') + '\r\n\r\n';
  const good = ['Via: SIP/2.0/UDP h;branch=z9hG4bKq', 'From: <sip:a@h>;tag=1', 'To: <sip:b@h>', 'Call-ID: c', 'CSeq: 1 OPTIONS', 'Content-Length: 0'];
  const options = (extra: string[], uri = 'sip:x@h') => base([`OPTIONS ${uri} SIP/2.0`, ...good, ...extra]);
  const replaced = (from: string, to: string) => base(['OPTIONS sip:x@h SIP/2.0', ...good.map((l) => (l.startsWith(from) ? to : l))]);

  it.each([
    ['Call-ID', 'Call-ID: c'],
    ['Call-ID in compact form', 'i: other'],
    ['CSeq', 'CSeq: 1 OPTIONS'],
    ['From', 'From: <sip:z@h>;tag=2'],
    ['To', 't: <sip:b@h>'],
    ['Content-Length', 'Content-Length: 0'],
    ['Max-Forwards', 'Max-Forwards: 70\r\nMax-Forwards: 69'],
    ['Expires', 'Expires: 60\r\nExpires: 60'],
  ])('§7.3.1: a single-instance header given twice is a 400 (%s)', (name, extra) => {
    const r = rejected(options([extra]));
    expect(r.status).toBe(400);
    expect(r.reason).toMatch(/^Duplicate .+ header$/);
    expect(r.reason).toBe(`Duplicate ${name === 'Call-ID in compact form' ? 'Call-ID' : name} header`);
  });

  it('keeps list headers given several times (Via, Contact, Route)', () => {
    const m = req(options(['Via: SIP/2.0/UDP p;branch=z9hG4bKr', 'Contact: <sip:a@h>', 'Contact: <sip:b@h>', 'Route: <sip:p;lr>', 'Route: <sip:q;lr>']));
    expect(m.getAll('via')).toHaveLength(2);
    expect(m.getAll('contact')).toHaveLength(2);
  });

  it('1*DIGIT allows leading zeros: CSeq, Max-Forwards, Content-Length, Expires', () => {
    const m = req(base(['OPTIONS sip:x@h SIP/2.0', ...good.slice(0, 4), 'CSeq: 000000000007 OPTIONS', 'Max-Forwards: 0070', 'Expires: 000003600', 'Content-Length: 00000000000002']) + 'ab');
    expect(m.cseq.seq).toBe(7);
    expect(m.body.toString()).toBe('ab');
  });

  it.each([
    ['CSeq without LWS before the method', replaced('CSeq', 'CSeq: 1OPTIONS'), 'Malformed CSeq header: malformed sequence number'],
    ['CSeq of 2^31 with leading zeros', replaced('CSeq', 'CSeq: 0002147483648 OPTIONS'), 'Malformed CSeq header: sequence number out of range'],
    ['Expires not a number', options(['Expires: soon']), 'Malformed Expires'],
    ['Expires negative', options(['Expires: -1']), 'Malformed Expires'],
    ['Max-Forwards negative', options(['Max-Forwards: -1']), 'Malformed Max-Forwards'],
    ['Content-Length signed', replaced('Content-Length', 'Content-Length: +0'), 'Malformed Content-Length'],
    ['From naming no URI', replaced('From', 'From: <a b:c>;tag=1'), 'Malformed From header: malformed URI scheme'],
  ])('refuses %s', (_name, text, reason) => {
    expect(rejected(text)).toMatchObject({ status: 400, reason });
  });

  it.each([
    ['<sip:x@h>', 'Malformed Request-URI: Malformed URI scheme'],
    ['*', 'Malformed Request-URI: Malformed URI'],
    ['1:2', 'Malformed Request-URI: Malformed URI scheme'],
    ['sip:"x"@h', 'Malformed Request-URI: Malformed URI user part'],
    ['sip:a%zz@h', 'Malformed Request-URI: Malformed URI user part'],
    ['sip:a:p<w@h', 'Malformed Request-URI: Malformed URI password'],
  ])('a Request-URI that is not a URI (%s) is a 400, not a 416', (uri, reason) => {
    expect(rejected(options([], uri))).toMatchObject({ status: 400, reason });
  });

  it('accepts the Request-URI forms of the grammar: escaped and user-unreserved characters, other schemes get 416', () => {
    expect(req(options([], 'sip:%41+1;x=y&z$,?/@h')).requestUri).toMatchObject({ user: '%41+1;x=y&z$,?/' });
    expect(rejected(options([], 'mailto:a@h'))).toMatchObject({ status: 416 });
  });

  it('§18.3: over a stream Content-Length is mandatory; over UDP the datagram gives the body', () => {
    const text = base(['OPTIONS sip:x@h SIP/2.0', ...good.slice(0, 5)]);
    expect(parseMessage(Buffer.from(text), undefined, true)).toMatchObject({ ok: false, status: 400, reason: 'Missing Content-Length header' });
    expect(parseMessage(Buffer.from(text + 'xy')).ok).toBe(true);
  });
});

describe('parser: responses', () => {
  it('parses a status line and keeps the reason phrase', () => {
    const m = ok(parseMessage(Buffer.from('SIP/2.0 180 Ringing Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n')));
    expect(m).toBeInstanceOf(SipResponse);
    expect((m as SipResponse).status).toBe(180);
    expect((m as SipResponse).reason).toBe('Ringing Now');
  });

  it('rejects status codes out of range', () => {
    const r = parseMessage(Buffer.from('SIP/2.0 99 Odd\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\n\r\n'));
    expect(r.ok).toBe(false);
    expect(r.ok ? undefined : r.isResponse).toBe(true);
  });
});

describe('serializer', () => {
  it('round-trips a request and rewrites Content-Length from the body', () => {
    const m = req(INVITE);
    m.body = Buffer.from('v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n');
    const again = req(m.toString());
    expect(again.get('content-length')).toBe(String(m.body.length));
    expect(again.body.equals(m.body)).toBe(true);
    expect(again.headers.map((h) => h.key)).toEqual(m.headers.map((h) => h.key));
  });
});

describe('URIs and header values', () => {
  it('parses SIP URIs with user, password, IPv6 host, port, params and headers', () => {
    expect(parseUri('sip:alice:secret@[2001:db8::1]:5070;transport=tcp;lr?Subject=hi&Priority=urgent')).toEqual({
      scheme: 'sip',
      user: 'alice',
      password: 'secret',
      host: '[2001:db8::1]',
      port: 5070,
      params: { transport: 'tcp', lr: null },
      headers: { Subject: 'hi', Priority: 'urgent' },
    });
    const u = parseUri('sips:+1-555;isub=1@gw.example.com');
    expect(u.scheme === 'sips' && u.user).toBe('+1-555;isub=1');
    expect(formatUri(parseUri('sip:h.example.com:5060;maddr=1.2.3.4'))).toBe('sip:h.example.com:5060;maddr=1.2.3.4');
  });

  it('parses tel URIs', () => {
    expect(parseUri('tel:+1-201-555-0123;phone-context=example.com')).toEqual({ scheme: 'tel', number: '+1-201-555-0123', params: { 'phone-context': 'example.com' } });
    expect(() => parseUri('tel:abc!')).toThrow();
  });

  it('addr-spec parameters belong to the header, name-addr ones to the URI', () => {
    expect(parseNameAddr('sip:a@h;tag=5')).toEqual({ uri: 'sip:a@h', params: { tag: '5' } });
    expect(parseNameAddr('Bob <sip:a@h;transport=tcp>;tag=5')).toEqual({ displayName: 'Bob', uri: 'sip:a@h;transport=tcp', params: { tag: '5' } });
    expect(formatNameAddr({ displayName: 'A "B"', uri: 'sip:a@h', params: { tag: 'x' } })).toBe('"A \\"B\\"" <sip:a@h>;tag=x');
  });

  it('Via with received, rport and IPv6 sent-by', () => {
    expect(parseVia('SIP / 2.0 / UDP [::1]:5080;branch=z9hG4bKx;received=10.0.0.1;rport=3333')).toEqual({
      protocol: 'SIP/2.0',
      transport: 'UDP',
      host: '[::1]',
      port: 5080,
      branch: 'z9hG4bKx',
      params: { branch: 'z9hG4bKx', received: '10.0.0.1', rport: '3333' },
    });
    expect(parseCSeq('  42   REGISTER ')).toEqual({ seq: 42, method: 'REGISTER' });
  });
});

describe('TCP framing', () => {
  const msg = Buffer.from(INVITE);

  it('reassembles partial reads byte by byte', () => {
    const f = new StreamFramer();
    const out: Buffer[] = [];
    for (let i = 0; i < msg.length; i++) for (const ev of f.push(msg.subarray(i, i + 1))) if (ev.kind === 'message') out.push(ev.data);
    expect(out).toHaveLength(1);
    expect(out[0]!.equals(msg)).toBe(true);
  });

  it('splits several messages in one read and answers CRLF keep-alives', () => {
    const f = new StreamFramer();
    const evs = f.push(Buffer.concat([msg, Buffer.from('\r\n\r\n'), msg, msg.subarray(0, 10)]));
    expect(evs.map((e) => e.kind)).toEqual(['message', 'ping', 'message']);
    expect(f.buffered).toBe(10);
  });

  it('fails a stream whose Content-Length is given twice: the boundary cannot be trusted', () => {
    const f = new StreamFramer();
    const evs = f.push(Buffer.from(INVITE.replace('Content-Length: 4', 'Content-Length: 4\r\nl: 40')));
    expect(evs).toMatchObject([{ kind: 'error', status: 400, reason: 'Duplicate Content-Length header' }]);
  });

  it('frames a Content-Length with leading zeros by its value', () => {
    const f = new StreamFramer();
    const evs = f.push(Buffer.from(INVITE.replace('Content-Length: 4', 'Content-Length: 0000000000004') + 'NEXT'));
    expect(evs.map((e) => e.kind)).toEqual(['message']);
    expect(f.buffered).toBe(4);
  });

  it('fails a stream whose head exceeds the size limit, with 513', () => {
    const f = new StreamFramer({ maxMessageBytes: 1000, maxHeaders: 128 });
    const evs = f.push(Buffer.from('INVITE sip:x@h SIP/2.0\r\n' + 'X: y\r\n'.repeat(300)));
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ kind: 'error', status: 513 });
    expect(f.push(msg)).toEqual([]);
  });
});
