/** SIP, SIPS (RFC 3261 §19.1) and tel (RFC 3966) URIs. */
import { formatParams, isScheme, parseParams, type Params } from './grammar.js';

export interface SipUri {
  scheme: 'sip' | 'sips';
  user?: string;
  password?: string;
  /** Host name, IPv4 literal, or IPv6 reference with brackets ("[::1]"). */
  host: string;
  port?: number;
  params: Params;
  headers: Record<string, string>;
}

export interface TelUri {
  scheme: 'tel';
  number: string;
  params: Params;
}

export type Uri = SipUri | TelUri;

export class UriError extends Error {}

/** Parses a URI; throws UriError with a reason suitable for a 400/416 phrase. */
export function parseUri(text: string): Uri {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UriError('Malformed URI');
  // Not a URI at all (`<sip:x>`, `a b:c`) is a 400; a URI of another scheme is a 416.
  if (!isScheme(text, 0, colon)) throw new UriError('Malformed URI scheme');
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'tel') return parseTel(text, colon + 1);
  if (scheme !== 'sip' && scheme !== 'sips') throw new UnsupportedSchemeError(`Unsupported URI scheme ${scheme}`);
  const rest = text.slice(colon + 1);
  const at = rest.indexOf('@');
  let user: string | undefined;
  let password: string | undefined;
  let hostStart = 0;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const pw = userinfo.indexOf(':');
    if (pw >= 0) {
      user = userinfo.slice(0, pw);
      password = userinfo.slice(pw + 1);
    } else {
      user = userinfo;
    }
    if (!user || !isUserText(user, USER_EXTRA)) throw new UriError('Malformed URI user part');
    if (password !== undefined && !isUserText(password, PASSWORD_EXTRA)) throw new UriError('Malformed URI password');
    hostStart = at + 1;
  }
  let i = hostStart;
  let host: string;
  if (rest.charCodeAt(i) === 91 /* [ */) {
    const close = rest.indexOf(']', i);
    if (close < 0) throw new UriError('Malformed IPv6 reference in URI');
    host = rest.slice(i, close + 1);
    i = close + 1;
  } else {
    while (i < rest.length) {
      const c = rest.charCodeAt(i);
      if (c === 58 || c === 59 || c === 63) break;
      if (!isHostChar(c)) throw new UriError('Malformed URI host');
      i++;
    }
    host = rest.slice(hostStart, i);
  }
  if (!host) throw new UriError('URI without host');
  let port: number | undefined;
  if (rest.charCodeAt(i) === 58) {
    const pStart = ++i;
    while (i < rest.length && rest.charCodeAt(i) >= 48 && rest.charCodeAt(i) <= 57) i++;
    if (i === pStart || i - pStart > 5) throw new UriError('Malformed URI port');
    port = Number(rest.slice(pStart, i));
    if (port > 65535) throw new UriError('URI port out of range');
  }
  const q = rest.indexOf('?', i);
  const paramsText = q >= 0 ? rest.slice(i, q) : rest.slice(i);
  const params = parseParams(paramsText, 0);
  if (!params) throw new UriError('Malformed URI parameters');
  const headers: Record<string, string> = {};
  if (q >= 0) {
    for (const pair of rest.slice(q + 1).split('&')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UriError('Malformed URI headers');
      headers[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  const uri: SipUri = { scheme, host, params, headers };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (port !== undefined) uri.port = port;
  return uri;
}

export class UnsupportedSchemeError extends UriError {}

function parseTel(text: string, from: number): TelUri {
  const semi = text.indexOf(';', from);
  const number = semi >= 0 ? text.slice(from, semi) : text.slice(from);
  if (!number) throw new UriError('Malformed tel URI');
  for (let i = 0; i < number.length; i++) {
    const c = number.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46 || c === 40 || c === 41 || c === 42 || c === 35 || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
    if (!ok) throw new UriError('Malformed tel URI number');
  }
  const params = semi >= 0 ? parseParams(text, semi) : {};
  if (!params) throw new UriError('Malformed tel URI parameters');
  return { scheme: 'tel', number, params };
}

/** user-unreserved and password's extra characters (§25), beyond unreserved and escaped. */
const USER_EXTRA = '&=+$,;?/';
const PASSWORD_EXTRA = '&=+$,';
const MARK = "-_.!~*'()";

/** `*( unreserved / escaped / extra )` (§25), as in the user and password of a SIP URI. */
function isUserText(s: string, extra: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) continue;
    if (c === 37 /* % */) {
      if (!isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return false;
      i += 2;
      continue;
    }
    if (c >= 128 || (MARK.indexOf(s[i]!) < 0 && extra.indexOf(s[i]!) < 0)) return false;
  }
  return true;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function isHostChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95;
}

/** The user of a SIP URI or the number of a tel URI (a DN, a dialled number); undefined if none or malformed. */
export function uriUser(uri: Uri | string): string | undefined {
  let parsed: Uri;
  try {
    parsed = typeof uri === 'string' ? parseUri(uri) : uri;
  } catch {
    return undefined;
  }
  return parsed.scheme === 'tel' ? parsed.number : parsed.user;
}

export function formatUri(uri: Uri): string {
  if (uri.scheme === 'tel') return 'tel:' + uri.number + formatParams(uri.params);
  let out = uri.scheme + ':';
  if (uri.user !== undefined) out += uri.user + (uri.password !== undefined ? ':' + uri.password : '') + '@';
  out += uri.host;
  if (uri.port !== undefined) out += ':' + uri.port;
  out += formatParams(uri.params);
  const hs = Object.entries(uri.headers);
  if (hs.length) out += '?' + hs.map(([k, v]) => k + '=' + v).join('&');
  return out;
}

/** Host without IPv6 brackets, for sockets. */
export function socketHost(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}
