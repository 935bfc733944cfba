/**
 * Small RFC 3261 §25 grammar helpers shared by the parser and the header accessors.
 * Hand-written scanners (no per-byte regexes): header values are short but parsed on every message.
 */

/** Compact header forms (RFC 3261 §7.3.3, RFC 3515, RFC 3841, RFC 4028, RFC 6665). */
const COMPACT: Record<string, string> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  r: 'refer-to',
  b: 'referred-by',
  u: 'allow-events',
  a: 'accept-contact',
  j: 'reject-contact',
  d: 'request-disposition',
  x: 'session-expires',
};

/** The methods of the IANA SIP method registry that a peer of ours may send; anything else is `extension-method`. */
export const SIP_METHODS = ['ACK', 'BYE', 'CANCEL', 'INFO', 'INVITE', 'MESSAGE', 'NOTIFY', 'OPTIONS', 'PRACK', 'PUBLISH', 'REFER', 'REGISTER', 'SUBSCRIBE', 'UPDATE'] as const;

/** Lower-case long form: the key every header is looked up by. */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.length === 1 ? (COMPACT[lower] ?? lower) : lower;
}

/**
 * Headers whose values may be combined with commas (§7.3.1). Authorization-style headers are not:
 * their parameters contain commas.
 */
const LIST_HEADERS = new Set([
  'via', 'route', 'record-route', 'contact', 'allow', 'supported', 'require', 'proxy-require',
  'unsupported', 'accept', 'accept-encoding', 'accept-language', 'allow-events', 'content-encoding',
  'in-reply-to', 'path', 'service-route', 'p-asserted-identity', 'reason', 'security-client',
  'security-server', 'security-verify',
]);

export function isListHeader(key: string): boolean {
  return LIST_HEADERS.has(key);
}

const TOKEN_CHARS = (() => {
  const t = new Uint8Array(128);
  const extra = "-.!%*_+`'~";
  for (let c = 0; c < 128; c++) {
    const ch = String.fromCharCode(c);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || extra.includes(ch)) t[c] = 1;
  }
  return t;
})();

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN_CHARS[c] !== 1) return false;
  }
  return true;
}

/** Saturation point of parseDigits: every range a caller checks (CSeq < 2^31, sizes) lies below it. */
export const DIGITS_CAP = 2 ** 32;

/**
 * `1*DIGIT` (RFC 3261 §25: CSeq, Max-Forwards, Content-Length, Expires) between optional
 * whitespace: its value, or -1 when the text is not digits. The grammar bounds the value, not
 * the number of digits, so leading zeros are legal ("0001" is 1); values saturate at DIGITS_CAP.
 */
export function parseDigits(s: string, from = 0, to = s.length): number {
  while (from < to && isWs(s.charCodeAt(from))) from++;
  while (to > from && isWs(s.charCodeAt(to - 1))) to--;
  if (from === to) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    value = Math.min(DIGITS_CAP, value * 10 + (c - 48));
  }
  return value;
}

/**
 * Headers that are not comma-separated lists (RFC 3261 §7.3.1, §20; RFC 6665 for Event and
 * Subscription-State), each with a bit: a message carrying one of them twice is malformed.
 */
const SINGLE_INSTANCE = new Map<string, number>(
  ['call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length', 'content-type', 'expires', 'min-expires', 'event', 'subscription-state'].map((k, i) => [k, 1 << i]),
);

/** The bit of a single-instance header key (see SINGLE_INSTANCE), 0 for the others. */
export function singleInstanceBit(key: string): number {
  return SINGLE_INSTANCE.get(key) ?? 0;
}

/** `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (§25) over `s[from, to)`. */
export function isScheme(s: string, from: number, to: number): boolean {
  if (from >= to || !isAlpha(s.charCodeAt(from))) return false;
  for (let i = from + 1; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!isAlpha(c) && !(c >= 48 && c <= 57) && c !== 43 && c !== 45 && c !== 46) return false;
  }
  return true;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Splits a list header value on commas outside quoted strings and <...>. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 92 /* \ */) i++;
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60) inAngle = true;
    else if (c === 62) inAngle = false;
    else if (c === 44 && !inAngle) {
      const part = value.slice(start, i).trim();
      if (part) out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}

/** Header/URI parameters: `;a=b;c` -> {a: 'b', c: null}. Names are lower-cased (they are case-insensitive). */
export type Params = Record<string, string | null>;

/**
 * Parses `;name[=value]` pairs from `s` starting at `from` (which points at the first ';' or is past the end).
 * Quoted values keep their quotes stripped and escapes resolved. Returns null when the text is not parameters.
 */
export function parseParams(s: string, from: number, sep = 59 /* ; */): Params | null {
  const params: Params = {};
  let i = from;
  const n = s.length;
  while (i < n) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n) break;
    if (s.charCodeAt(i) !== sep) return null;
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const nameStart = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === sep || c === 61 /* = */ || isWs(c)) break;
      i++;
    }
    const name = s.slice(nameStart, i).toLowerCase();
    if (!name) return null;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) === 61) {
      i++;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (i < n && s.charCodeAt(i) === 34) {
        const q = readQuoted(s, i);
        if (!q) return null;
        setParam(params, name, q.value);
        i = q.end;
      } else {
        const vStart = i;
        while (i < n && s.charCodeAt(i) !== sep && !isWs(s.charCodeAt(i))) i++;
        setParam(params, name, s.slice(vStart, i));
      }
    } else {
      setParam(params, name, null);
    }
  }
  return params;
}

/**
 * Named stores for the parameters nearly every message carries: a computed key makes V8 look the
 * name up in its string table on each store, which showed in the profile.
 */
function setParam(params: Params, name: string, value: string | null): void {
  switch (name) {
    case 'tag':
      params.tag = value;
      return;
    case 'branch':
      params.branch = value;
      return;
    case 'rport':
      params.rport = value;
      return;
    case 'received':
      params.received = value;
      return;
    case 'transport':
      params.transport = value;
      return;
    case 'lr':
      params.lr = value;
      return;
    default:
      params[name] = value;
  }
}

export function isWs(c: number): boolean {
  return c === 32 || c === 9;
}

/** Reads a quoted-string starting at `start` (the opening quote). Returns the unescaped value and the index after the closing quote. */
export function readQuoted(s: string, start: number): { value: string; end: number } | null {
  let out = '';
  let segStart = start + 1;
  for (let i = start + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92) {
      out += s.slice(segStart, i);
      if (i + 1 >= s.length) return null;
      out += s[i + 1];
      i++;
      segStart = i + 1;
    } else if (c === 34) {
      return { value: out + s.slice(segStart, i), end: i + 1 };
    }
  }
  return null;
}

export function quote(s: string): string {
  return '"' + s.replace(/["\\]/g, '\\$&') + '"';
}

export function formatParams(params: Params): string {
  let out = '';
  for (const [k, v] of Object.entries(params)) {
    if (v === null) out += ';' + k;
    else out += ';' + k + '=' + (needsQuote(v) ? quote(v) : v);
  }
  return out;
}

function needsQuote(v: string): boolean {
  if (v === '') return true;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    // ':' '[' ']' appear in IPv6 received= values and are legal in those tokens.
    if (c < 128 && TOKEN_CHARS[c] !== 1 && c !== 58 && c !== 91 && c !== 93) return true;
  }
  return false;
}
