/**
 * Digest authentication of our phones (RFC 3261 §22): REGISTER is challenged with 401, INVITE and
 * SUBSCRIBE with 407. A DN without credentials is refused, unless its SipDN says
 * `sip-allow-unauthenticated-insecure: true`.
 */
import type { DnDirectory } from './dn-directory.js';
import { DigestChallenger, type DigestSecret, type SipRequest } from './sip/index.js';

export type AuthVerdict =
  | { ok: true }
  /** Answer the request with `status` (401/407 with `headers` carrying the challenge, or 403). */
  | { ok: false; status: 401 | 403 | 407; reason: string; headers?: Record<string, string[]> };

export interface DnAuthOptions {
  directory: DnDirectory;
  /** The digest realm: the site's location. */
  realm: string;
  /** What is known of a DN's password (its HA1 verifiers, or the password read from a Secret). */
  secretOf: (dn: string) => DigestSecret | undefined;
  now?: () => number;
}

export class DnAuthenticator {
  private readonly challenger: DigestChallenger;

  constructor(private readonly o: DnAuthOptions) {
    this.challenger = new DigestChallenger({ realm: o.realm, ...(o.now ? { now: o.now } : {}) });
  }

  /** Whether `msg` proves it comes from DN `dn`: 401 challenges for REGISTER (`proxy` false), 407 elsewhere. */
  async check(msg: SipRequest, dn: string, proxy: boolean): Promise<AuthVerdict> {
    const config = this.o.directory.dn(dn);
    if (config?.type !== 'Extension' && config?.type !== 'ACDPosition') return { ok: false, status: 403, reason: `DN ${dn} is not a phone of this site` };
    if (config.options['sip-allow-unauthenticated-insecure'] === true) return { ok: true };
    const secret = this.o.secretOf(dn);
    if (secret === undefined) return { ok: false, status: 403, reason: `DN ${dn} has no credentials configured (SipDN options.password)` };
    const algorithms = config.options['sip-digest-algorithms'];
    const verdict = await this.challenger.verify(msg, (username) => (username === dn ? secret : undefined), proxy, algorithms);
    if (verdict.ok) return { ok: true };
    const challenge = this.challenger.challenge({ stale: verdict.stale, ...(algorithms ? { algorithms } : {}) });
    return proxy
      ? { ok: false, status: 407, reason: 'Proxy Authentication Required', headers: { 'Proxy-Authenticate': challenge } }
      : { ok: false, status: 401, reason: 'Unauthorized', headers: { 'WWW-Authenticate': challenge } };
  }
}
