/**
 * SIP messages: start line, ordered headers kept as text, body as bytes. Structured values
 * (Via, From, To, CSeq) are parsed on first use and cached, so a proxy-style pass-through
 * never pays for headers it does not read.
 */
import { headerKey, isListHeader, splitList } from './grammar.js';
import { parseCSeq, parseNameAddr, parseVia, type CSeq, type NameAddr, type Via } from './headers.js';
import { parseUri, type Uri } from './uri.js';

export interface RawHeader {
  /** Name as written (used when serializing). */
  name: string;
  /** Lower-case long form (compact forms expanded), used for lookup. */
  key: string;
  value: string;
}

const EMPTY = Buffer.alloc(0);

/** Canonical spelling for headers the stack itself writes. */
const CANONICAL: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  via: 'Via',
  from: 'From',
  to: 'To',
  contact: 'Contact',
  'content-length': 'Content-Length',
  'content-type': 'Content-Type',
  'max-forwards': 'Max-Forwards',
  'www-authenticate': 'WWW-Authenticate',
  'proxy-authenticate': 'Proxy-Authenticate',
  'proxy-authorization': 'Proxy-Authorization',
  authorization: 'Authorization',
  'record-route': 'Record-Route',
  route: 'Route',
  'user-agent': 'User-Agent',
  'retry-after': 'Retry-After',
  expires: 'Expires',
  'min-expires': 'Min-Expires',
  event: 'Event',
  'subscription-state': 'Subscription-State',
};

export function canonicalName(name: string): string {
  const key = headerKey(name);
  return CANONICAL[key] ?? name;
}

export abstract class SipMessage {
  headers: RawHeader[];
  body: Buffer;
  private cache: { via: Via | undefined; from: NameAddr | undefined; to: NameAddr | undefined; cseq: CSeq | undefined } = { via: undefined, from: undefined, to: undefined, cseq: undefined };

  constructor(headers: RawHeader[] = [], body: Buffer = EMPTY) {
    this.headers = headers;
    this.body = body;
  }

  abstract startLine(): string;

  get(name: string): string | undefined {
    const key = headerKey(name);
    for (const h of this.headers) if (h.key === key) return h.value;
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Every value of a header; list headers (Via, Route, Contact, ...) are split on their commas. */
  getAll(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    const list = isListHeader(key);
    for (const h of this.headers) {
      if (h.key !== key) continue;
      if (list && h.value.indexOf(',') >= 0) out.push(...splitList(h.value));
      else out.push(h.value);
    }
    return out;
  }

  set(name: string, value: string): this {
    this.remove(name);
    return this.append(name, value);
  }

  append(name: string, value: string): this {
    const key = headerKey(name);
    this.headers.push({ name: canonicalName(name), key, value });
    this.invalidate(key);
    return this;
  }

  prepend(name: string, value: string): this {
    const key = headerKey(name);
    this.headers.unshift({ name: canonicalName(name), key, value });
    this.invalidate(key);
    return this;
  }

  remove(name: string): this {
    const key = headerKey(name);
    this.headers = this.headers.filter((h) => h.key !== key);
    this.invalidate(key);
    return this;
  }

  /** Removes the first value of a list header (e.g. our own Via from a response). */
  removeFirst(name: string): this {
    const key = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === key);
    if (idx < 0) return this;
    const h = this.headers[idx]!;
    const parts = h.value.indexOf(',') >= 0 && isListHeader(key) ? splitList(h.value) : [h.value];
    // A new entry, not an edit: responses share header entries with the request they answer.
    if (parts.length > 1) this.headers[idx] = { name: h.name, key: h.key, value: parts.slice(1).join(', ') };
    else this.headers.splice(idx, 1);
    this.invalidate(key);
    return this;
  }

  private invalidate(key: string): void {
    // Assigning undefined (not delete) keeps the cache object in V8's fast mode.
    if (key === 'via') this.cache.via = undefined;
    else if (key === 'from') this.cache.from = undefined;
    else if (key === 'to') this.cache.to = undefined;
    else if (key === 'cseq') this.cache.cseq = undefined;
  }

  /** Top Via. Throws HeaderError if absent or malformed (the parser rejects such requests first). */
  get via(): Via {
    if (!this.cache.via) {
      const v = this.get('via');
      if (v === undefined) throw new MissingHeaderError('Via');
      const comma = v.indexOf(',');
      this.cache.via = parseVia(comma >= 0 ? splitList(v)[0]! : v);
    }
    return this.cache.via;
  }

  get from(): NameAddr {
    if (!this.cache.from) this.cache.from = parseNameAddr(this.require('from', 'From'));
    return this.cache.from;
  }

  get to(): NameAddr {
    if (!this.cache.to) this.cache.to = parseNameAddr(this.require('to', 'To'));
    return this.cache.to;
  }

  get cseq(): CSeq {
    if (!this.cache.cseq) this.cache.cseq = parseCSeq(this.require('cseq', 'CSeq'));
    return this.cache.cseq;
  }

  get callId(): string {
    return this.require('call-id', 'Call-ID');
  }

  get fromTag(): string | undefined {
    return this.from.params.tag ?? undefined;
  }

  get toTag(): string | undefined {
    return this.to.params.tag ?? undefined;
  }

  private require(key: string, name: string): string {
    const v = this.get(key);
    if (v === undefined) throw new MissingHeaderError(name);
    return v;
  }

  /** Wire form; Content-Length is always written from the body's real length. */
  toBuffer(): Buffer {
    let head = this.startLine() + '\r\n';
    for (const h of this.headers) {
      if (h.key === 'content-length') continue;
      head += h.name + ': ' + h.value + '\r\n';
    }
    head += 'Content-Length: ' + this.body.length + '\r\n\r\n';
    if (this.body.length === 0) return Buffer.from(head);
    const headLen = Buffer.byteLength(head);
    const out = Buffer.allocUnsafe(headLen + this.body.length);
    out.write(head, 0);
    this.body.copy(out, headLen);
    return out;
  }

  toString(): string {
    return this.toBuffer().toString();
  }
}

export class MissingHeaderError extends Error {
  constructor(name: string) {
    super(`Missing ${name} header`);
  }
}

export class SipRequest extends SipMessage {
  method: string;
  uri: string;
  private parsedUri?: Uri;

  constructor(method: string, uri: string, headers?: RawHeader[], body?: Buffer) {
    super(headers, body);
    this.method = method;
    this.uri = uri;
  }

  get requestUri(): Uri {
    this.parsedUri ??= parseUri(this.uri);
    return this.parsedUri;
  }

  startLine(): string {
    return this.method + ' ' + this.uri + ' SIP/2.0';
  }
}

export class SipResponse extends SipMessage {
  status: number;
  reason: string;

  constructor(status: number, reason: string, headers?: RawHeader[], body?: Buffer) {
    super(headers, body);
    this.status = status;
    this.reason = reason;
  }

  startLine(): string {
    return 'SIP/2.0 ' + this.status + ' ' + this.reason;
  }
}

const REASONS: Record<number, string> = {
  100: 'Trying', 180: 'Ringing', 181: 'Call Is Being Forwarded', 182: 'Queued', 183: 'Session Progress',
  200: 'OK', 202: 'Accepted', 204: 'No Notification',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Moved Temporarily', 305: 'Use Proxy', 380: 'Alternative Service',
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout',
  410: 'Gone', 413: 'Request Entity Too Large', 414: 'Request-URI Too Long', 415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme', 420: 'Bad Extension', 421: 'Extension Required', 423: 'Interval Too Brief',
  480: 'Temporarily Unavailable', 481: 'Call/Transaction Does Not Exist', 482: 'Loop Detected', 483: 'Too Many Hops',
  484: 'Address Incomplete', 485: 'Ambiguous', 486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here',
  489: 'Bad Event', 491: 'Request Pending', 493: 'Undecipherable',
  500: 'Server Internal Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Server Time-out', 505: 'Version Not Supported', 513: 'Message Too Large',
  600: 'Busy Everywhere', 603: 'Decline', 604: 'Does Not Exist Anywhere', 606: 'Not Acceptable',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'OK' : 'Error');
}

/** A response made up locally (timeouts, transport errors, local 491, malformed requests), shaped like one from the wire. */
export function localResponse(status: number, reason: string, req?: SipRequest): SipResponse {
  const res = new SipResponse(status, reason);
  if (req) {
    for (const h of req.headers) {
      if (h.key === 'via' || h.key === 'from' || h.key === 'to' || h.key === 'call-id' || h.key === 'cseq') res.headers.push({ ...h });
    }
  }
  return res;
}
