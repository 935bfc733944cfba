/**
 * A per-source request rate limiter in front of the SIP stack, after Kamailio's pike module
 * (https://www.kamailio.org/docs/modules/stable/modules/pike.html): a source IP that sends more
 * than `requestsPerWindow` requests within `windowMs` is blocked for `banMs`; while blocked,
 * everything it sends is refused before it is parsed.
 *
 * Memory is fixed at construction: a set-associative table of `tableSize` sources (typed arrays
 * plus one array of keys), never a Map that grows with the sources seen. A new source takes a free
 * way of its set, else one whose window has passed, else the least recently started unbanned
 * window; a set full of banned sources evicts the ban that ends first. A flood of spoofed sources
 * can so push a banned source out early, but cannot grow the table.
 */
import net from 'node:net';
import { addCidr, parseCidr } from '../../common/config/cidr.js';

export type RateLimitAction = 'drop' | 'reject';

export interface RateLimitOptions {
  requestsPerWindow: number;
  windowMs: number;
  banMs: number;
  /** What a blocked source gets: nothing (as pike) or 503 with Retry-After. */
  action: RateLimitAction;
  /** CIDRs never limited (trunks, SBCs in front of us). */
  exemptSources: readonly string[];
  /** Sources tracked at once; rounded up to a multiple of the set size. */
  tableSize: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = {
  requestsPerWindow: 200,
  windowMs: 2000,
  banMs: 60_000,
  action: 'drop',
  exemptSources: [],
  tableSize: 16_384,
};

/** The verdict on one message: let it through, or the source is blocked for `retryAfterMs` more. */
export type Admission = { blocked: false } | { blocked: true; retryAfterMs: number; banStarted: boolean };

const PASS: Admission = { blocked: false };
const WAYS = 4;

export class SourceRateLimiter {
  private readonly sets: number;
  private readonly keys: (string | undefined)[];
  private readonly windowStart: Float64Array;
  private readonly count: Uint32Array;
  private readonly bannedUntil: Float64Array;
  private readonly exempt: net.BlockList;
  private readonly exemptAny: boolean;
  /** Requests refused because their source was blocked. */
  dropped = 0;

  constructor(private readonly opts: RateLimitOptions) {
    this.sets = Math.max(1, Math.ceil(opts.tableSize / WAYS));
    const size = this.sets * WAYS;
    this.keys = new Array<string | undefined>(size).fill(undefined);
    this.windowStart = new Float64Array(size);
    this.count = new Uint32Array(size);
    this.bannedUntil = new Float64Array(size);
    this.exempt = new net.BlockList();
    for (const text of opts.exemptSources) {
      // Files are checked when loaded; a range that still does not parse exempts nobody.
      const cidr = parseCidr(text);
      if (cidr) addCidr(this.exempt, cidr);
    }
    this.exemptAny = opts.exemptSources.length > 0;
  }

  /** Slots in the table: what bounds its memory. */
  get capacity(): number {
    return this.keys.length;
  }

  /** Sources tracked now (at most `capacity`). */
  tracked(): number {
    let n = 0;
    for (const k of this.keys) if (k !== undefined) n++;
    return n;
  }

  /** Sources blocked at `now`; read at scrape time. */
  blockedSources(now: number): number {
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] !== undefined && this.bannedUntil[i]! > now) n++;
    return n;
  }

  /**
   * One message from `host`. `isRequest` counts it towards the rate; a response is only refused
   * when its source is already blocked (responses answer our own requests, so we pace them).
   */
  admit(host: string, isRequest: boolean, now: number): Admission {
    if (this.exemptAny && this.isExempt(host)) return PASS;
    const slot = this.slotOf(host, now);
    if (this.bannedUntil[slot]! > now) {
      this.dropped++;
      return { blocked: true, retryAfterMs: this.bannedUntil[slot]! - now, banStarted: false };
    }
    if (!isRequest) return PASS;
    if (now - this.windowStart[slot]! >= this.opts.windowMs) {
      this.windowStart[slot] = now;
      this.count[slot] = 0;
    }
    const n = ++this.count[slot]!;
    if (n <= this.opts.requestsPerWindow) return PASS;
    this.bannedUntil[slot] = now + this.opts.banMs;
    this.dropped++;
    return { blocked: true, retryAfterMs: this.opts.banMs, banStarted: true };
  }

  private isExempt(host: string): boolean {
    return this.exempt.check(host, net.isIPv6(host) ? 'ipv6' : 'ipv4');
  }

  /** The slot of `host`: its own, or one taken for it (see the file comment for which). */
  private slotOf(host: string, now: number): number {
    const base = (fnv1a(host) % this.sets) * WAYS;
    let victim = -1;
    let victimScore = Infinity;
    for (let i = base; i < base + WAYS; i++) {
      const key = this.keys[i];
      if (key === host) return i;
      // Lower is evicted first: free, then idle, then oldest unbanned window, then the ban ending first.
      let score: number;
      if (key === undefined) score = -2;
      else if (this.bannedUntil[i]! <= now && now - this.windowStart[i]! >= this.opts.windowMs) score = -1;
      else if (this.bannedUntil[i]! <= now) score = this.windowStart[i]!;
      else score = Number.MAX_SAFE_INTEGER / 2 + this.bannedUntil[i]!;
      if (score < victimScore) {
        victimScore = score;
        victim = i;
      }
    }
    this.keys[victim] = host;
    this.windowStart[victim] = now;
    this.count[victim] = 0;
    this.bannedUntil[victim] = 0;
    return victim;
  }
}

/** FNV-1a over the address text: a few ns for an IPv4 address, no allocation. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
