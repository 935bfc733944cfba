import { randomFillSync } from 'node:crypto';
import type { SipMessage } from './message.js';
import type { BodyOptions, HeaderInit } from './types.js';

// Tags, branches and Call-IDs must be unguessable (§8.1.1.3, §19.3); a pooled CSPRNG keeps that cheap.
const pool = Buffer.alloc(4096);
let poolPos = pool.length;

/** Hex token from `bytes` random bytes of a crypto-random pool. */
export function randomToken(bytes = 8): string {
  if (poolPos + bytes > pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const s = pool.toString('hex', poolPos, poolPos + bytes);
  poolPos += bytes;
  return s;
}

export const BRANCH_COOKIE = 'z9hG4bK';

export function newBranch(): string {
  return BRANCH_COOKIE + randomToken(10);
}

/** A From/To tag (§19.3). */
export function newTag(): string {
  return randomToken(6);
}

/** Header init as [name, value] pairs, a multi-valued record entry giving one pair per value. */
export function toPairs(headers: HeaderInit | undefined): [string, string][] {
  if (!headers) return [];
  if (Array.isArray(headers)) return headers;
  return Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x): [string, string] => [k, x]) : [[k, v] as [string, string]]));
}

export function applyHeaders(msg: SipMessage, headers: HeaderInit | undefined): void {
  if (!headers) return;
  const pairs = toPairs(headers);
  const replaced = new Set<string>();
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    // A caller-given header replaces the stack's default of the same name, but repeats of it accumulate.
    if (!replaced.has(lower)) {
      msg.remove(name);
      replaced.add(lower);
    }
    msg.append(name, value);
  }
}

export function applyBody(msg: SipMessage, opts: BodyOptions): void {
  if (opts.body === undefined) return;
  msg.body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
  if (msg.body.length > 0 && !msg.has('content-type')) msg.set('Content-Type', opts.contentType ?? 'application/sdp');
}

/** `<uri>` from a URI or name-addr text. */
export function asNameAddr(text: string): string {
  return text.includes('<') ? text : '<' + text + '>';
}
