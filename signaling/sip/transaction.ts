/**
 * RFC 3261 §17 transaction state machines, with RFC 6026's Accepted state for INVITE 2xx.
 * Timers (named as in the RFC) run on an injectable Clock; retransmissions only over unreliable transports.
 */
import type { Clock, Expirable, TimerHandle } from './clock.js';
import { SipRequest, type SipResponse } from './message.js';
import { firstRetransmit, nextTimerA, nextTimerE, nextTimerG, timerB, timerD, timerF, timerH, timerI, timerJ, timerK, timerL, timerM, type TimerConfig } from './timers.js';
import type { Endpoint, Transport } from './transport/transport.js';

export interface TransactionContext {
  clock: Clock;
  timers: TimerConfig;
  /** Serializes and puts a message on the wire (`retransmission` is counted in metrics); returns the bytes sent. */
  send(msg: SipRequest | SipResponse, dest: Endpoint, transport: Transport, retransmission: boolean, onError?: (err: Error) => void): Buffer;
  /** Sends a response again from its wire form kept as a latin1 string (a retransmission; `method` is its CSeq method). */
  resend(wire: string, method: string, dest: Endpoint, transport: Transport): void;
  terminated(tx: ClientTransaction | ServerTransaction): void;
}

export type ClientState = 'calling' | 'trying' | 'proceeding' | 'accepted' | 'completed' | 'terminated';
export type ServerState = 'trying' | 'proceeding' | 'accepted' | 'completed' | 'confirmed' | 'terminated';

export interface ClientTransactionUser {
  onResponse(res: SipResponse, tx: ClientTransaction): void;
  /** Timer B/F fired, or the transport failed: the TU treats it as 408/503 (§8.1.3.1). */
  onFailure(status: 408 | 503, reason: string, tx: ClientTransaction): void;
}

export function clientKey(branch: string, method: string): string {
  return branch + '|' + (method === 'ACK' ? 'INVITE' : method);
}

/**
 * A request that belongs to `req`'s transaction (§9.1 CANCEL, §17.1.1.3 ACK): same Request-URI,
 * top Via, Route set, From, Call-ID and CSeq number, with `method` and the given To.
 */
export function sameTransactionRequest(req: SipRequest, method: string, to = req.get('to')!): SipRequest {
  const r = new SipRequest(method, req.uri);
  r.append('Via', req.getAll('via')[0]!);
  for (const route of req.getAll('route')) r.append('Route', route);
  r.append('Max-Forwards', '70');
  r.append('From', req.get('from')!);
  r.append('To', to);
  r.append('Call-ID', req.callId);
  r.append('CSeq', req.cseq.seq + ' ' + method);
  return r;
}

export class ClientTransaction implements Expirable {
  readonly key: string;
  readonly isInvite: boolean;
  state: ClientState;
  private timerA?: TimerHandle;
  private timerB?: TimerHandle;
  private interval: number;
  private ack?: SipRequest;

  constructor(
    private readonly ctx: TransactionContext,
    readonly request: SipRequest,
    readonly dest: Endpoint,
    readonly transport: Transport,
    readonly branch: string,
    private readonly tu: ClientTransactionUser,
  ) {
    this.isInvite = request.method === 'INVITE';
    this.key = clientKey(branch, request.method);
    this.state = this.isInvite ? 'calling' : 'trying';
    this.interval = firstRetransmit(ctx.timers);
  }

  start(): void {
    const { clock, timers } = this.ctx;
    this.ctx.send(this.request, this.dest, this.transport, false, (err) => this.transportFailed(err));
    if (!this.transport.reliable) this.timerA = clock.setTimer(this.interval, () => this.retransmit());
    this.timerB = clock.setTimer(this.isInvite ? timerB(timers) : timerF(timers), () => {
      if (this.state === 'calling' || this.state === 'trying' || this.state === 'proceeding') {
        this.terminate();
        this.tu.onFailure(408, 'Request Timeout', this);
      }
    });
  }

  private transportFailed(err: Error): void {
    if (this.state === 'terminated') return;
    this.terminate();
    this.tu.onFailure(503, 'Service Unavailable (' + err.message + ')', this);
  }

  /** Timer A (INVITE: doubling) / Timer E (non-INVITE: doubling up to T2, T2 once proceeding). */
  private retransmit(): void {
    if (this.state !== 'calling' && this.state !== 'trying' && this.state !== 'proceeding') return;
    if (this.isInvite && this.state === 'proceeding') return;
    this.ctx.send(this.request, this.dest, this.transport, true);
    this.interval = this.isInvite ? nextTimerA(this.interval) : nextTimerE(this.ctx.timers, this.interval, this.state === 'proceeding');
    this.timerA = this.ctx.clock.setTimer(this.interval, () => this.retransmit());
  }

  receive(res: SipResponse): void {
    const { timers } = this.ctx;
    const reliable = this.transport.reliable;
    switch (this.state) {
      case 'calling':
      case 'trying':
      case 'proceeding':
        if (res.status < 200) {
          if (this.isInvite) {
            // Timer B only guards the Calling state; a ringing INVITE waits for the TU (CANCEL) to end it.
            this.timerA?.cancel();
            this.timerB?.cancel();
          }
          this.state = 'proceeding';
          this.tu.onResponse(res, this);
          return;
        }
        this.timerA?.cancel();
        this.timerB?.cancel();
        if (this.isInvite && res.status < 300) {
          // RFC 6026 Timer M: keep absorbing 2xx retransmissions and forked 2xx for the TU.
          this.state = 'accepted';
          this.ctx.clock.expireAfter(timerM(timers), this);
        } else if (this.isInvite) {
          this.state = 'completed';
          this.ack = this.buildAck(res);
          this.ctx.send(this.ack, this.dest, this.transport, false);
          this.ctx.clock.expireAfter(timerD(timers, reliable), this);
        } else {
          this.state = 'completed';
          this.ctx.clock.expireAfter(timerK(timers, reliable), this);
        }
        this.tu.onResponse(res, this);
        return;
      case 'accepted':
        if (res.status >= 200 && res.status < 300) this.tu.onResponse(res, this);
        return;
      case 'completed':
        if (this.ack && res.status >= 300) this.ctx.send(this.ack, this.dest, this.transport, true);
        return;
      case 'terminated':
        return;
    }
  }

  /** §17.1.1.3: the ACK for a non-2xx final response belongs to the transaction. */
  private buildAck(res: SipResponse): SipRequest {
    return sameTransactionRequest(this.request, 'ACK', res.get('to')!);
  }

  expire(): void {
    this.terminate();
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.timerA?.cancel();
    this.timerB?.cancel();
    this.ctx.terminated(this);
  }
}

export interface ServerTransactionUser {
  /** Timer H fired: no ACK for a non-2xx final response. */
  onNoAck?(tx: ServerTransaction): void;
  /** Sending a response failed at the transport. */
  onTransportError?(err: Error, tx: ServerTransaction): void;
}

/**
 * Server transactions live 64*T1 after their final response (Timers J and L), so they keep only
 * what they still need: the key, where responses go, and the last response's wire form.
 */
export class ServerTransaction implements Expirable {
  readonly isInvite: boolean;
  state: ServerState;
  user?: ServerTransactionUser;
  /**
   * The last response as a latin1 string (byte for byte): one flat heap object without pointers
   * is the cheapest thing for the GC to carry through Timer J, unlike a Buffer and its backing store.
   */
  private last: string | undefined;
  private timerG?: TimerHandle;
  private timerH?: TimerHandle;
  private interval: number;

  constructor(
    private readonly ctx: TransactionContext,
    readonly key: string,
    /** The request's method, which is also the CSeq method of every response. */
    readonly method: string,
    /** Where responses go (§18.2.2), fixed when the request arrived. */
    readonly dest: Endpoint,
    readonly transport: Transport,
  ) {
    this.isInvite = method === 'INVITE';
    this.state = this.isInvite ? 'proceeding' : 'trying';
    this.interval = firstRetransmit(ctx.timers);
  }

  /** Whether any response (provisional included) went out. */
  get responded(): boolean {
    return this.last !== undefined;
  }

  /** A retransmission of the request (or, for INVITE, an ACK) matched this transaction. */
  receiveRequest(req: SipRequest): void {
    if (req.method === 'ACK') {
      if (this.state === 'completed') {
        this.state = 'confirmed';
        this.timerG?.cancel();
        this.timerH?.cancel();
        this.last = undefined;
        this.ctx.clock.expireAfter(timerI(this.ctx.timers, this.transport.reliable), this);
      }
      return;
    }
    if ((this.state === 'proceeding' || this.state === 'completed') && this.last) this.resend();
  }

  private resend(): void {
    this.ctx.resend(this.last!, this.method, this.dest, this.transport);
  }

  respond(res: SipResponse): void {
    if (this.state === 'terminated' || this.state === 'completed' || this.state === 'confirmed' || this.state === 'accepted') {
      throw new Error(`cannot respond ${res.status} in transaction state ${this.state}`);
    }
    const { clock, timers } = this.ctx;
    const reliable = this.transport.reliable;
    const user = this.user;
    const sent = this.ctx.send(res, this.dest, this.transport, false, user?.onTransportError ? (err) => user.onTransportError?.(err, this) : undefined);
    // Kept for retransmission up to 64*T1; the INVITE 2xx is not (the UAS core retransmits it).
    this.last = this.isInvite && res.status >= 200 && res.status < 300 ? undefined : sent.toString('latin1');
    if (res.status < 200) {
      this.state = 'proceeding';
      return;
    }
    if (this.isInvite && res.status < 300) {
      // RFC 6026 Timer L: absorb INVITE retransmissions; the UAS core retransmits the 2xx itself.
      this.state = 'accepted';
      clock.expireAfter(timerL(timers), this);
    } else if (this.isInvite) {
      this.state = 'completed';
      if (!reliable) this.timerG = clock.setTimer(this.interval, () => this.retransmitFinal());
      this.timerH = clock.setTimer(timerH(timers), () => {
        this.terminate();
        this.user?.onNoAck?.(this);
      });
    } else {
      this.state = 'completed';
      clock.expireAfter(timerJ(timers, reliable), this);
    }
  }

  /** Timer G. */
  private retransmitFinal(): void {
    if (this.state !== 'completed' || !this.last) return;
    this.resend();
    this.interval = nextTimerG(this.ctx.timers, this.interval);
    this.timerG = this.ctx.clock.setTimer(this.interval, () => this.retransmitFinal());
  }

  get finalSent(): boolean {
    return this.state !== 'trying' && this.state !== 'proceeding';
  }

  expire(): void {
    this.terminate();
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.timerG?.cancel();
    this.timerH?.cancel();
    this.last = undefined;
    this.ctx.terminated(this);
  }
}
