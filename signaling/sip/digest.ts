/**
 * HTTP Digest for SIP (RFC 3261 §22, RFC 2617, RFC 7616/8760): answering challenges as a UAC
 * (trunks, registrations) and challenging/verifying as a registrar. MD5 and SHA-256, qop=auth.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isWs, readQuoted } from './grammar.js';
import type { SipRequest, SipResponse } from './message.js';
import { digestHa1 } from '../../common/config/digest-verifier.js';

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

export interface Credentials {
  username: string;
  password: string;
  /** Only answer challenges for this realm (any when absent). */
  realm?: string;
}

export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque?: string;
  algorithm: DigestAlgorithm;
  qop: string[];
  stale: boolean;
}

/** Parses `Digest k=v, k="v"` (auth-param list). Returns null for other schemes or malformed text. */
export function parseAuthParams(value: string): { scheme: string; params: Record<string, string> } | null {
  let i = 0;
  const n = value.length;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  const sStart = i;
  while (i < n && !isWs(value.charCodeAt(i))) i++;
  const scheme = value.slice(sStart, i);
  if (!scheme) return null;
  const params: Record<string, string> = {};
  while (i < n) {
    while (i < n && (isWs(value.charCodeAt(i)) || value.charCodeAt(i) === 44)) i++;
    if (i >= n) break;
    const kStart = i;
    while (i < n && value.charCodeAt(i) !== 61 && !isWs(value.charCodeAt(i))) i++;
    const key = value.slice(kStart, i).toLowerCase();
    while (i < n && isWs(value.charCodeAt(i))) i++;
    if (value.charCodeAt(i) !== 61) return null;
    i++;
    while (i < n && isWs(value.charCodeAt(i))) i++;
    if (value.charCodeAt(i) === 34) {
      const q = readQuoted(value, i);
      if (!q) return null;
      params[key] = q.value;
      i = q.end;
    } else {
      const vStart = i;
      while (i < n && value.charCodeAt(i) !== 44 && !isWs(value.charCodeAt(i))) i++;
      params[key] = value.slice(vStart, i);
    }
  }
  return { scheme, params };
}

const ALGORITHMS: Record<string, DigestAlgorithm> = { md5: 'MD5', 'md5-sess': 'MD5-sess', 'sha-256': 'SHA-256', 'sha-256-sess': 'SHA-256-sess' };

export function parseChallenge(value: string): DigestChallenge | null {
  const p = parseAuthParams(value);
  if (!p || p.scheme.toLowerCase() !== 'digest') return null;
  const { realm, nonce } = p.params;
  if (realm === undefined || !nonce) return null;
  const algorithm = ALGORITHMS[(p.params.algorithm ?? 'MD5').toLowerCase()];
  if (!algorithm) return null;
  const c: DigestChallenge = {
    realm,
    nonce,
    algorithm,
    qop: p.params.qop ? p.params.qop.split(',').map((q) => q.trim().toLowerCase()) : [],
    stale: (p.params.stale ?? '').toLowerCase() === 'true',
  };
  if (p.params.opaque !== undefined) c.opaque = p.params.opaque;
  return c;
}

function hash(alg: DigestAlgorithm, s: string): string {
  return createHash(alg.startsWith('SHA-256') ? 'sha256' : 'md5').update(s).digest('hex');
}


export function digestResponse(a: {
  algorithm: DigestAlgorithm;
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  cnonce?: string;
  nc?: string;
  qop?: string;
}): string {
  return responseFromHa1({ ...a, ha1: hash(a.algorithm, `${a.username}:${a.realm}:${a.password}`) });
}

function responseFromHa1(a: { algorithm: DigestAlgorithm; ha1: string; method: string; uri: string; nonce: string; cnonce?: string; nc?: string; qop?: string }): string {
  const ha1 = a.algorithm.endsWith('-sess') ? hash(a.algorithm, `${a.ha1}:${a.nonce}:${a.cnonce ?? ''}`) : a.ha1;
  const ha2 = hash(a.algorithm, `${a.method}:${a.uri}`);
  return a.qop
    ? hash(a.algorithm, `${ha1}:${a.nonce}:${a.nc ?? ''}:${a.cnonce ?? ''}:${a.qop}:${ha2}`)
    : hash(a.algorithm, `${ha1}:${a.nonce}:${ha2}`);
}

/**
 * The Authorization/Proxy-Authorization header answering a 401/407, or null if no challenge
 * can be answered with these credentials. SHA-256 is preferred when offered alongside MD5.
 */
export function authorize(req: SipRequest, res: SipResponse, creds: Credentials): { name: string; value: string } | null {
  const proxy = res.status === 407;
  const values = res.getAll(proxy ? 'proxy-authenticate' : 'www-authenticate');
  const challenges = values.map(parseChallenge).filter((c): c is DigestChallenge => c !== null && (!creds.realm || c.realm === creds.realm));
  if (challenges.length === 0) return null;
  const c = challenges.find((x) => x.algorithm.startsWith('SHA-256')) ?? challenges[0]!;
  const qop = c.qop.includes('auth') ? 'auth' : undefined;
  const cnonce = randomBytes(8).toString('hex');
  const nc = '00000001';
  const response = digestResponse({ algorithm: c.algorithm, username: creds.username, realm: c.realm, password: creds.password, method: req.method, uri: req.uri, nonce: c.nonce, cnonce, nc, ...(qop ? { qop } : {}) });
  let value = `Digest username="${creds.username}", realm="${c.realm}", nonce="${c.nonce}", uri="${req.uri}", response="${response}", algorithm=${c.algorithm}`;
  if (qop) value += `, qop=${qop}, nc=${nc}, cnonce="${cnonce}"`;
  if (c.opaque !== undefined) value += `, opaque="${c.opaque}"`;
  return { name: proxy ? 'Proxy-Authorization' : 'Authorization', value };
}

export interface ChallengerOptions {
  realm: string;
  /**
   * Offered algorithms, in order (default MD5 alone): sipp answers only the first challenge and only
   * with MD5, and baresip's libre refuses a 401 that offers any other algorithm at all; RFC 8760
   * clients pick SHA-256 wherever it is offered, so a DN whose phones can opts in to it.
   */
  algorithms?: DigestAlgorithm[];
  /** Nonce lifetime; older nonces are answered with stale=true (default 5 min). */
  nonceTtlMs?: number;
  /** HMAC key for stateless nonces (random when absent: nonces then die with the process). */
  secret?: Buffer;
  /** Nonces whose nonce-counts are remembered for replay protection (default 10,000). */
  maxTrackedNonces?: number;
  now?: () => number;
}

/** What the server knows of a user: the password, or only its HA1 per algorithm (a verifier). */
export type DigestSecret = string | { ha1: { md5?: string | undefined; sha256?: string | undefined } };

export type VerifyResult = { ok: true; username: string } | { ok: false; stale: boolean; reason: string };

/**
 * Server side. Nonces are self-validating (timestamp + HMAC), so any replica holding the secret can
 * verify them without shared state. Replays are refused: per nonce, the highest nonce-count
 * accepted is remembered (RFC 7616 §3.4: nc must grow), in a table of bounded size; a nonce
 * pushed out of the table (or issued before one that was) is answered stale, so the client takes a
 * fresh nonce rather than replaying an old one.
 */
export class DigestChallenger {
  private readonly secret: Buffer;
  private readonly algorithms: DigestAlgorithm[];
  private readonly ttl: number;
  private readonly now: () => number;
  private readonly maxTracked: number;
  /** nonce → highest nc accepted; insertion order is the order of first use. */
  private readonly counts = new Map<string, number>();
  /** Nonces issued at or before this time and not in `counts` are no longer tracked: stale. */
  private forgottenUpTo = -1;

  constructor(private readonly opts: ChallengerOptions) {
    this.secret = opts.secret ?? randomBytes(32);
    this.algorithms = opts.algorithms ?? ['MD5'];
    this.ttl = opts.nonceTtlMs ?? 300_000;
    this.now = opts.now ?? Date.now;
    this.maxTracked = opts.maxTrackedNonces ?? 10_000;
  }

  get realm(): string {
    return this.opts.realm;
  }

  private nonce(): string {
    const body = this.now().toString(16) + '.' + randomBytes(8).toString('hex');
    const mac = createHmac('sha256', this.secret).update(body).digest('hex').slice(0, 32);
    return body + '.' + mac;
  }

  private nonceState(nonce: string): { state: 'ok' | 'stale'; issued: number } | { state: 'bad' } {
    const parts = nonce.split('.');
    if (parts.length !== 3) return { state: 'bad' };
    const body = parts[0] + '.' + parts[1];
    const mac = Buffer.from(createHmac('sha256', this.secret).update(body).digest('hex').slice(0, 32));
    const given = Buffer.from(parts[2]!);
    if (given.length !== mac.length || !timingSafeEqual(given, mac)) return { state: 'bad' };
    const issued = parseInt(parts[0]!, 16);
    return { state: this.now() - issued > this.ttl ? 'stale' : 'ok', issued };
  }

  /** Header values for a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate), one per algorithm, in `algorithms` order. */
  challenge(opts: { stale?: boolean; algorithms?: readonly DigestAlgorithm[] } = {}): string[] {
    const nonce = this.nonce();
    return (opts.algorithms ?? this.algorithms).map((alg) => `Digest realm="${this.opts.realm}", nonce="${nonce}", algorithm=${alg}, qop="auth"${opts.stale ? ', stale=true' : ''}`);
  }

  /**
   * Checks the request's Authorization (or Proxy-Authorization) against what is known of the user.
   * qop=auth is required: without a nonce-count a replay could not be told apart.
   */
  async verify(
    req: SipRequest,
    secretOf: (username: string, realm: string) => DigestSecret | undefined | Promise<DigestSecret | undefined>,
    proxy = false,
    algorithms: readonly DigestAlgorithm[] = this.algorithms,
  ): Promise<VerifyResult> {
    const values = req.getAll(proxy ? 'proxy-authorization' : 'authorization');
    for (const v of values) {
      const p = parseAuthParams(v);
      if (!p || p.scheme.toLowerCase() !== 'digest' || p.params.realm !== this.opts.realm) continue;
      const { username, nonce, uri, response, cnonce, nc, qop } = p.params;
      const algorithm = ALGORITHMS[(p.params.algorithm ?? 'MD5').toLowerCase()];
      if (!username || !nonce || !uri || !response || !algorithm || !algorithms.includes(algorithm)) {
        return { ok: false, stale: false, reason: 'incomplete credentials' };
      }
      if (qop?.toLowerCase() !== 'auth' || !cnonce || !nc || !/^[0-9a-fA-F]{8}$/.test(nc)) return { ok: false, stale: false, reason: 'qop=auth with nc and cnonce required' };
      const nonceState = this.nonceState(nonce);
      if (nonceState.state === 'bad') return { ok: false, stale: false, reason: 'unknown nonce' };
      const secret = await secretOf(username, this.opts.realm);
      const ha1 = secret === undefined ? undefined : ha1For(secret, algorithm, username, this.opts.realm);
      if (ha1 === undefined) return { ok: false, stale: false, reason: 'unknown user' };
      const expected = responseFromHa1({ algorithm, ha1, method: req.method, uri, nonce, cnonce, nc, qop: 'auth' });
      const a = Buffer.from(expected);
      const b = Buffer.from(response.toLowerCase());
      if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, stale: false, reason: 'wrong password' };
      if (nonceState.state === 'stale') return { ok: false, stale: true, reason: 'stale nonce' };
      return this.countOnce(nonce, nonceState.issued, parseInt(nc, 16), username);
    }
    return { ok: false, stale: false, reason: 'no credentials' };
  }

  /** Accepts each (nonce, nc) once, with nc growing; bounded memory. */
  private countOnce(nonce: string, issued: number, nc: number, username: string): VerifyResult {
    const last = this.counts.get(nonce);
    if (last === undefined && issued <= this.forgottenUpTo) return { ok: false, stale: true, reason: 'nonce no longer tracked' };
    if (last !== undefined && nc <= last) return { ok: false, stale: false, reason: 'replayed nonce-count' };
    this.counts.delete(nonce);
    this.counts.set(nonce, nc);
    this.forget();
    return { ok: true, username };
  }

  private forget(): void {
    const oldestLive = this.now() - this.ttl;
    for (const nonce of this.counts.keys()) {
      const issued = parseInt(nonce.slice(0, nonce.indexOf('.')), 16);
      if (this.counts.size <= this.maxTracked && issued >= oldestLive) break;
      this.counts.delete(nonce);
      // An expired nonce is stale anyway; only a live one pushed out must be refused from now on.
      if (issued >= oldestLive) this.forgottenUpTo = Math.max(this.forgottenUpTo, issued);
    }
  }
}

function ha1For(secret: DigestSecret, algorithm: DigestAlgorithm, username: string, realm: string): string | undefined {
  const sha = algorithm.startsWith('SHA-256');
  if (typeof secret === 'string') return digestHa1(sha ? 'SHA-256' : 'MD5', username, realm, secret);
  return (sha ? secret.ha1.sha256 : secret.ha1.md5)?.toLowerCase();
}
