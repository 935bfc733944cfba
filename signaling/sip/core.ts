/**
 * What dialogs (§12), server requests (§8.2) and outgoing INVITEs (§13.2) need from the UA core:
 * they hold these narrow interfaces, not the core itself, so the layers import one way only.
 * `D` is the dialog type the core keeps; its users name it, this module does not import it.
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { Credentials } from './digest.js';
import type { SipRequest, SipResponse } from './message.js';
import type { TimerConfig } from './timers.js';
import type { ClientTransaction, ClientTransactionUser } from './transaction.js';
import type { Hop, Routing } from './transport-layer.js';
import type { Endpoint, Transport, TransportProtocol } from './transport/transport.js';
import type { RequestOptions, ResponseOptions } from './types.js';

export interface SendHooks {
  onProvisional?(res: SipResponse): void;
  /** Every 2xx to an INVITE, first and later ones (retransmissions, forks). */
  on2xx?(res: SipResponse, req: SipRequest, dest: Endpoint, transport: Transport): void;
}

/** What a dialog uses: sending in-dialog requests, ACKs and 2xx retransmissions, and its place in the core's dialog table. */
export interface DialogCore<D> {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  readonly log: Logger | undefined;
  contact(user?: string, transport?: TransportProtocol): string;
  addUserAgent(req: SipRequest): void;
  addVia(req: SipRequest, transport: Transport): void;
  send(msg: SipRequest | SipResponse, dest: Endpoint, transport: Transport, retransmission: boolean): Buffer;
  /**
   * Sends a request built by `build` (called again, with a new CSeq, to answer one 401/407
   * when credentials are given) and resolves with the final response.
   */
  sendWithAuth(build: () => SipRequest, routing: Routing, auth: Credentials | undefined, hooks: SendHooks): Promise<SipResponse>;
  addDialog(dialog: D): void;
  /** Removes the dialog if it is the one the core holds under its id. */
  removeDialog(dialog: D): void;
}

/** What a received request uses to answer (§8.2.6) and to create its dialog. */
export interface ServerRequestCore<D> extends DialogCore<D> {
  buildResponse(req: SipRequest, localTag: string | undefined, transport: Transport, status: number, opts: ResponseOptions, withContact: boolean): SipResponse;
  /** The INVITE under this server transaction key got its final response: CANCEL can no longer affect it. */
  inviteAnswered(key: string): void;
}

/** What an outgoing INVITE uses: its request, its hop, its client transactions (INVITE and CANCEL). */
export interface InviteCore<D> extends DialogCore<D> {
  /** A new out-of-dialog request with fresh Call-ID and From tag (§8.1.1). */
  buildOutOfDialog(method: string, target: string, opts: RequestOptions, seq?: number): SipRequest;
  resolve(routing: Routing): Promise<Hop>;
  /** Adds our Via and starts a client transaction. */
  startClientTransaction(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser): ClientTransaction;
  /** Starts a client transaction for a request that already carries its Via (CANCEL reuses the INVITE's). */
  startPrepared(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser, branch: string): ClientTransaction;
}
