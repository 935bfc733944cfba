import type net from 'node:net';
import { socketHost } from '../uri.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TransportProtocol } from './transport.js';

/** Caps and deadlines of accepted TCP/TLS/WebSocket connections (issue 15: a stranger must not hold them all). */
export interface ConnectionLimits {
  /** Accepted connections open at once, all sources together (default 10,000). */
  max: number;
  /** Accepted connections open at once from one address (default 500: a NATed office shares one). */
  maxPerSource: number;
  /**
   * A message must arrive whole within this time of its first byte, and a new connection must
   * complete its TLS handshake and first message within it (default 5 s). Bytes trickling in do not
   * extend it, unlike an idle timer.
   */
  headTimeoutMs: number;
  /** A connection is closed after this long without a complete message either way (default 10 min). */
  idleTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { max: 10_000, maxPerSource: 500, headTimeoutMs: 5_000, idleTimeoutMs: 600_000 };

export type RefusalReason = 'max' | 'max-per-source';
export type TimeoutPhase = 'handshake' | 'head' | 'idle';

/** What a stream transport reports; counts are folded in at scrape time. */
export interface ConnectionGauge {
  readonly protocol: TransportProtocol;
  readonly connectionCount: number;
}

/** huddle_sip_connections and the counters of connections refused or closed by a deadline. */
export class ConnectionMetrics {
  private readonly transports: ConnectionGauge[] = [];
  private readonly refusedCounter: Counter<'transport' | 'reason'>;
  private readonly timedOutCounter: Counter<'transport' | 'phase'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const transports = this.transports;
    new Gauge({
      name: 'huddle_sip_connections',
      help: 'Open SIP connections (TCP, TLS, WebSocket) by transport',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const t of transports) this.set({ transport: t.protocol }, t.connectionCount);
      },
    });
    this.refusedCounter = new Counter({
      name: 'huddle_sip_connections_refused_total',
      help: 'Accepted SIP connections closed at once because a cap was reached (max, max-per-source)',
      labelNames: ['transport', 'reason'],
      registers,
    });
    this.timedOutCounter = new Counter({
      name: 'huddle_sip_connections_timed_out_total',
      help: 'SIP connections closed by a deadline: TLS handshake, message head, idle',
      labelNames: ['transport', 'phase'],
      registers,
    });
  }

  track(transport: ConnectionGauge): void {
    this.transports.push(transport);
  }

  refused(transport: TransportProtocol, reason: RefusalReason): void {
    this.refusedCounter.inc({ transport, reason });
  }

  timedOut(transport: TransportProtocol, phase: TimeoutPhase): void {
    this.timedOutCounter.inc({ transport, phase });
  }
}

/**
 * The caps on accepted sockets, in total and per source address, that every stream transport
 * (TCP, TLS, WebSocket) applies before it reads a byte.
 */
export class AcceptedConnections {
  private open = 0;
  private readonly bySource = new Map<string, number>();

  constructor(
    /** Read when a socket is refused (a subclass's protocol field is set after its base constructor ran). */
    private readonly transport: { readonly protocol: TransportProtocol },
    private readonly limits: ConnectionLimits,
    private readonly metrics: ConnectionMetrics | undefined,
  ) {}

  /** Counts `raw` until it closes; false (and the socket reset) when a cap is reached. */
  admit(raw: net.Socket): boolean {
    const source = raw.remoteAddress ?? '';
    const fromSource = this.bySource.get(source) ?? 0;
    const refusal = this.open >= this.limits.max ? 'max' : fromSource >= this.limits.maxPerSource ? 'max-per-source' : undefined;
    if (refusal) {
      this.metrics?.refused(this.transport.protocol, refusal);
      // A reset, not a FIN: the refused socket leaves no TIME_WAIT behind on our side.
      raw.resetAndDestroy();
      return false;
    }
    this.open++;
    this.bySource.set(source, fromSource + 1);
    raw.once('close', () => {
      this.open--;
      const left = (this.bySource.get(source) ?? 1) - 1;
      if (left > 0) this.bySource.set(source, left);
      else this.bySource.delete(source);
    });
    return true;
  }
}

/** Listens on host:port with a deep accept backlog (bursts of phones reconnecting); resolves with the port bound. */
export function listenStream(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: socketHost(host), backlog: 4096 }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
