/**
 * Parser (RFC 3261 §7, §25): tolerant of legal oddities (folding, whitespace, case, compact
 * names, bare LF), strict about what a request must carry. Every failure on a request yields a
 * status and reason phrase to answer with, plus whatever headers could be read to address it.
 */
import { headerKey, isToken, isWs, parseDigits, singleInstanceBit, SIP_METHODS } from './grammar.js';
import { HeaderError } from './headers.js';
import { canonicalName, SipRequest, SipResponse, type RawHeader } from './message.js';
import { UnsupportedSchemeError, UriError } from './uri.js';

export interface ParseLimits {
  /** Largest message accepted, head and body (default 65535). */
  maxMessageBytes: number;
  /** Most header lines accepted (default 128). */
  maxHeaders: number;
}

export const DEFAULT_LIMITS: ParseLimits = { maxMessageBytes: 65535, maxHeaders: 128 };

export type ParseResult =
  | { ok: true; message: SipRequest | SipResponse }
  | {
      ok: false;
      /** Status to answer a request with (400, 413, 416, 505, 513). */
      status: number;
      reason: string;
      /** What could be read of a request, for addressing the error response; absent for responses and garbage. */
      request?: SipRequest;
      isResponse: boolean;
    };

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

function fail(status: number, reason: string, isResponse: boolean, request?: SipRequest): ParseResult {
  const r: ParseResult = { ok: false, status, reason, isResponse };
  if (request) r.request = request;
  return r;
}

/** Locates the blank line ending the head: [index of head end, length of the separator]. */
export function findHeadEnd(buf: Buffer, from = 0): [number, number] {
  const crlf = buf.indexOf(CRLFCRLF, from);
  if (crlf >= 0) return [crlf, 4];
  const lf = buf.indexOf(LFLF, from);
  return lf >= 0 ? [lf, 2] : [-1, 0];
}

/**
 * Parses one whole message. `stream` means framing was done by Content-Length already (TCP);
 * over datagrams, Content-Length is checked against the bytes that arrived (§18.3).
 */
export function parseMessage(buf: Buffer, limits: ParseLimits = DEFAULT_LIMITS, stream = false): ParseResult {
  try {
    return parseUnsafe(buf, limits, stream);
  } catch (err) {
    // Defensive: the scanners only throw their own errors, but a crash here must never reach the socket loop.
    return fail(400, 'Malformed message: ' + (err instanceof Error ? err.message : 'unknown'), false);
  }
}

function parseUnsafe(buf: Buffer, limits: ParseLimits, stream: boolean): ParseResult {
  let start = 0;
  while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++;
  // "SIP/" in any case, compared on bytes (| 0x20 lower-cases letters).
  const looksResponse =
    buf.length - start >= 4 && (buf[start]! | 0x20) === 115 && (buf[start + 1]! | 0x20) === 105 && (buf[start + 2]! | 0x20) === 112 && buf[start + 3] === 47;
  if (buf.length > limits.maxMessageBytes) {
    return fail(513, 'Message Too Large', looksResponse, looksResponse ? undefined : partialRequest(buf, start, limits));
  }
  const [headEnd, sepLen] = findHeadEnd(buf, start);
  const headStop = headEnd < 0 ? buf.length : headEnd;
  const head = buf.toString('utf8', start, headStop);
  const firstEnd = lineEnd(head, 0);
  const first = head.slice(0, firstEnd[0]);
  const headers: RawHeader[] = [];
  const headerErr = readHeaders(head, firstEnd[1], headers, limits);

  if (looksResponse) {
    if (headEnd < 0) return fail(400, 'Incomplete message head', true);
    if (headerErr) return fail(400, headerErr, true);
    const sp1 = first.indexOf(' ');
    const version = first.slice(0, sp1 < 0 ? first.length : sp1);
    if (version.toUpperCase() !== 'SIP/2.0') return fail(505, 'Version Not Supported', true);
    const codeText = first.slice(sp1 + 1, sp1 + 4);
    const status = Number(codeText);
    // Status-Code is 3DIGIT followed by SP (§25): "2000" is not a status.
    const codeEnds = sp1 + 4 >= first.length || first.charCodeAt(sp1 + 4) === 32;
    if (!/^\d{3}$/.test(codeText) || status < 100 || status > 699 || !codeEnds) return fail(400, 'Malformed status line', true);
    const res = new SipResponse(status, first.slice(sp1 + 4).trim(), headers);
    const bodyErr = attachBody(res, buf, headEnd + sepLen, stream);
    if (bodyErr) return fail(400, bodyErr, true);
    const err = checkCommon(res);
    if (err) return fail(400, err, true);
    return { ok: true, message: res };
  }

  const line = parseRequestLine(first);
  if (typeof line === 'string') return fail(400, line, false);
  const req = new SipRequest(line.method, line.uri, headers);
  if (line.version !== 'SIP/2.0') return fail(505, 'Version Not Supported', false, req);
  if (headerErr) return fail(400, headerErr, false, req);
  if (headEnd < 0) return fail(400, 'Incomplete message head', false, req);
  const bodyErr = attachBody(req, buf, headEnd + sepLen, stream);
  if (bodyErr) return fail(400, bodyErr, false, req);
  const err = checkCommon(req);
  if (err) return fail(400, err, false, req);
  if (req.cseq.method !== req.method) return fail(400, 'CSeq method does not match request method', false, req);
  // Max-Forwards and Expires are 1*DIGIT (§25): leading zeros are legal, words are not.
  const mf = req.get('max-forwards');
  if (mf !== undefined && parseDigits(mf) < 0) return fail(400, 'Malformed Max-Forwards', false, req);
  const expires = req.get('expires');
  if (expires !== undefined && parseDigits(expires) < 0) return fail(400, 'Malformed Expires', false, req);
  try {
    void req.requestUri;
  } catch (e) {
    if (e instanceof UnsupportedSchemeError) return fail(416, 'Unsupported URI Scheme', false, req);
    if (e instanceof UriError) return fail(400, 'Malformed Request-URI: ' + e.message, false, req);
    throw e;
  }
  return { ok: true, message: req };
}

/** End of the line starting at `s` (before CR LF or LF) and where the next line starts. */
function lineEnd(head: string, s: number): [number, number] {
  const nl = head.indexOf('\n', s);
  if (nl < 0) return [head.length, head.length];
  return [nl > s && head.charCodeAt(nl - 1) === 13 ? nl - 1 : nl, nl + 1];
}

/** What String.prototype.trim removes, for the ASCII range. */
function isTrimmed(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** `head.slice(s, e)` without surrounding whitespace, as `trim()` would give, in one slice. */
function trimmedSlice(head: string, s: number, e: number): string {
  while (s < e && isTrimmed(head.charCodeAt(s))) s++;
  while (e > s && isTrimmed(head.charCodeAt(e - 1))) e--;
  const v = head.slice(s, e);
  // Non-ASCII edges may be Unicode spaces: the rare case trim() decides.
  return s < e && (head.charCodeAt(s) > 127 || head.charCodeAt(e - 1) > 127) ? v.trim() : v;
}

/**
 * Fills `headers` from the header lines of `head` starting at `from`; returns an error reason or
 * undefined. Unfolds continuation lines (§7.3.1). Scans by index: no per-line strings.
 */
function readHeaders(head: string, from: number, headers: RawHeader[], limits: ParseLimits): string | undefined {
  // Bits of the single-instance headers seen so far (§7.3.1): a second one is malformed.
  let seen = 0;
  for (let s = from; s < head.length; ) {
    const [end, next] = lineEnd(head, s);
    if (end > s) {
      // §25 allows CR only in CRLF: a lone one would split the header wherever the value is echoed.
      const cr = head.indexOf('\r', s);
      if (cr >= 0 && cr < end) return 'Malformed header line: bare CR';
      if (isWs(head.charCodeAt(s))) {
        const prev = headers[headers.length - 1];
        if (!prev) return 'Malformed header: continuation without header';
        prev.value = (prev.value + ' ' + trimmedSlice(head, s, end)).trim();
      } else {
        const colon = head.indexOf(':', s);
        if (colon < 0 || colon >= end || colon === s) return 'Malformed header line';
        const name = trimmedSlice(head, s, colon);
        if (!isToken(name)) return 'Malformed header name';
        if (headers.length >= limits.maxHeaders) return 'Too Many Headers';
        const key = headerKey(name);
        const bit = singleInstanceBit(key);
        if ((seen & bit) !== 0) return 'Duplicate ' + canonicalName(name) + ' header';
        seen |= bit;
        headers.push({ name, key, value: trimmedSlice(head, colon + 1, end) });
      }
    }
    s = next;
  }
  return undefined;
}

/** One shared string per common method, rather than a copy per request kept by its transaction. */
const KNOWN_METHODS = new Map<string, string>(SIP_METHODS.map((m) => [m, m]));

function parseRequestLine(line: string): { method: string; uri: string; version: string } | string {
  // Request-Line = Method SP Request-URI SP SIP-Version (§25): one space each. Trailing
  // whitespace is forgiven (Kamailio does too); a doubled space is not.
  let end = line.length;
  while (end > 0 && isWs(line.charCodeAt(end - 1))) end--;
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
  const sp3 = sp2 < 0 ? -1 : line.indexOf(' ', sp2 + 1);
  if (sp1 <= 0 || sp2 <= sp1 + 1 || sp2 + 1 >= end || (sp3 >= 0 && sp3 < end)) return 'Malformed Request-Line';
  let method = line.slice(0, sp1);
  const uri = line.slice(sp1 + 1, sp2);
  let version = line.slice(sp2 + 1, end);
  if (!isToken(method)) return 'Malformed method in Request-Line';
  method = KNOWN_METHODS.get(method) ?? method;
  // Nearly every request says exactly SIP/2.0: only another spelling pays for the case fold and regex.
  if (version !== 'SIP/2.0') {
    version = version.toUpperCase();
    if (!SIP_VERSION.test(version)) return 'Malformed Request-Line';
  }
  return { method, uri, version };
}

/** `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT` (§25), upper-cased already. */
const SIP_VERSION = /^SIP\/\d+\.\d+$/;

function attachBody(msg: SipRequest | SipResponse, buf: Buffer, bodyStart: number, stream: boolean): string | undefined {
  const clText = msg.get('content-length');
  const available = Math.max(0, buf.length - bodyStart);
  if (clText === undefined) {
    // RFC 3261 §18.3: "The Content-Length header field MUST be used with stream oriented transports."
    if (stream) return 'Missing Content-Length header';
    msg.body = buf.subarray(bodyStart);
    return undefined;
  }
  const cl = parseDigits(clText);
  if (cl < 0) return 'Malformed Content-Length';
  // §18.3: a datagram shorter than its Content-Length is malformed (never padded or waited for).
  if (cl > available) return 'Content-Length larger than body';
  // §18.3: bytes past Content-Length in a datagram are discarded.
  msg.body = buf.subarray(bodyStart, bodyStart + cl);
  return undefined;
}

/** The structured headers checkCommon parses, in the order their errors are reported. */
const PARSED_HEADERS: readonly (readonly [string, (msg: SipRequest | SipResponse) => unknown])[] = [
  ['Via', (msg) => msg.via],
  ['From', (msg) => msg.from],
  ['To', (msg) => msg.to],
  ['CSeq', (msg) => msg.cseq],
];

const REQUIRED_HEADERS = [['via', 'Via'], ['from', 'From'], ['to', 'To'], ['call-id', 'Call-ID'], ['cseq', 'CSeq']] as const;

/** The headers every request and response must carry, each parseable. */
function checkCommon(msg: SipRequest | SipResponse): string | undefined {
  for (const [key, name] of REQUIRED_HEADERS) {
    if (msg.get(key) === undefined) return `Missing ${name} header`;
  }
  if (!msg.callId) return 'Empty Call-ID header';
  for (const [label, read] of PARSED_HEADERS) {
    try {
      read(msg);
    } catch (e) {
      return 'Malformed ' + label + ' header: ' + reasonOf(e);
    }
  }
  return undefined;
}

function reasonOf(e: unknown): string {
  if (e instanceof HeaderError || e instanceof UriError) return e.message;
  throw e;
}

/** Best effort read of an oversized request's head, so the 513 can still be addressed. */
function partialRequest(buf: Buffer, start: number, limits: ParseLimits): SipRequest | undefined {
  const [headEnd] = findHeadEnd(buf, start);
  const stop = Math.min(headEnd < 0 ? buf.length : headEnd, start + limits.maxMessageBytes);
  const head = buf.toString('utf8', start, stop);
  const firstEnd = lineEnd(head, 0);
  const line = parseRequestLine(head.slice(0, firstEnd[0]));
  if (typeof line === 'string') return undefined;
  const headers: RawHeader[] = [];
  readHeaders(head, firstEnd[1], headers, limits);
  return new SipRequest(line.method, line.uri, headers);
}

export type FrameEvent = { kind: 'message'; data: Buffer } | { kind: 'ping' } | { kind: 'error'; status: number; reason: string; head: Buffer };

/**
 * Content-Length framing for stream transports (§18.3): handles partial reads, several
 * messages per read and RFC 5626 CRLF keep-alives. After an error the stream cannot be
 * resynchronised; the caller answers and closes the connection.
 */
export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);
  private failed = false;
  /** Length of the message at the head of `buf` once its head is complete but its body is not. */
  private pending: number | undefined;

  constructor(private readonly limits: ParseLimits = DEFAULT_LIMITS) {}

  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): FrameEvent[] {
    if (this.failed) return [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: FrameEvent[] = [];
    for (;;) {
      let s = 0;
      while (s < this.buf.length && (this.buf[s] === 13 || this.buf[s] === 10)) s++;
      if (s > 0) {
        if (s >= 4 && this.buf[0] === 13 && this.buf[1] === 10 && this.buf[2] === 13 && this.buf[3] === 10) out.push({ kind: 'ping' });
        this.buf = this.buf.subarray(s);
      }
      if (this.buf.length === 0) break;
      let total = this.pending;
      if (total === undefined) {
        const [headEnd, sepLen] = findHeadEnd(this.buf);
        if (headEnd < 0) {
          if (this.buf.length > this.limits.maxMessageBytes) return this.error(out, 513, 'Message Too Large');
          break;
        }
        const cl = contentLength(this.buf.toString('latin1', 0, headEnd));
        if (cl === MALFORMED) return this.error(out, 400, 'Malformed Content-Length');
        if (cl === DUPLICATE) return this.error(out, 400, 'Duplicate Content-Length header');
        total = headEnd + sepLen + cl;
        if (total > this.limits.maxMessageBytes) return this.error(out, 513, 'Message Too Large');
      }
      if (this.buf.length < total) {
        // Waiting for the body: the head need not be scanned again on the next chunk.
        this.pending = total;
        break;
      }
      this.pending = undefined;
      out.push({ kind: 'message', data: this.buf.subarray(0, total) });
      this.buf = this.buf.subarray(total);
    }
    return out;
  }

  private error(out: FrameEvent[], status: number, reason: string): FrameEvent[] {
    const [headEnd] = findHeadEnd(this.buf);
    const head = this.buf.subarray(0, headEnd < 0 ? Math.min(this.buf.length, this.limits.maxMessageBytes) : headEnd + 4);
    out.push({ kind: 'error', status, reason, head });
    this.failed = true;
    this.buf = Buffer.alloc(0);
    return out;
  }
}

/**
 * Content-Length from a head, for framing: MALFORMED, or DUPLICATE when given twice (the two
 * may disagree, and then no boundary can be trusted). Absent is framed as 0; parseMessage then
 * refuses the message (§18.3: mandatory on streams) without losing the stream.
 */
function contentLength(head: string): number {
  let found = -1;
  for (let s = 0; ; ) {
    const nl = head.indexOf('\n', s);
    const lineEnd = nl < 0 ? head.length : nl;
    const colon = head.indexOf(':', s);
    if (colon > s && colon < lineEnd && isContentLengthName(head, s, colon)) {
      if (found >= 0) return DUPLICATE;
      found = parseDigits(head, colon + 1, lineEnd > colon && head.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd);
      if (found < 0) return MALFORMED;
    }
    if (nl < 0) return found < 0 ? 0 : found;
    s = nl + 1;
  }
}

/** Whether `head[s, colon)` is "Content-Length" or "l" in any case, around optional whitespace. */
function isContentLengthName(head: string, s: number, colon: number): boolean {
  while (s < colon && isWs(head.charCodeAt(s))) s++;
  while (colon > s && isWs(head.charCodeAt(colon - 1))) colon--;
  const n = colon - s;
  if (n === 1) return (head.charCodeAt(s) | 0x20) === 108;
  if (n !== 14) return false;
  for (let i = 0; i < 14; i++) if ((head.charCodeAt(s + i) | 0x20) !== CONTENT_LENGTH.charCodeAt(i)) return false;
  return true;
}

const CONTENT_LENGTH = 'content-length';
const MALFORMED = -1;
const DUPLICATE = -2;
