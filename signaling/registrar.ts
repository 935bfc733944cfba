/**
 * Registrar bindings (RFC 3261 §10.3): which contacts each DN is reachable at, until when.
 * No I/O: the SIP adapter feeds REGISTER requests in and persists snapshots so bindings survive
 * a signaling restart.
 */

export type FlowTransport = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Transports whose flows only the phone can open (browsers): a binding dies with its connection. */
export function peerOpenedOnly(transport: FlowTransport): boolean {
  return transport === 'ws' || transport === 'wss';
}

export interface Binding {
  /** The Contact URI, as the phone sent it. */
  contact: string;
  /**
   * Where the REGISTER really came from (RFC 3581), used to reach phones behind NAT. Over ws/wss
   * it names the browser's connection, the only way to reach it (RFC 7118 §5).
   */
  source: { transport: FlowTransport; host: string; port: number };
  callId: string;
  cseq: number;
  /** Epoch ms. */
  expiresAt: number;
  /**
   * The REGISTER's Path (RFC 3327), nearest proxy first: requests to this contact are routed
   * through it (the SIP edge, which reaches the phone over the connection it registered on).
   */
  path?: string[];
}

export interface RegisterInput {
  dn: string;
  callId: string;
  cseq: number;
  source: Binding['source'];
  path?: string[];
  /** '*' removes every binding (requires expires 0). */
  contacts: { uri: string; expires: number | undefined }[] | '*';
  /** The Expires header value, if any. */
  expires: number | undefined;
  now: number;
}

export type RegisterResult =
  | { status: 200; bindings: Binding[] }
  | { status: 400; reason: string }
  | { status: 423; reason: string; minExpires: number };

export interface RegistrarLimits {
  defaultExpires: number;
  minExpires: number;
  maxExpires: number;
  maxContactsPerDN: number;
}

export const DefaultRegistrarLimits: RegistrarLimits = { defaultExpires: 3600, minExpires: 30, maxExpires: 7200, maxContactsPerDN: 10 };

export class Registrar {
  private readonly bindings = new Map<string, Binding[]>();

  constructor(private readonly limits: RegistrarLimits = DefaultRegistrarLimits) {}

  register(input: RegisterInput): RegisterResult {
    const current = this.live(input.dn, input.now);
    if (input.contacts === '*') {
      if (input.expires !== 0) return { status: 400, reason: 'Contact * needs Expires: 0' };
      const stale = current.find((b) => b.callId === input.callId && b.cseq >= input.cseq);
      if (stale) return { status: 400, reason: 'CSeq not higher than the last REGISTER of this Call-ID' };
      this.bindings.delete(input.dn);
      return { status: 200, bindings: [] };
    }
    const next = [...current];
    for (const c of input.contacts) {
      const expires = c.expires ?? input.expires ?? this.limits.defaultExpires;
      if (expires > 0 && expires < this.limits.minExpires) {
        return { status: 423, reason: 'Interval Too Brief', minExpires: this.limits.minExpires };
      }
      const i = next.findIndex((b) => b.contact === c.uri);
      const existing = i >= 0 ? next[i] : undefined;
      if (existing && existing.callId === input.callId && existing.cseq >= input.cseq) {
        return { status: 400, reason: 'CSeq not higher than the last REGISTER of this Call-ID' };
      }
      if (i >= 0) next.splice(i, 1);
      if (expires === 0) continue;
      next.push({
        contact: c.uri,
        source: input.source,
        callId: input.callId,
        cseq: input.cseq,
        expiresAt: input.now + Math.min(expires, this.limits.maxExpires) * 1000,
        ...(input.path && input.path.length > 0 ? { path: input.path } : {}),
      });
    }
    while (next.length > this.limits.maxContactsPerDN) next.shift();
    if (next.length === 0) this.bindings.delete(input.dn);
    else this.bindings.set(input.dn, next);
    return { status: 200, bindings: next };
  }

  /** Live bindings, most recent last. */
  lookup(dn: string, now: number): Binding[] {
    return this.live(dn, now);
  }

  registeredCount(now: number): number {
    let n = 0;
    for (const dn of this.bindings.keys()) n += this.live(dn, now).length;
    return n;
  }

  /**
   * The connection `flow` names closed: the bindings made over it are removed (RFC 5626 §5.3: a
   * failed flow is not used again). Returns the DNs whose bindings changed.
   */
  dropFlow(flow: Binding['source']): string[] {
    const changed: string[] = [];
    for (const [dn, all] of this.bindings) {
      const left = all.filter((b) => !(b.source.transport === flow.transport && b.source.host === flow.host && b.source.port === flow.port));
      if (left.length === all.length) continue;
      changed.push(dn);
      if (left.length === 0) this.bindings.delete(dn);
      else this.bindings.set(dn, left);
    }
    return changed;
  }

  snapshot(dn: string): Binding[] {
    return [...(this.bindings.get(dn) ?? [])];
  }

  restore(dn: string, bindings: Binding[], now: number): void {
    const live = bindings.filter((b) => b.expiresAt > now);
    if (live.length > 0) this.bindings.set(dn, live);
    else this.bindings.delete(dn);
  }

  private live(dn: string, now: number): Binding[] {
    const all = this.bindings.get(dn);
    if (!all) return [];
    const live = all.filter((b) => b.expiresAt > now);
    if (live.length !== all.length) {
      if (live.length === 0) this.bindings.delete(dn);
      else this.bindings.set(dn, live);
    }
    return live;
  }
}
