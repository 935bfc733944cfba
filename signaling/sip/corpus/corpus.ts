/**
 * The grammar-derived corpus: for the request line, the status line and every header the stack
 * reads, messages that are valid and invalid by RFC 3261 §25 (and the few MUSTs of §7, §8, §18,
 * §20 the ABNF cannot say), each labelled with the rule it exercises and the answer the grammar
 * calls for. `generate.ts` writes it to `corpus.json`; `corpus.test.ts` runs our parser on it and
 * `test/sip/grammar-differential.test.ts` sends it to Kamailio and to our stack.
 *
 * Requests are complete datagrams: a unique branch and Call-ID each (no retransmission match), a
 * top Via asking for `rport` so both servers answer to the source port, Content-Length counted
 * from the body unless the variant is about Content-Length.
 */

export interface CorpusMessage {
  /** `<rule>/<variant>`, unique. */
  id: string;
  /** The ABNF rule (RFC 3261 §25) or section the variant exercises. */
  rule: string;
  kind: 'request' | 'response';
  grammar: 'valid' | 'invalid';
  /**
   * The answer the grammar calls for: `accept` (handed to the application) or the refusal's status
   * (400, 416, 505). For responses, `accept` or `drop` (a response is never answered).
   */
  expect: 'accept' | 'drop' | 400 | 416 | 505;
  /** Set where our stack deliberately accepts what the grammar refuses: why. */
  tolerated?: string;
  text: string;
}

type Header = readonly [string, string];

interface Shape {
  method?: string;
  uri?: string;
  /** The whole request line, when the variant is about its spacing. */
  requestLine?: string;
  /** Replaces (or with null removes) a base header by its name. */
  set?: Record<string, string | null>;
  /** Extra header lines, before Content-Length. */
  add?: readonly Header[];
  /** Extra lines written as they are (not `name: value`). */
  rawLines?: readonly string[];
  body?: string;
  /** Content-Length as written; null leaves it out; absent = the body's length. */
  contentLength?: string | null;
  /** Raw bytes after the head's blank line beyond the body (a datagram longer than its Content-Length). */
  trailing?: string;
}

const HOST = '127.0.0.1';
/** Tolerance shared by the headers our parser does not read (the layer reading them refuses). */
const READ_ON_USE = 'not read by the parser: the layer that uses it (registrar, dialogs, digest, subscriptions) parses it and answers 400 then';

function request(index: number, s: Shape): string {
  const method = s.method ?? 'OPTIONS';
  const base: Header[] = [
    ['Via', `SIP/2.0/UDP ${HOST}:5060;branch=z9hG4bKcorpus${index};rport`],
    ['Max-Forwards', '70'],
    ['From', `<sip:caller@${HOST}>;tag=c${index}`],
    ['To', `<sip:uas@${HOST}>`],
    ['Call-ID', `corpus-${index}@${HOST}`],
    ['CSeq', `1 ${method}`],
  ];
  const lines: string[] = [s.requestLine ?? `${method} ${s.uri ?? `sip:uas@${HOST}`} SIP/2.0`];
  for (const [name, value] of base) {
    const v = s.set && Object.hasOwn(s.set, name) ? s.set[name] : value;
    if (v !== null && v !== undefined) lines.push(`${name}: ${v}`);
  }
  for (const [name, value] of s.add ?? []) lines.push(name + (value === '' ? ':' : ': ' + value));
  lines.push(...(s.rawLines ?? []));
  const body = s.body ?? '';
  const cl = s.contentLength === undefined ? String(Buffer.byteLength(body)) : s.contentLength;
  if (cl !== null) lines.push(`Content-Length: ${cl}`);
  return lines.join('\r\n') + '\r\n\r\n' + body + (s.trailing ?? '');
}

type Variant = [variant: string, grammar: 'valid' | 'invalid', expect: CorpusMessage['expect'], shape: Shape, tolerated?: string];

/** Request variants by rule. */
const REQUESTS: [rule: string, variants: Variant[]][] = [
  [
    'Request-Line',
    [
      ['options', 'valid', 'accept', {}],
      ['invite', 'valid', 'accept', { method: 'INVITE', add: [['Contact', `<sip:caller@${HOST}>`]] }],
      ['register', 'valid', 'accept', { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', '60']] }],
      ['message', 'valid', 'accept', { method: 'MESSAGE', body: 'hi', add: [['Content-Type', 'text/plain']] }],
      ['extension-method', 'valid', 'accept', { method: 'FOO-BAR.1' }],
      ['version-lower-case', 'valid', 'accept', { requestLine: `OPTIONS sip:uas@${HOST} sip/2.0` }],
      ['method-not-token', 'invalid', 400, { requestLine: `OPT(ONS sip:uas@${HOST} SIP/2.0` }],
      ['no-version', 'invalid', 400, { requestLine: `OPTIONS sip:uas@${HOST}` }],
      ['double-space', 'invalid', 400, { requestLine: `OPTIONS  sip:uas@${HOST} SIP/2.0` }],
      ['trailing-space', 'invalid', 400, { requestLine: `OPTIONS sip:uas@${HOST} SIP/2.0 ` }, 'trailing whitespace on the request line hides nothing (Kamailio forgives it too)'],
      ['four-parts', 'invalid', 400, { requestLine: `OPTIONS sip:uas@${HOST} x SIP/2.0` }],
      ['version-3', 'valid', 505, { requestLine: `OPTIONS sip:uas@${HOST} SIP/3.0` }],
      ['version-no-minor', 'invalid', 400, { requestLine: `OPTIONS sip:uas@${HOST} SIP/2` }],
      ['version-http', 'invalid', 400, { requestLine: `OPTIONS sip:uas@${HOST} HTTP/1.1` }],
    ],
  ],
  [
    'Request-URI',
    [
      ['sips', 'valid', 'accept', { uri: `sips:uas@${HOST}` }],
      ['tel', 'valid', 'accept', { uri: 'tel:+1-201-555-0123' }],
      ['port-params-headers', 'valid', 'accept', { uri: `sip:uas@${HOST}:5060;transport=udp;lr?Subject=x` }],
      ['ipv6', 'valid', 'accept', { uri: 'sip:uas@[::1]:5060' }],
      ['no-user', 'valid', 'accept', { uri: `sip:${HOST}` }],
      ['escaped-user', 'valid', 'accept', { uri: `sip:%75as@${HOST}` }],
      ['user-unreserved', 'valid', 'accept', { uri: `sip:+1&=$,;?/@${HOST}` }],
      ['password', 'valid', 'accept', { uri: `sip:uas:secret@${HOST}` }],
      ['other-scheme', 'valid', 416, { uri: 'http://example.com/' }],
      ['urn', 'valid', 416, { uri: 'urn:service:sos' }],
      ['angle-brackets', 'invalid', 400, { uri: `<sip:uas@${HOST}>` }],
      ['star', 'invalid', 400, { uri: '*' }],
      ['no-scheme', 'invalid', 400, { uri: 'uas' }],
      ['digit-scheme', 'invalid', 400, { uri: '1sip:uas@h' }],
      ['empty-sip', 'invalid', 400, { uri: 'sip:' }],
      ['empty-user', 'invalid', 400, { uri: `sip:@${HOST}` }],
      ['empty-host', 'invalid', 400, { uri: 'sip:uas@' }],
      ['port-out-of-range', 'invalid', 400, { uri: `sip:uas@${HOST}:99999` }],
      ['port-not-digits', 'invalid', 400, { uri: `sip:uas@${HOST}:sip` }],
      ['quote-in-user', 'invalid', 400, { uri: `sip:"uas"@${HOST}` }],
      ['bad-escape', 'invalid', 400, { uri: `sip:u%zzs@${HOST}` }],
      ['unclosed-ipv6', 'invalid', 400, { uri: 'sip:uas@[::1' }],
      ['bad-host-char', 'invalid', 400, { uri: 'sip:uas@ho!st' }],
    ],
  ],
  [
    'Via',
    [
      ['compact-lws', 'valid', 'accept', { set: { Via: null }, add: [['v', `SIP / 2.0 / UDP ${HOST}:5060 ;branch=z9hG4bKcv;rport`]] }],
      ['no-port', 'valid', 'accept', { set: { Via: `SIP/2.0/UDP ${HOST};branch=z9hG4bKnp;rport` } }],
      ['ipv6', 'valid', 'accept', { set: { Via: 'SIP/2.0/UDP [::1]:5060;branch=z9hG4bKv6;rport' } }],
      ['two-values', 'valid', 'accept', { set: { Via: `SIP/2.0/UDP ${HOST}:5060;branch=z9hG4bKtv;rport, SIP/2.0/TCP p.example.com;branch=z9hG4bKx` } }],
      ['two-rows', 'valid', 'accept', { add: [['Via', 'SIP/2.0/TCP p.example.com;branch=z9hG4bKy']] }],
      ['extension-transport', 'valid', 'accept', { set: { Via: `SIP/2.0/XYZ ${HOST}:5060;branch=z9hG4bKxt;rport` } }],
      ['params', 'valid', 'accept', { set: { Via: `SIP/2.0/UDP ${HOST}:5060;ttl=16;maddr=${HOST};received=10.0.0.1;branch=z9hG4bKpa;rport` } }],
      ['no-transport', 'invalid', 400, { set: { Via: `SIP/2.0 ${HOST}:5060;branch=z9hG4bKnt;rport` } }],
      ['version-3', 'invalid', 400, { set: { Via: `SIP/3.0/UDP ${HOST}:5060;branch=z9hG4bKv3;rport` } }],
      ['no-host', 'invalid', 400, { set: { Via: 'SIP/2.0/UDP ;branch=z9hG4bKnh;rport' } }],
      ['port-out-of-range', 'invalid', 400, { set: { Via: `SIP/2.0/UDP ${HOST}:70000;branch=z9hG4bKpr;rport` } }],
      ['port-not-digits', 'invalid', 400, { set: { Via: `SIP/2.0/UDP ${HOST}:x;branch=z9hG4bKpd;rport` } }],
      ['empty-param', 'invalid', 400, { set: { Via: `SIP/2.0/UDP ${HOST}:5060;;branch=z9hG4bKep;rport` } }],
      ['missing', 'invalid', 400, { set: { Via: null } }],
    ],
  ],
  [
    'From',
    [
      ['addr-spec', 'valid', 'accept', { set: { From: `sip:caller@${HOST};tag=a1` } }],
      ['token-display-name', 'valid', 'accept', { set: { From: `Alice Smith <sip:caller@${HOST}>;tag=a2` } }],
      ['quoted-display-name', 'valid', 'accept', { set: { From: `"Alice \\"A\\" <x>" <sip:caller@${HOST}>;tag=a3` } }],
      ['tel', 'valid', 'accept', { set: { From: '<tel:+12015550123>;tag=a4' } }],
      ['compact', 'valid', 'accept', { set: { From: null }, add: [['f', `<sip:caller@${HOST}>;tag=a5`]] }],
      ['unclosed-angle', 'invalid', 400, { set: { From: `<sip:caller@${HOST};tag=b1` } }],
      ['unterminated-quote', 'invalid', 400, { set: { From: `"Alice <sip:caller@${HOST}>;tag=b2` } }],
      ['not-a-uri', 'invalid', 400, { set: { From: '<caller>;tag=b3' } }],
      ['bad-scheme', 'invalid', 400, { set: { From: '<a b:c>;tag=b4' } }],
      ['empty-param', 'invalid', 400, { set: { From: `<sip:caller@${HOST}>;;tag=b5` } }],
      ['missing', 'invalid', 400, { set: { From: null } }],
      ['twice', 'invalid', 400, { add: [['From', `<sip:other@${HOST}>;tag=b6`]] }],
    ],
  ],
  [
    'To',
    [
      ['addr-spec', 'valid', 'accept', { set: { To: `sip:uas@${HOST}` } }],
      ['display-name', 'valid', 'accept', { set: { To: `"Bob" <sip:uas@${HOST}>` } }],
      ['compact', 'valid', 'accept', { set: { To: null }, add: [['t', `<sip:uas@${HOST}>`]] }],
      ['unclosed-angle', 'invalid', 400, { set: { To: `<sip:uas@${HOST}` } }],
      ['not-a-uri', 'invalid', 400, { set: { To: '<uas>' } }],
      ['missing', 'invalid', 400, { set: { To: null } }],
      ['twice', 'invalid', 400, { add: [['To', `<sip:other@${HOST}>`]] }],
    ],
  ],
  [
    'Call-ID',
    [
      ['word-only', 'valid', 'accept', { set: { 'Call-ID': 'abc-123.x!%*_+`\'~()<>:\\"/[]?{}' } }],
      ['compact', 'valid', 'accept', { set: { 'Call-ID': null }, add: [['i', 'compact-callid@h']] }],
      ['empty', 'invalid', 400, { set: { 'Call-ID': '' } }],
      ['space-inside', 'invalid', 400, { set: { 'Call-ID': 'a b@h' } }, 'a Call-ID is only compared as text; nothing breaks on a space (Kamailio accepts it too)'],
      ['missing', 'invalid', 400, { set: { 'Call-ID': null } }],
      ['twice', 'invalid', 400, { add: [['Call-ID', 'other@h']] }],
      ['twice-compact', 'invalid', 400, { add: [['i', 'other@h']] }],
    ],
  ],
  [
    'CSeq',
    [
      ['zero', 'valid', 'accept', { set: { CSeq: '0 OPTIONS' } }],
      ['leading-zeros', 'valid', 'accept', { set: { CSeq: '0001 OPTIONS' } }],
      ['many-leading-zeros', 'valid', 'accept', { set: { CSeq: '000000000000042 OPTIONS' } }],
      ['max', 'valid', 'accept', { set: { CSeq: '2147483647 OPTIONS' } }],
      ['lws', 'valid', 'accept', { set: { CSeq: '  5 \t OPTIONS ' } }],
      ['too-large', 'invalid', 400, { set: { CSeq: '2147483648 OPTIONS' } }],
      ['not-digits', 'invalid', 400, { set: { CSeq: 'one OPTIONS' } }],
      ['negative', 'invalid', 400, { set: { CSeq: '-1 OPTIONS' } }],
      ['no-method', 'invalid', 400, { set: { CSeq: '1' } }],
      ['no-lws', 'invalid', 400, { set: { CSeq: '1OPTIONS' } }],
      ['method-mismatch', 'invalid', 400, { set: { CSeq: '1 INVITE' } }],
      ['missing', 'invalid', 400, { set: { CSeq: null } }],
      ['twice', 'invalid', 400, { add: [['CSeq', '2 OPTIONS']] }],
    ],
  ],
  [
    'Max-Forwards',
    [
      ['zero', 'valid', 'accept', { set: { 'Max-Forwards': '0' } }],
      ['leading-zeros', 'valid', 'accept', { set: { 'Max-Forwards': '0070' } }],
      ['absent', 'valid', 'accept', { set: { 'Max-Forwards': null } }],
      ['not-digits', 'invalid', 400, { set: { 'Max-Forwards': 'lots' } }],
      ['negative', 'invalid', 400, { set: { 'Max-Forwards': '-1' } }],
      ['empty', 'invalid', 400, { set: { 'Max-Forwards': '' } }],
      ['twice', 'invalid', 400, { add: [['Max-Forwards', '69']] }],
    ],
  ],
  [
    'Contact',
    [
      ['params', 'valid', 'accept', { add: [['Contact', `<sip:caller@${HOST}>;expires=60;q=0.5`]] }],
      ['list', 'valid', 'accept', { add: [['Contact', `"A, B" <sip:a@${HOST}>, <sip:b@${HOST}>`]] }],
      ['star', 'valid', 'accept', { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', '*'], ['Expires', '0']] }],
      ['compact', 'valid', 'accept', { add: [['m', `sip:caller@${HOST}`]] }],
      ['unclosed-angle', 'invalid', 400, { add: [['Contact', `<sip:caller@${HOST}`]] }, READ_ON_USE],
    ],
  ],
  [
    'Content-Length',
    [
      ['body', 'valid', 'accept', { method: 'MESSAGE', add: [['Content-Type', 'text/plain']], body: 'hello' }],
      ['leading-zeros', 'valid', 'accept', { method: 'MESSAGE', add: [['Content-Type', 'text/plain']], body: 'hello', contentLength: '0000005' }],
      ['compact', 'valid', 'accept', { contentLength: null, add: [['l', '0']] }],
      ['absent-udp', 'valid', 'accept', { contentLength: null }],
      ['smaller-than-datagram', 'valid', 'accept', { method: 'MESSAGE', add: [['Content-Type', 'text/plain']], body: 'hello', trailing: 'garbage' }],
      ['larger-than-datagram', 'invalid', 400, { method: 'MESSAGE', add: [['Content-Type', 'text/plain']], body: 'hello', contentLength: '50' }],
      ['huge', 'invalid', 400, { contentLength: '4294967296' }],
      ['not-digits', 'invalid', 400, { contentLength: 'five' }],
      ['signed', 'invalid', 400, { contentLength: '+0' }],
      ['twice-same', 'invalid', 400, { add: [['Content-Length', '0']] }],
      ['twice-different', 'invalid', 400, { method: 'MESSAGE', add: [['Content-Type', 'text/plain'], ['l', '2']], body: 'hello' }],
    ],
  ],
  [
    'Content-Type',
    [
      ['sdp', 'valid', 'accept', { method: 'MESSAGE', add: [['Content-Type', 'application/sdp']], body: 'v=0\r\n' }],
      ['params-compact', 'valid', 'accept', { method: 'MESSAGE', add: [['c', 'text/plain ; charset=utf-8']], body: 'hi' }],
      ['no-subtype', 'invalid', 400, { method: 'MESSAGE', add: [['Content-Type', 'text']], body: 'hi' }, READ_ON_USE],
      ['twice', 'invalid', 400, { method: 'MESSAGE', add: [['Content-Type', 'text/plain'], ['Content-Type', 'text/html']], body: 'hi' }],
    ],
  ],
  [
    'Expires',
    [
      ['zero', 'valid', 'accept', { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', '0']] }],
      ['leading-zeros', 'valid', 'accept', { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', '0003600']] }],
      ['not-digits', 'invalid', 400, { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', 'soon']] }],
      ['negative', 'invalid', 400, { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', '-1']] }],
      ['fraction', 'invalid', 400, { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', '1.5']] }],
      ['twice', 'invalid', 400, { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Expires', '60'], ['Expires', '60']] }],
    ],
  ],
  [
    'Route',
    [
      ['lr', 'valid', 'accept', { add: [['Route', `<sip:${HOST};lr>`]] }],
      ['list-and-rows', 'valid', 'accept', { add: [['Route', `<sip:p1.example.com;lr>, <sip:p2.example.com;lr>`], ['Record-Route', `<sip:${HOST};lr>`]] }],
      ['addr-spec', 'invalid', 400, { add: [['Route', `sip:${HOST};lr`]] }, READ_ON_USE],
      ['unclosed-angle', 'invalid', 400, { add: [['Record-Route', `<sip:${HOST};lr`]] }, READ_ON_USE],
    ],
  ],
  [
    'Authorization',
    [
      ['digest', 'valid', 'accept', { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Authorization', `Digest username="caller", realm="${HOST}", nonce="abc", uri="sip:${HOST}", response="0123456789abcdef0123456789abcdef", algorithm=MD5`]] }],
      ['unterminated-quote', 'invalid', 400, { method: 'REGISTER', uri: `sip:${HOST}`, add: [['Contact', `<sip:caller@${HOST}>`], ['Authorization', `Digest username="caller, realm="${HOST}"`]] }, READ_ON_USE],
    ],
  ],
  [
    'Event',
    [
      ['subscribe', 'valid', 'accept', { method: 'SUBSCRIBE', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'dialog;id=1'], ['Expires', '60']] }],
      ['compact', 'valid', 'accept', { method: 'SUBSCRIBE', add: [['Contact', `<sip:caller@${HOST}>`], ['o', 'presence']] }],
      ['not-token', 'invalid', 400, { method: 'SUBSCRIBE', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'pres ence']] }, READ_ON_USE],
      ['twice', 'invalid', 400, { method: 'SUBSCRIBE', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'presence'], ['Event', 'dialog']] }],
    ],
  ],
  [
    'Subscription-State',
    [
      ['active', 'valid', 'accept', { method: 'NOTIFY', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'dialog'], ['Subscription-State', 'active;expires=60']] }],
      ['terminated', 'valid', 'accept', { method: 'NOTIFY', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'dialog'], ['Subscription-State', 'terminated;reason=timeout']] }],
      ['no-value', 'invalid', 400, { method: 'NOTIFY', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'dialog'], ['Subscription-State', ';expires=60']] }, READ_ON_USE],
      ['twice', 'invalid', 400, { method: 'NOTIFY', add: [['Contact', `<sip:caller@${HOST}>`], ['Event', 'dialog'], ['Subscription-State', 'active'], ['Subscription-State', 'pending']] }],
    ],
  ],
  [
    'message-header',
    [
      ['extension-header', 'valid', 'accept', { add: [['X-Extension', 'anything; at all']] }],
      ['empty-value', 'valid', 'accept', { add: [['Subject', '']] }],
      ['folded', 'valid', 'accept', { add: [['Subject', 'one\r\n two']] }],
      ['name-with-space', 'invalid', 400, { add: [['Bad Name', 'x']] }],
      ['no-colon', 'invalid', 400, { rawLines: ['NoColonHere'] }],
    ],
  ],
];

/** Status-line variants (responses are parsed, never answered). */
const RESPONSES: [variant: string, grammar: 'valid' | 'invalid', expect: 'accept' | 'drop', statusLine: string, tolerated?: string][] = [
  ['ok', 'valid', 'accept', 'SIP/2.0 200 OK'],
  ['empty-reason', 'valid', 'accept', 'SIP/2.0 180 '],
  ['utf8-reason', 'valid', 'accept', 'SIP/2.0 486 Occupé'],
  ['no-reason-space', 'invalid', 'drop', 'SIP/2.0 200', 'the space before an empty reason phrase is often left out; nothing is lost'],
  ['four-digits', 'invalid', 'drop', 'SIP/2.0 2000 OK'],
  ['below-100', 'invalid', 'drop', 'SIP/2.0 099 Odd'],
  ['version-3', 'valid', 'drop', 'SIP/3.0 200 OK'],
];

function response(index: number, statusLine: string): string {
  return [
    statusLine,
    `Via: SIP/2.0/UDP ${HOST}:5060;branch=z9hG4bKcorpusr${index}`,
    `From: <sip:caller@${HOST}>;tag=c${index}`,
    `To: <sip:uas@${HOST}>;tag=u${index}`,
    `Call-ID: corpus-r${index}@${HOST}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
  ].join('\r\n') + '\r\n\r\n';
}

export function buildCorpus(): CorpusMessage[] {
  const out: CorpusMessage[] = [];
  for (const [rule, variants] of REQUESTS) {
    for (const [variant, grammar, expect, shape, tolerated] of variants) {
      const m: CorpusMessage = { id: `${rule}/${variant}`, rule, kind: 'request', grammar, expect, text: request(out.length, shape) };
      if (tolerated) m.tolerated = tolerated;
      out.push(m);
    }
  }
  for (const [variant, grammar, expect, statusLine, tolerated] of RESPONSES) {
    const m: CorpusMessage = { id: `Status-Line/${variant}`, rule: 'Status-Line', kind: 'response', grammar, expect, text: response(out.length, statusLine) };
    if (tolerated) m.tolerated = tolerated;
    out.push(m);
  }
  return out;
}

/** The corpus file's text: a JSON array, one message per line. */
export function corpusJson(corpus: readonly CorpusMessage[]): string {
  return '[\n' + corpus.map((m) => JSON.stringify(m)).join(',\n') + '\n]\n';
}
