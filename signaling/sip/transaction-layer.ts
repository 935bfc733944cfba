/**
 * The transaction layer (RFC 3261 §17): keeps the client and server transactions, matches what the
 * transport layer receives to them (§17.1.3, §17.2.3), absorbs retransmissions, and hands the rest
 * up to the UA core. The state machines themselves are in transaction.ts.
 */
import type { Clock } from './clock.js';
import type { SipRequest, SipResponse } from './message.js';
import type { SipMetrics } from './metrics.js';
import { Table } from './table.js';
import type { TimerConfig } from './timers.js';
import { ClientTransaction, clientKey, ServerTransaction, type ClientTransactionUser, type TransactionContext } from './transaction.js';
import { responseDestination, type TransportLayer, type TransportUser } from './transport-layer.js';
import type { Endpoint, Transport } from './transport/transport.js';
import { BRANCH_COOKIE, newBranch } from './util.js';

/** The UA core, as the transaction layer calls it. */
export interface TransactionLayerUser {
  /** A request that opened a new server transaction (anything but ACK). */
  receiveRequest(req: SipRequest, tx: ServerTransaction, source: Endpoint): void;
  /** An ACK, offered to the dialogs first: true when it acknowledged a 2xx (§13.3.1.4), which no transaction sees. */
  receiveAck(ack: SipRequest): boolean;
  /** A response that matched no client transaction: a 2xx to INVITE retransmitted after the transaction ended. */
  receiveStrayResponse(res: SipResponse): void;
  /** An INVITE server transaction ended: no CANCEL can match it any more. */
  inviteTransactionEnded(key: string): void;
}

export class TransactionLayer implements TransportUser, TransactionContext {
  private readonly clientTx = new Table<ClientTransaction>();
  private readonly serverTx = new Table<ServerTransaction>();

  constructor(
    private readonly user: TransactionLayerUser,
    private readonly transport: TransportLayer,
    readonly clock: Clock,
    readonly timers: TimerConfig,
    private readonly metrics: SipMetrics,
  ) {}

  send(msg: SipRequest | SipResponse, dest: Endpoint, transport: Transport, retransmission: boolean, onError?: (err: Error) => void): Buffer {
    return this.transport.send(msg, dest, transport, retransmission, onError);
  }

  resend(wire: string, method: string, dest: Endpoint, transport: Transport): void {
    this.transport.resend(wire, method, dest, transport);
  }

  terminated(tx: ClientTransaction | ServerTransaction): void {
    if (tx instanceof ClientTransaction) {
      if (this.clientTx.get(tx.key) === tx) this.clientTx.delete(tx.key);
      this.metrics.live[tx.isInvite ? 'ict' : 'nict']--;
    } else {
      if (this.serverTx.get(tx.key) === tx) this.serverTx.delete(tx.key);
      if (tx.isInvite) this.user.inviteTransactionEnded(tx.key);
      this.metrics.live[tx.isInvite ? 'ist' : 'nist']--;
    }
  }

  /** Adds our Via and starts a client transaction. */
  startClientTransaction(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser, branch = newBranch()): ClientTransaction {
    this.transport.addVia(req, transport, branch);
    return this.startPrepared(req, dest, transport, tu, branch);
  }

  /** Starts a client transaction for a request that already carries its Via (CANCEL reuses the INVITE's). */
  startPrepared(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser, branch: string): ClientTransaction {
    const tx = new ClientTransaction(this, req, dest, transport, branch, tu);
    this.clientTx.set(tx.key, tx);
    this.metrics.live[tx.isInvite ? 'ict' : 'nict']++;
    tx.start();
    return tx;
  }

  /** §17.2.3 matching key; RFC 2543 peers (no magic cookie) are matched on the request's identifiers. */
  serverKey(req: SipRequest, method = req.method === 'ACK' ? 'INVITE' : req.method): string {
    const via = req.via;
    const sentBy = via.host + ':' + (via.port ?? '');
    const branch = via.branch;
    const key =
      branch && branch.startsWith(BRANCH_COOKIE)
        ? branch + '|' + sentBy + '|' + method
        : '2543|' + req.uri + '|' + (req.fromTag ?? '') + '|' + req.callId + '|' + req.cseq.seq + '|' + sentBy + '|' + (branch ?? '') + '|' + method;
    // The parts are slices of the request's text; flattening the key now lets that text be
    // collected while the transaction waits out Timer J/L (64*T1).
    key.charCodeAt(0);
    return key;
  }

  hasServerTransaction(key: string): boolean {
    return this.serverTx.has(key);
  }

  receiveRequest(req: SipRequest, source: Endpoint, transport: Transport): void {
    const method = req.method;
    if (method === 'ACK') {
      this.metrics.request('in', method);
      this.receiveAck(req);
      return;
    }
    const key = this.serverKey(req);
    const existing = this.serverTx.get(key);
    if (existing) {
      this.metrics.retransmission('in', method);
      existing.receiveRequest(req);
      return;
    }
    this.metrics.request('in', method);
    const tx = new ServerTransaction(this, key, method, responseDestination(req, source, transport), transport);
    this.serverTx.set(key, tx);
    this.metrics.live[tx.isInvite ? 'ist' : 'nist']++;
    this.user.receiveRequest(req, tx, source);
  }

  private receiveAck(req: SipRequest): void {
    // ACK for a 2xx: end-to-end, matched to the dialog (§13.3.1.4). The common case, so tried first.
    if (this.user.receiveAck(req)) return;
    // ACK for a non-2xx final: it belongs to the INVITE server transaction (§17.2.1).
    const tx = this.serverTx.get(this.serverKey(req));
    if (tx && (tx.state === 'completed' || tx.state === 'confirmed')) tx.receiveRequest(req);
  }

  receiveResponse(res: SipResponse): void {
    const method = res.cseq.method;
    this.metrics.response('in', method, res.status);
    const branch = res.via.branch;
    // clientKey() files ACK under INVITE; a response never answers an ACK, so that CSeq matches nothing.
    const tx = branch && method !== 'ACK' ? this.clientTx.get(clientKey(branch, method)) : undefined;
    if (tx) tx.receive(res);
    else this.user.receiveStrayResponse(res);
  }

  /** Whether a transaction still waits for a final response (close() drains these). */
  get busy(): boolean {
    for (const t of this.serverTx.values()) if (t.state === 'trying' || t.state === 'proceeding') return true;
    for (const t of this.clientTx.values()) if (t.state === 'calling' || t.state === 'trying' || t.state === 'proceeding') return true;
    return false;
  }

  terminateAll(): void {
    for (const t of this.clientTx.values()) t.terminate();
    for (const t of this.serverTx.values()) t.terminate();
  }
}
