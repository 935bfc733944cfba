/**
 * The UA core (RFC 3261 §8, with §9 CANCEL, §12 dialogs, §22 auth): builds and sends requests,
 * routes the requests the transaction layer hands up to dialogs or to the TU, and answers what
 * the TU does not (100, 481, 487, 491, 420, 503...).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { EDGE_SOURCE_HEADER } from '../../common/edge/kamailio-config.js';
import type { Clock } from './clock.js';
import type { InviteCore, SendHooks, ServerRequestCore } from './core.js';
import { authorize, type Credentials } from './digest.js';
import { OutgoingInviteImpl } from './client-invite.js';
import { createsDialog, dialogKey, DialogImpl } from './dialog.js';
import { parseNameAddr } from './headers.js';
import { localResponse, reasonPhrase, SipRequest, SipResponse } from './message.js';
import type { SipMetrics } from './metrics.js';
import { ServerRequestImpl } from './server-request.js';
import { Table } from './table.js';
import type { TimerConfig } from './timers.js';
import { TransactionLayer, type TransactionLayerUser } from './transaction-layer.js';
import type { ClientTransaction, ClientTransactionUser, ServerTransaction } from './transaction.js';
import type { Hop, Routing, TransportLayer } from './transport-layer.js';
import type { Endpoint, Transport, TransportProtocol } from './transport/transport.js';
import type { Dialog, DialogState, InviteOptions, OutgoingInvite, RequestOptions, ResponseOptions, ServerRequest, SipStackOptions, SubscribeOptions } from './types.js';
import { parseUri } from './uri.js';
import { applyBody, applyHeaders, asNameAddr, newTag, randomToken, toPairs } from './util.js';

/**
 * Where the SIP edge received a request from outside (it replaces any such header the sender put),
 * when the header carries the edge's token: a request sent straight to the replica is not believed.
 */
function edgeOrigin(req: SipRequest, token: Buffer): Endpoint | undefined {
  const m = /^(udp|tcp|tls|wss?) (\S+) (\d{1,5}) (\S+)$/i.exec(req.get(EDGE_SOURCE_HEADER)?.trim() ?? '');
  if (!m) return undefined;
  const given = Buffer.from(m[4]!);
  if (given.length !== token.length || !timingSafeEqual(given, token)) return undefined;
  return { protocol: m[1]!.toLowerCase() as TransportProtocol, host: m[2]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[3]) };
}

/** The methods the SIP Server handles (signaling/b2bua.ts, signaling/registrar*.ts), advertised in Allow. */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'INFO', 'UPDATE'] as const;

const ALLOW = ALLOWED_METHODS.join(', ');

interface PendingSubscription {
  request: SipRequest;
  onNotify: (notify: SipRequest) => void;
}

export class UserAgentCore implements TransactionLayerUser, InviteCore<DialogImpl>, ServerRequestCore<DialogImpl> {
  readonly transactions: TransactionLayer;
  private readonly dialogs = new Table<DialogImpl>();
  /** INVITE server requests a CANCEL can still reach, by server transaction key. */
  private readonly invites = new Table<ServerRequestImpl>();
  /** SUBSCRIBEs awaiting their 2xx, by Call-ID and From tag: a NOTIFY may overtake the 2xx. */
  private readonly pendingSubs = new Table<PendingSubscription>();
  private handler?: (req: ServerRequest) => void;
  /** Behind the SIP edge: the token that makes its source header believed. */
  private readonly edgeToken?: Buffer;
  private unknownDialogHandler?: (req: ServerRequest) => void;
  private closing = false;

  constructor(
    private readonly opts: SipStackOptions,
    private readonly transport: TransportLayer,
    readonly clock: Clock,
    readonly timers: TimerConfig,
    private readonly metrics: SipMetrics,
    readonly log: Logger | undefined,
  ) {
    this.transactions = new TransactionLayer(this, transport, clock, timers, metrics);
    if (opts.edgeSourceToken !== undefined) this.edgeToken = Buffer.from(opts.edgeSourceToken);
  }

  onRequest(handler: (req: ServerRequest) => void): void {
    this.handler = handler;
  }

  onUnknownDialog(handler: (req: ServerRequest) => void): void {
    this.unknownDialogHandler = handler;
  }

  deliver(req: ServerRequest): boolean {
    const msg = req.message;
    const dialog = this.dialogs.get(dialogKey(msg.callId, msg.toTag ?? '', msg.fromTag ?? ''));
    if (!dialog || !(req instanceof ServerRequestImpl)) return false;
    dialog.receiveRequest(req);
    return true;
  }

  relay(req: ServerRequest, to: Endpoint): boolean {
    if (!(req instanceof ServerRequestImpl) || req.tx.transport.protocol !== to.protocol) return false;
    this.transport.send(req.message, to, req.tx.transport, false);
    // The answer goes from the other process to the sender: nothing is left to do here.
    req.tx.terminate();
    return true;
  }

  contact(user?: string, transport?: TransportProtocol): string {
    return this.transport.contact(user, transport);
  }

  addUserAgent(req: SipRequest): void {
    if (this.opts.userAgent) req.append('User-Agent', this.opts.userAgent);
  }

  addVia(req: SipRequest, transport: Transport): void {
    this.transport.addVia(req, transport);
  }

  send(msg: SipRequest | SipResponse, dest: Endpoint, transport: Transport, retransmission: boolean): Buffer {
    return this.transport.send(msg, dest, transport, retransmission);
  }

  resolve(routing: Routing): Promise<Hop> {
    return this.transport.resolve(routing);
  }

  startClientTransaction(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser): ClientTransaction {
    return this.transactions.startClientTransaction(req, dest, transport, tu);
  }

  startPrepared(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser, branch: string): ClientTransaction {
    return this.transactions.startPrepared(req, dest, transport, tu, branch);
  }

  // ---- UAC (§8.1) ----------------------------------------------------------------------------

  async sendWithAuth(build: () => SipRequest, routing: Routing, auth: Credentials | undefined, hooks: SendHooks): Promise<SipResponse> {
    let req = build();
    let hop: Hop;
    try {
      hop = await this.transport.resolve(routing);
    } catch (err) {
      return localResponse(503, 'Service Unavailable (' + (err instanceof Error ? err.message : String(err)) + ')', req);
    }
    for (let attempt = 0; ; attempt++) {
      const res = await this.sendOnce(req, hop.dest, hop.transport, hooks);
      if ((res.status === 401 || res.status === 407) && auth && attempt === 0) {
        const credential = authorize(req, res, auth);
        if (!credential) return res;
        req = build();
        req.append(credential.name, credential.value);
        continue;
      }
      return res;
    }
  }

  private sendOnce(req: SipRequest, dest: Endpoint, transport: Transport, hooks: SendHooks): Promise<SipResponse> {
    return new Promise((resolve) => {
      let done = false;
      this.transactions.startClientTransaction(req, dest, transport, {
        onResponse: (res) => {
          if (res.status < 200) {
            hooks.onProvisional?.(res);
            return;
          }
          if (res.status < 300 && req.method === 'INVITE') hooks.on2xx?.(res, req, dest, transport);
          if (!done) {
            done = true;
            resolve(res);
          }
        },
        onFailure: (status, reason) => {
          if (!done) {
            done = true;
            resolve(localResponse(status, reason, req));
          }
        },
      });
    });
  }

  buildOutOfDialog(method: string, target: string, opts: RequestOptions, seq = 1): SipRequest {
    const req = new SipRequest(method, target.startsWith('<') ? parseNameAddr(target).uri : target);
    for (const r of opts.route ?? []) req.append('Route', asNameAddr(r));
    req.append('Max-Forwards', '70');
    const host = this.transport.advertised(this.transport.primary);
    req.append('From', asNameAddr(opts.from ?? 'sip:huddle@' + host) + ';tag=' + newTag());
    req.append('To', asNameAddr(opts.to ?? req.uri));
    req.append('Call-ID', opts.callId ?? randomToken(12) + '@' + host);
    req.append('CSeq', seq + ' ' + method);
    if (method !== 'OPTIONS' && method !== 'MESSAGE') {
      let protocol: TransportProtocol | undefined = opts.destination?.protocol;
      if (!protocol) {
        try {
          const u = parseUri(req.uri);
          protocol = (u.scheme !== 'tel' ? (u.params.transport?.toLowerCase() as TransportProtocol | undefined) : undefined) ?? 'udp';
        } catch {
          protocol = 'udp';
        }
      }
      req.append('Contact', '<' + this.transport.contact(opts.contactUser, this.transport.has(protocol) ? protocol : undefined) + '>');
    }
    this.addUserAgent(req);
    applyHeaders(req, opts.headers);
    applyBody(req, opts);
    return req;
  }

  request(method: string, target: string, opts: RequestOptions = {}): Promise<SipResponse> {
    if (method === 'INVITE' || method === 'ACK' || method === 'CANCEL') throw new Error(`use invite()/the stack for ${method}`);
    let seq = 1;
    let callId: string | undefined;
    let fromTag: string | undefined;
    // A retry after a challenge keeps Call-ID and From tag (§22.2: same dialog identifiers, CSeq + 1).
    const build = () => {
      const o: RequestOptions = callId ? { ...opts, callId } : opts;
      const req = this.buildOutOfDialog(method, target, o, seq++);
      if (fromTag) req.set('From', asNameAddr(opts.from ?? req.from.uri) + ';tag=' + fromTag);
      callId = req.callId;
      fromTag = req.fromTag;
      return req;
    };
    return this.sendWithAuth(build, { uri: target.startsWith('<') ? parseNameAddr(target).uri : target, routeSet: (opts.route ?? []).map(asNameAddr), destination: opts.destination }, opts.auth, {});
  }

  invite(target: string, opts: InviteOptions = {}): OutgoingInvite {
    return new OutgoingInviteImpl(this, target, opts);
  }

  async subscribe(target: string, opts: SubscribeOptions): Promise<{ response: SipResponse; dialog?: Dialog }> {
    let sub: PendingSubscription | undefined;
    let seq = 1;
    let callId: string | undefined;
    let fromTag: string | undefined;
    const keys: string[] = [];
    const build = () => {
      const o: RequestOptions = { ...opts, ...(callId ? { callId } : {}), headers: [['Event', opts.event], ['Expires', String(opts.expires ?? 3600)], ...(opts.accept ? ([['Accept', opts.accept]] as [string, string][]) : []), ...toPairs(opts.headers)] };
      const req = this.buildOutOfDialog('SUBSCRIBE', target, o, seq++);
      if (fromTag) req.set('From', asNameAddr(opts.from ?? req.from.uri) + ';tag=' + fromTag);
      callId = req.callId;
      fromTag = req.fromTag;
      sub = { request: req, onNotify: opts.onNotify };
      const key = req.callId + '|' + fromTag;
      keys.push(key);
      this.pendingSubs.set(key, sub);
      return req;
    };
    try {
      const response = await this.sendWithAuth(build, { uri: target, routeSet: (opts.route ?? []).map(asNameAddr), destination: opts.destination }, opts.auth, {});
      if (response.status >= 300 || !sub) return { response };
      const req = sub.request;
      const existing = this.dialogs.get(dialogKey(req.callId, req.fromTag ?? '', response.toTag ?? ''));
      if (existing) return { response, dialog: existing };
      const dialog = DialogImpl.uac(this, req, response, this.transport.transportFor(req.via.transport.toLowerCase() as TransportProtocol), opts.destination);
      dialog.notifyHandler = opts.onNotify;
      return { response, dialog };
    } finally {
      for (const k of keys) this.pendingSubs.delete(k);
    }
  }

  // ---- dialogs -------------------------------------------------------------------------------

  restoreDialog(state: DialogState): Dialog {
    const existing = this.dialogs.get(dialogKey(state.callId, state.localTag, state.remoteTag));
    existing?.forget();
    return DialogImpl.restore(this, state, this.transport.transportFor(this.transport.has(state.protocol) ? state.protocol : this.transport.primary.protocol));
  }

  addDialog(d: DialogImpl): void {
    this.dialogs.set(d.id, d);
    this.metrics.live.dialogs++;
  }

  removeDialog(d: DialogImpl): void {
    if (this.dialogs.get(d.id) === d) {
      this.dialogs.delete(d.id);
      this.metrics.live.dialogs--;
    }
  }

  // ---- UAS (§8.2) ----------------------------------------------------------------------------

  inviteAnswered(key: string): void {
    this.invites.delete(key);
  }

  inviteTransactionEnded(key: string): void {
    this.invites.delete(key);
  }

  buildResponse(req: SipRequest, localTag: string | undefined, transport: Transport, status: number, opts: ResponseOptions, withContact: boolean): SipResponse {
    const res = new SipResponse(status, opts.reason ?? reasonPhrase(status));
    const tag = localTag && req.toTag === undefined ? ';tag=' + localTag : '';
    const keepRR = createsDialog(req.method) && status > 100 && status < 300;
    for (const h of req.headers) {
      const k = h.key;
      // Copied headers share the request's entries: nothing edits a response's headers in place.
      if (k === 'via' || k === 'from' || k === 'call-id' || k === 'cseq' || (keepRR && k === 'record-route')) res.headers.push(h);
      else if (k === 'to') res.headers.push({ name: h.name, key: k, value: tag ? h.value + tag : h.value });
    }
    const contactWanted = withContact || (req.method === 'INVITE' && status > 100 && status < 300);
    if (contactWanted) res.append('Contact', '<' + (opts.contact ?? this.transport.contact(undefined, transport.protocol)) + '>');
    if (status === 405 || (req.method === 'OPTIONS' && status < 300)) res.append('Allow', ALLOW);
    if (this.opts.userAgent) res.append('Server', this.opts.userAgent);
    applyHeaders(res, opts.headers);
    applyBody(res, opts);
    return res;
  }

  receiveRequest(req: SipRequest, tx: ServerTransaction, source: Endpoint): void {
    const method = req.method;
    const toTag = req.toTag;
    const dialog = toTag !== undefined ? this.dialogFor(req, toTag, tx.transport) : undefined;
    const sreq = new ServerRequestImpl(this, tx, req, source, dialog, this.edgeToken ? (edgeOrigin(req, this.edgeToken) ?? source) : source);
    if (this.closing) {
      sreq.respond(503, { headers: { 'Retry-After': '5' } });
      return;
    }
    if (method === 'CANCEL') {
      this.receiveCancel(sreq);
      return;
    }
    if (method === 'INVITE') this.invites.set(tx.key, sreq);
    this.dispatch(sreq, req, dialog, toTag !== undefined);
    // §17.2.1: a TU that did not answer at once gets a 100 sent for it, so the client stops
    // retransmitting; one that answered synchronously saves the extra message.
    if (method === 'INVITE' && !tx.responded && tx.state === 'proceeding') sreq.respond(100);
  }

  private dispatch(sreq: ServerRequestImpl, req: SipRequest, dialog: DialogImpl | undefined, inDialog: boolean): void {
    const require = req.get('require');
    if (require !== undefined) {
      sreq.respond(420, { headers: { Unsupported: require } });
      return;
    }
    if (inDialog) {
      if (dialog) dialog.receiveRequest(sreq);
      else if (this.unknownDialogHandler) this.unknownDialogHandler(sreq);
      else sreq.respond(481);
      return;
    }
    if (!this.handler) {
      sreq.respond(req.method === 'OPTIONS' ? 200 : 501);
      return;
    }
    try {
      this.handler(sreq);
    } catch (err) {
      this.log?.error({ err, method: req.method }, 'request handler threw');
      if (!sreq.answered) sreq.respond(500);
    }
  }

  /** The dialog of an in-dialog request, or one created by a NOTIFY that raced its SUBSCRIBE's 2xx (RFC 6665 §4.1.2.4). */
  private dialogFor(req: SipRequest, toTag: string, transport: Transport): DialogImpl | undefined {
    const d = this.dialogs.get(dialogKey(req.callId, toTag, req.fromTag ?? ''));
    if (d || req.method !== 'NOTIFY') return d;
    const sub = this.pendingSubs.get(req.callId + '|' + toTag);
    if (!sub) return undefined;
    const nd = DialogImpl.fromNotify(this, sub.request, req, transport);
    nd.notifyHandler = sub.onNotify;
    return nd;
  }

  receiveAck(ack: SipRequest): boolean {
    return this.dialogs.get(dialogKey(ack.callId, ack.toTag ?? '', ack.fromTag ?? ''))?.receiveAck(ack) ?? false;
  }

  private receiveCancel(sreq: ServerRequestImpl): void {
    const inviteKey = this.transactions.serverKey(sreq.message, 'INVITE');
    const invite = this.invites.get(inviteKey);
    if (!invite) {
      // §9.2: a CANCEL for an INVITE already answered finally still matches it (200, no effect).
      sreq.respond(this.transactions.hasServerTransaction(inviteKey) ? 200 : 481);
      return;
    }
    // §9.2: the CANCEL's 200 carries the INVITE response's To tag.
    invite.localTag ??= newTag();
    sreq.localTag = invite.localTag;
    sreq.respond(200);
    invite.cancel(sreq.message);
  }

  receiveStrayResponse(res: SipResponse): void {
    if (res.cseq.method === 'INVITE' && res.status >= 200 && res.status < 300) {
      // A 2xx retransmitted after the transaction ended: re-send our ACK (§13.2.2.4).
      this.dialogs.get(dialogKey(res.callId, res.fromTag ?? '', res.toTag ?? ''))?.resendAck(res);
    }
  }

  // ---- shutdown ------------------------------------------------------------------------------

  /** From now on new requests are answered 503. */
  stopAccepting(): void {
    this.closing = true;
  }

  terminateDialogs(): void {
    for (const d of this.dialogs.values()) d.terminate('closed');
  }
}
