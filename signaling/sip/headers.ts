/** Structured header values: name-addr (From/To/Contact/Route), Via, CSeq (RFC 3261 §20). */
import { formatParams, isScheme, isToken, isWs, parseDigits, parseParams, quote, readQuoted, type Params } from './grammar.js';

export class HeaderError extends Error {}

export interface NameAddr {
  displayName?: string;
  /** The URI text as written; parse it with parseUri when needed. */
  uri: string;
  params: Params;
}

/** Parses name-addr or addr-spec with header parameters (From, To, Contact, Route, Record-Route, Refer-To). */
export function parseNameAddr(value: string): NameAddr {
  let i = 0;
  const n = value.length;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  let displayName: string | undefined;
  const lt = value.indexOf('<', i);
  if (value.charCodeAt(i) === 34) {
    const q = readQuoted(value, i);
    if (!q) throw new HeaderError('unterminated quoted display name');
    displayName = q.value;
    i = q.end;
    while (i < n && isWs(value.charCodeAt(i))) i++;
    if (value.charCodeAt(i) !== 60) throw new HeaderError('display name without <URI>');
  } else if (lt > i) {
    const dn = value.slice(i, lt).trim();
    if (dn) displayName = dn;
    i = lt;
  }
  let uri: string;
  let paramsFrom: number;
  if (value.charCodeAt(i) === 60) {
    const gt = value.indexOf('>', i);
    if (gt < 0) throw new HeaderError('missing >');
    uri = value.slice(i + 1, gt).trim();
    paramsFrom = gt + 1;
  } else {
    // addr-spec: parameters after ';' belong to the header, not the URI (§20.10).
    let end = i;
    while (end < n && value.charCodeAt(end) !== 59 && !isWs(value.charCodeAt(end))) end++;
    uri = value.slice(i, end);
    paramsFrom = end;
  }
  const colon = uri.indexOf(':');
  if (colon <= 0) throw new HeaderError('missing URI');
  // addr-spec is a SIP, SIPS or absolute URI (§25): `<foo>` or `<a b:c>` is not one.
  if (!isScheme(uri, 0, colon)) throw new HeaderError('malformed URI scheme');
  const params = parseParams(value, paramsFrom);
  if (!params) throw new HeaderError('malformed parameters');
  const na: NameAddr = { uri, params };
  if (displayName !== undefined) na.displayName = displayName;
  return na;
}

export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName !== undefined ? quote(na.displayName) + ' ' : '';
  return dn + '<' + na.uri + '>' + formatParams(na.params);
}

export interface Via {
  protocol: string;
  /** Transport, upper-case (UDP, TCP, TLS, WS, WSS, SCTP). */
  transport: string;
  host: string;
  port?: number;
  params: Params;
  branch?: string;
}

/** Parses one Via value (not a comma list). */
export function parseVia(value: string): Via {
  let i = 0;
  const n = value.length;
  const slash1 = value.indexOf('/');
  const slash2 = slash1 < 0 ? -1 : value.indexOf('/', slash1 + 1);
  if (slash2 < 0) throw new HeaderError('missing sent-protocol');
  const name = value.slice(0, slash1).trim();
  const version = value.slice(slash1 + 1, slash2).trim();
  if (name.toUpperCase() !== 'SIP' || version !== '2.0') throw new HeaderError('protocol must be SIP/2.0');
  i = slash2 + 1;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  const tStart = i;
  while (i < n && !isWs(value.charCodeAt(i))) i++;
  const transport = value.slice(tStart, i).toUpperCase();
  if (!isToken(transport)) throw new HeaderError('malformed transport');
  while (i < n && isWs(value.charCodeAt(i))) i++;
  let host: string;
  if (value.charCodeAt(i) === 91) {
    const close = value.indexOf(']', i);
    if (close < 0) throw new HeaderError('malformed IPv6 sent-by');
    host = value.slice(i, close + 1);
    i = close + 1;
  } else {
    const hStart = i;
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c === 58 || c === 59 || isWs(c)) break;
      i++;
    }
    host = value.slice(hStart, i);
  }
  if (!host) throw new HeaderError('missing sent-by host');
  while (i < n && isWs(value.charCodeAt(i))) i++;
  let port: number | undefined;
  if (value.charCodeAt(i) === 58) {
    i++;
    while (i < n && isWs(value.charCodeAt(i))) i++;
    const pStart = i;
    while (i < n && value.charCodeAt(i) >= 48 && value.charCodeAt(i) <= 57) i++;
    if (i === pStart || i - pStart > 5) throw new HeaderError('malformed sent-by port');
    port = Number(value.slice(pStart, i));
    if (port > 65535) throw new HeaderError('sent-by port out of range');
  }
  const params = parseParams(value, i);
  if (!params) throw new HeaderError('malformed parameters');
  const via: Via = { protocol: 'SIP/2.0', transport, host, params };
  if (port !== undefined) via.port = port;
  const branch = params.branch;
  if (branch) via.branch = branch;
  return via;
}

export function formatVia(via: Via): string {
  return 'SIP/2.0/' + via.transport + ' ' + via.host + (via.port !== undefined ? ':' + via.port : '') + formatParams(via.params);
}

export interface CSeq {
  seq: number;
  method: string;
}

export function parseCSeq(value: string): CSeq {
  let i = 0;
  const n = value.length;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  const s = i;
  while (i < n && value.charCodeAt(i) >= 48 && value.charCodeAt(i) <= 57) i++;
  // 1*DIGIT (§25): leading zeros are legal, so the value is bounded, not the digits.
  const seq = i === s ? -1 : parseDigits(value, s, i);
  if (seq < 0) throw new HeaderError('malformed sequence number');
  // §8.1.1.5: the sequence number MUST be less than 2**31.
  if (seq >= 2 ** 31) throw new HeaderError('sequence number out of range');
  // CSeq = 1*DIGIT LWS Method: "1INVITE" is not a CSeq.
  if (i < n && !isWs(value.charCodeAt(i))) throw new HeaderError('malformed sequence number');
  const method = value.slice(i).trim();
  if (!isToken(method)) throw new HeaderError('malformed method');
  return { seq, method };
}
