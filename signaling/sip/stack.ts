/**
 * The UA core and transaction layer (§8, §17, §18): receives from transports, matches
 * transactions and dialogs, answers what the TU does not (100, 481, 487, 491, 400...), and sends.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import { authorize, type Credentials } from './digest.js';
import { createsDialog, dialogKey, DialogImpl, ServerRequestImpl } from './dialog.js';
import { splitList } from './grammar.js';
import { formatVia, parseNameAddr } from './headers.js';
import { SipRequest, SipResponse, reasonPhrase } from './message.js';
import { SipMetrics } from './metrics.js';
import { DEFAULT_LIMITS, parseMessage, type ParseLimits, type ParseResult } from './parser.js';
import { ClientTransaction, clientKey, ExpiryQueues, ServerTransaction, type ClientTransactionUser, type TimerConfig, type TransactionContext } from './transaction.js';
import { TcpTransport } from './transport/tcp.js';
import type { Endpoint, Transport, TransportHandler, TransportProtocol } from './transport/transport.js';
import { UdpTransport } from './transport/udp.js';
import { Table } from './table.js';
import type { Dialog, InviteOptions, ListenAddress, OutgoingInvite, RequestOptions, ResponseOptions, ServerRequest, SipStack, SipStackOptions, SubscribeOptions } from './types.js';
import { OutgoingInviteImpl } from './client-invite.js';
import { parseUri, socketHost } from './uri.js';
import { applyBody, applyHeaders, asNameAddr, BRANCH_COOKIE, newBranch, randomToken, toPairs } from './util.js';

export interface Routing {
  /** Request-URI (the hop when there is no route set). */
  uri: string;
  routeSet: readonly string[];
  destination?: Endpoint | undefined;
  /** Transport to prefer when the URI names none (a dialog's own). */
  transport?: Transport;
}

export interface SendHooks {
  onProvisional?(res: SipResponse): void;
  /** Every 2xx to an INVITE, first and later ones (retransmissions, forks). */
  on2xx?(res: SipResponse, req: SipRequest, dest: Endpoint, transport: Transport): void;
}

interface PendingSubscription {
  request: SipRequest;
  transport?: Transport;
  onNotify: (notify: SipRequest) => void;
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY, SUBSCRIBE, MESSAGE, REGISTER';

export class SipStackImpl implements SipStack, TransactionContext, TransportHandler {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  readonly metrics: SipMetrics;
  readonly log: Logger | undefined;
  readonly expiry: ExpiryQueues;
  private readonly limits: ParseLimits;
  private readonly transports: Transport[] = [];
  private readonly clientTx = new Table<ClientTransaction>();
  private readonly serverTx = new Table<ServerTransaction>();
  private readonly invites = new Table<ServerRequestImpl>();
  private readonly dialogs = new Table<DialogImpl>();
  private readonly pendingSubs = new Table<PendingSubscription>();
  private handler?: (req: ServerRequest) => void;
  private closing = false;
  private bound: ListenAddress[] = [];
  private readonly advertisedHosts = new Map<Transport, string>();

  constructor(private readonly opts: SipStackOptions) {
    this.clock = opts.clock ?? systemClock;
    this.timers = { t1: opts.timers?.t1Ms ?? 500, t2: opts.timers?.t2Ms ?? 4000, t4: opts.timers?.t4Ms ?? 5000 };
    this.metrics = new SipMetrics(opts.registry);
    this.log = opts.logger;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.expiry = new ExpiryQueues(this.clock);
  }

  async listen(): Promise<void> {
    for (const l of this.opts.listen) {
      let t: Transport =
        l.transport === 'udp'
          ? new UdpTransport({ host: l.host, port: l.port, ...(this.opts.recvBufferSize ? { recvBufferSize: this.opts.recvBufferSize } : {}) })
          : new TcpTransport({ host: l.host, port: l.port, limits: this.limits, ...(this.opts.tcpIdleTimeoutMs ? { idleTimeoutMs: this.opts.tcpIdleTimeoutMs } : {}) });
      if (this.opts.wrapTransport) t = this.opts.wrapTransport(t);
      t.setHandler(this);
      await t.listen();
      this.transports.push(t);
    }
    this.bound = this.transports.map((t) => ({ transport: t.protocol as 'udp' | 'tcp', host: t.host, port: t.port }));
  }

  get addresses(): readonly ListenAddress[] {
    return this.bound;
  }

  onRequest(handler: (req: ServerRequest) => void): void {
    this.handler = handler;
  }

  private transportFor(protocol: TransportProtocol): Transport {
    const t = this.transports.find((x) => x.protocol === protocol);
    if (!t) throw new Error(`no ${protocol} transport is listening`);
    return t;
  }

  private advertised(t: Transport): string {
    let cached = this.advertisedHosts.get(t);
    if (cached === undefined) {
      cached = this.computeAdvertised(t);
      this.advertisedHosts.set(t, cached);
    }
    return cached;
  }

  private computeAdvertised(t: Transport): string {
    let h = this.opts.advertisedHost ?? t.host;
    // A wildcard bind says nothing a peer can reach: use the first external address instead.
    if (h === '0.0.0.0' || h === '::') h = firstExternalAddress(h === '::' ? 'IPv6' : 'IPv4') ?? (h === '::' ? '::1' : '127.0.0.1');
    return net.isIPv6(h) ? '[' + h + ']' : h;
  }

  contact(user = 'huddle', transport?: TransportProtocol): string {
    const t = transport ? this.transportFor(transport) : this.transports[0]!;
    return 'sip:' + user + '@' + this.advertised(t) + ':' + t.port + (t.protocol === 'udp' ? '' : ';transport=' + t.protocol);
  }

  newTag(): string {
    return randomToken(6);
  }

  addUserAgent(req: SipRequest): void {
    if (this.opts.userAgent) req.append('User-Agent', this.opts.userAgent);
  }

  // ---- sending -------------------------------------------------------------------------------

  send(msg: SipRequest | SipResponse, dest: Endpoint, transport: Transport, retransmission: boolean, onError?: (err: Error) => void): Buffer {
    if (retransmission) this.metrics.retransmission('out', msg instanceof SipRequest ? msg.method : msg.cseq.method);
    else if (msg instanceof SipRequest) this.metrics.request('out', msg.method);
    else this.metrics.response('out', msg.cseq.method, msg.status);
    const bytes = msg.toBuffer();
    transport.send(bytes, dest, onError);
    return bytes;
  }

  resend(wire: string, method: string, dest: Endpoint, transport: Transport): void {
    this.metrics.retransmission('out', method);
    transport.send(Buffer.from(wire, 'latin1'), dest);
  }

  terminated(tx: ClientTransaction | ServerTransaction): void {
    if (tx instanceof ClientTransaction) {
      if (this.clientTx.get(tx.key) === tx) this.clientTx.delete(tx.key);
      this.metrics.live[tx.isInvite ? 'ict' : 'nict']--;
    } else {
      if (this.serverTx.get(tx.key) === tx) this.serverTx.delete(tx.key);
      this.invites.delete(tx.key);
      this.metrics.live[tx.isInvite ? 'ist' : 'nist']--;
    }
  }

  /** A response made up locally (timeouts, transport errors, local 491), shaped like one from the wire. */
  localResponse(status: number, reason: string, req?: SipRequest): SipResponse {
    const res = new SipResponse(status, reason);
    if (req) {
      for (const h of req.headers) {
        if (h.key === 'via' || h.key === 'from' || h.key === 'to' || h.key === 'call-id' || h.key === 'cseq') res.headers.push({ ...h });
      }
    }
    return res;
  }

  async resolve(routing: Routing): Promise<{ dest: Endpoint; transport: Transport }> {
    if (routing.destination) return { dest: routing.destination, transport: this.transportFor(routing.destination.protocol) };
    const hop = routing.routeSet.length > 0 ? parseNameAddr(routing.routeSet[0]!).uri : routing.uri;
    const uri = parseUri(hop);
    if (uri.scheme === 'tel') throw new Error('a tel: URI needs an explicit destination');
    const protocol = (uri.params.transport?.toLowerCase() ?? routing.transport?.protocol ?? 'udp') as TransportProtocol;
    const transport = this.transportFor(protocol);
    const host = socketHost(uri.host);
    // dns.lookup follows /etc/hosts and the system resolver; SRV/NAPTR (RFC 3263) is not done.
    const ip = net.isIP(host) ? host : (await lookup(host)).address;
    return { dest: { protocol, host: ip, port: uri.port ?? (uri.scheme === 'sips' ? 5061 : 5060) }, transport };
  }

  /** Adds our Via and starts a client transaction. */
  startClientTransaction(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser, branch = newBranch()): ClientTransaction {
    this.addVia(req, transport, branch);
    return this.startPrepared(req, dest, transport, tu, branch);
  }

  /** Our Via, asking for rport (RFC 3581) so NAT in front of us still gets responses back. */
  addVia(req: SipRequest, transport: Transport, branch = newBranch()): void {
    req.prepend('Via', 'SIP/2.0/' + transport.protocol.toUpperCase() + ' ' + this.advertised(transport) + ':' + transport.port + ';branch=' + branch + ';rport');
  }

  /** Starts a client transaction for a request that already carries its Via (CANCEL reuses the INVITE's). */
  startPrepared(req: SipRequest, dest: Endpoint, transport: Transport, tu: ClientTransactionUser, branch: string): ClientTransaction {
    const tx = new ClientTransaction(this, req, dest, transport, branch, tu);
    this.clientTx.set(tx.key, tx);
    this.metrics.live[tx.isInvite ? 'ict' : 'nict']++;
    tx.start();
    return tx;
  }

  /**
   * Sends a request built by `build` (called again, with a new CSeq, to answer one 401/407
   * when credentials are given) and resolves with the final response.
   */
  async sendWithAuth(build: () => SipRequest, routing: Routing, auth: Credentials | undefined, hooks: SendHooks): Promise<SipResponse> {
    let req = build();
    let hop: { dest: Endpoint; transport: Transport };
    try {
      hop = await this.resolve(routing);
    } catch (err) {
      return this.localResponse(503, 'Service Unavailable (' + (err instanceof Error ? err.message : String(err)) + ')', req);
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

  sendOnce(req: SipRequest, dest: Endpoint, transport: Transport, hooks: SendHooks): Promise<SipResponse> {
    return new Promise((resolve) => {
      let done = false;
      this.startClientTransaction(req, dest, transport, {
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
            resolve(this.localResponse(status, reason, req));
          }
        },
      });
    });
  }

  /** A new out-of-dialog request with fresh Call-ID and From tag (§8.1.1). */
  buildOutOfDialog(method: string, target: string, opts: RequestOptions, seq = 1): SipRequest {
    const req = new SipRequest(method, target.startsWith('<') ? parseNameAddr(target).uri : target);
    for (const r of opts.route ?? []) req.append('Route', asNameAddr(r));
    req.append('Max-Forwards', '70');
    const t = this.transports[0]!;
    req.append('From', asNameAddr(opts.from ?? 'sip:huddle@' + this.advertised(t)) + ';tag=' + this.newTag());
    req.append('To', asNameAddr(opts.to ?? req.uri));
    req.append('Call-ID', opts.callId ?? randomToken(12) + '@' + this.advertised(t));
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
      req.append('Contact', '<' + this.contact(opts.contactUser, this.transports.some((x) => x.protocol === protocol) ? protocol : undefined) + '>');
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
      const dialog = this.createUacDialog(req, response, this.transportFor(this.protocolOf(req)), opts.destination);
      dialog.notifyHandler = opts.onNotify;
      return { response, dialog };
    } finally {
      for (const k of keys) this.pendingSubs.delete(k);
    }
  }

  private protocolOf(req: SipRequest): TransportProtocol {
    return req.via.transport.toLowerCase() as TransportProtocol;
  }

  createUacDialog(req: SipRequest, res: SipResponse, transport: Transport, destination?: Endpoint): DialogImpl {
    const d = new DialogImpl(this, {
      role: 'uac',
      callId: req.callId,
      localTag: req.fromTag ?? '',
      remoteTag: res.toTag ?? '',
      localUri: req.get('from')!,
      remoteUri: res.get('to')!,
      remoteTarget: contactUri(res) ?? req.uri,
      routeSet: res.getAll('record-route').reverse(),
      localSeq: req.cseq.seq,
      initialRequest: req,
      transport,
      ...(destination ? { destination } : {}),
    });
    this.addDialog(d);
    return d;
  }

  createUasDialog(sreq: ServerRequestImpl, res: SipResponse): DialogImpl {
    const req = sreq.message;
    const d = new DialogImpl(this, {
      role: 'uas',
      callId: req.callId,
      localTag: sreq.localTag!,
      remoteTag: req.fromTag ?? '',
      localUri: res.get('to')!,
      remoteUri: req.get('from')!,
      remoteTarget: contactUri(req) ?? req.from.uri,
      routeSet: req.getAll('record-route'),
      localSeq: 100,
      remoteSeq: req.cseq.seq,
      initialRequest: req,
      transport: sreq.tx.transport,
      flow: sreq.source,
    });
    this.addDialog(d);
    return d;
  }

  private addDialog(d: DialogImpl): void {
    this.dialogs.set(d.id, d);
    this.metrics.live.dialogs++;
  }

  /** The INVITE got its final response: CANCEL can no longer affect it. */
  inviteAnswered(key: string): void {
    this.invites.delete(key);
  }

  removeDialog(d: DialogImpl): void {
    if (this.dialogs.get(d.id) === d) {
      this.dialogs.delete(d.id);
      this.metrics.live.dialogs--;
    }
  }

  findDialog(callId: string, localTag: string, remoteTag: string): DialogImpl | undefined {
    return this.dialogs.get(dialogKey(callId, localTag, remoteTag));
  }

  buildResponse(sreq: ServerRequestImpl, status: number, opts: ResponseOptions, withContact: boolean): SipResponse {
    const req = sreq.message;
    const res = new SipResponse(status, opts.reason ?? reasonPhrase(status));
    const tag = sreq.localTag && req.toTag === undefined ? ';tag=' + sreq.localTag : '';
    const keepRR = createsDialog(req.method) && status > 100 && status < 300;
    for (const h of req.headers) {
      const k = h.key;
      // Copied headers share the request's entries: nothing edits a response's headers in place.
      if (k === 'via' || k === 'from' || k === 'call-id' || k === 'cseq' || (keepRR && k === 'record-route')) res.headers.push(h);
      else if (k === 'to') res.headers.push({ name: h.name, key: k, value: tag ? h.value + tag : h.value });
    }
    const contactWanted = withContact || (req.method === 'INVITE' && status > 100 && status < 300);
    if (contactWanted) res.append('Contact', '<' + (opts.contact ?? this.contact(undefined, sreq.tx.transport.protocol)) + '>');
    if (status === 405 || (req.method === 'OPTIONS' && status < 300)) res.append('Allow', ALLOW);
    if (this.opts.userAgent) res.append('Server', this.opts.userAgent);
    applyHeaders(res, opts.headers);
    applyBody(res, opts);
    return res;
  }

  // ---- receiving -----------------------------------------------------------------------------

  onMessage(data: Buffer, source: Endpoint, transport: Transport): void {
    const r = parseMessage(data, this.limits, transport.reliable);
    if (!r.ok) {
      this.metrics.parseError(transport.protocol);
      this.log?.debug({ status: r.status, reason: r.reason, source }, 'rejected malformed SIP message');
      if (!r.isResponse) this.answerMalformed(r, source, transport);
      return;
    }
    const msg = r.message;
    try {
      if (msg instanceof SipRequest) this.receiveRequest(msg, source, transport);
      else this.receiveResponse(msg);
    } catch (err) {
      // A TU bug must not take the socket loop down; the peer sees a 500 when it was a request.
      this.log?.error({ err }, 'error handling SIP message');
      if (msg instanceof SipRequest && msg.method !== 'ACK') this.answerStateless(msg, 500, 'Server Internal Error', source, transport);
    }
  }

  onFramingError(status: number, reason: string, head: Buffer, source: Endpoint, transport: Transport): void {
    this.metrics.parseError(transport.protocol);
    const r = parseMessage(head, { ...this.limits, maxMessageBytes: Number.MAX_SAFE_INTEGER }, true);
    const partial = r.ok ? (r.message instanceof SipRequest ? r.message : undefined) : r.request;
    if (r.ok && !partial) return;
    this.answerMalformed({ ok: false, status, reason, isResponse: false, ...(partial ? { request: partial } : {}) }, source, transport);
  }

  private answerMalformed(r: Extract<ParseResult, { ok: false }>, source: Endpoint, transport: Transport): void {
    if (r.request?.method === 'ACK') return;
    const res = this.localResponse(r.status, r.reason, r.request);
    this.metrics.response('out', r.request?.method ?? 'UNKNOWN', r.status);
    transport.send(res.toBuffer(), source);
  }

  private answerStateless(req: SipRequest, status: number, reason: string, source: Endpoint, transport: Transport): void {
    const res = this.localResponse(status, reason, req);
    transport.send(res.toBuffer(), source);
  }

  /** §18.2.1 and RFC 3581: record where the request really came from in the top Via. */
  private stampVia(req: SipRequest, source: Endpoint): void {
    const via = req.via;
    const rport = via.params.rport !== undefined;
    if (!rport && via.host === source.host) return;
    via.params.received = source.host;
    if (rport) via.params.rport = String(source.port);
    const idx = req.headers.findIndex((h) => h.key === 'via');
    const h = req.headers[idx]!;
    if (h.value.indexOf(',') < 0) h.value = formatVia(via);
    else h.value = [formatVia(via), ...splitList(h.value).slice(1)].join(', ');
  }

  /** §18.2.2: where responses to this request go. */
  private responseDestination(req: SipRequest, source: Endpoint, transport: Transport): Endpoint {
    if (transport.reliable) return source;
    const via = req.via;
    if (via.params.rport) return source;
    const host = via.params.received ?? (net.isIP(socketHost(via.host)) ? socketHost(via.host) : source.host);
    const port = via.port ?? 5060;
    // The usual case (sent-by is where it came from): share the source rather than keep a copy for 64*T1.
    return host === source.host && port === source.port ? source : { protocol: source.protocol, host, port };
  }

  /** §17.2.3 matching key; RFC 2543 peers (no magic cookie) are matched on the request's identifiers. */
  private serverKey(req: SipRequest, method = req.method === 'ACK' ? 'INVITE' : req.method): string {
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

  private receiveRequest(req: SipRequest, source: Endpoint, transport: Transport): void {
    this.stampVia(req, source);
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
    const tx = new ServerTransaction(this, key, method, this.responseDestination(req, source, transport), transport);
    this.serverTx.set(key, tx);
    this.metrics.live[tx.isInvite ? 'ist' : 'nist']++;
    const toTag = req.toTag;
    const dialog = toTag !== undefined ? this.dialogFor(req, toTag, transport) : undefined;
    const sreq = new ServerRequestImpl(this, tx, req, source, dialog);
    if (this.closing) {
      sreq.respond(503, { headers: { 'Retry-After': '5' } });
      return;
    }
    if (method === 'CANCEL') {
      this.receiveCancel(sreq);
      return;
    }
    if (method === 'INVITE') this.invites.set(key, sreq);
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
      if (!dialog) sreq.respond(481);
      else dialog.receiveRequest(sreq);
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
    const nd = new DialogImpl(this, {
      role: 'uac',
      callId: req.callId,
      localTag: toTag,
      remoteTag: req.fromTag ?? '',
      localUri: sub.request.get('from')!,
      remoteUri: req.get('from')!,
      remoteTarget: contactUri(req) ?? req.from.uri,
      routeSet: req.getAll('record-route'),
      localSeq: sub.request.cseq.seq,
      initialRequest: sub.request,
      transport,
    });
    nd.notifyHandler = sub.onNotify;
    this.addDialog(nd);
    return nd;
  }

  private receiveAck(req: SipRequest): void {
    // ACK for a 2xx: end-to-end, matched to the dialog (§13.3.1.4). The common case, so tried first.
    const d = this.dialogs.get(dialogKey(req.callId, req.toTag ?? '', req.fromTag ?? ''));
    if (d?.receiveAck(req)) return;
    // ACK for a non-2xx final: it belongs to the INVITE server transaction (§17.2.1).
    const tx = this.serverTx.get(this.serverKey(req));
    if (tx && (tx.state === 'completed' || tx.state === 'confirmed')) tx.receiveRequest(req);
  }

  private receiveCancel(sreq: ServerRequestImpl): void {
    const inviteKey = this.serverKey(sreq.message, 'INVITE');
    const invite = this.invites.get(inviteKey);
    if (!invite) {
      // §9.2: a CANCEL for an INVITE already answered finally still matches it (200, no effect).
      sreq.respond(this.serverTx.has(inviteKey) ? 200 : 481);
      return;
    }
    // §9.2: the CANCEL's 200 carries the INVITE response's To tag.
    invite.localTag ??= this.newTag();
    sreq.localTag = invite.localTag;
    sreq.respond(200);
    invite.cancel(sreq.message);
  }

  private receiveResponse(res: SipResponse): void {
    const method = res.cseq.method;
    this.metrics.response('in', method, res.status);
    const branch = res.via.branch;
    // clientKey() files ACK under INVITE; a response never answers an ACK, so that CSeq matches nothing.
    const tx = branch && method !== 'ACK' ? this.clientTx.get(clientKey(branch, method)) : undefined;
    if (tx) {
      tx.receive(res);
      return;
    }
    if (method === 'INVITE' && res.status >= 200 && res.status < 300) {
      // A 2xx retransmitted after the transaction ended: re-send our ACK (§13.2.2.4).
      this.dialogs.get(dialogKey(res.callId, res.fromTag ?? '', res.toTag ?? ''))?.resendAck(res);
    }
  }

  // ---- shutdown ------------------------------------------------------------------------------

  async close(drainMs = 2000): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + drainMs;
    const busy = () =>
      [...this.serverTx.values()].some((t) => t.state === 'trying' || t.state === 'proceeding') ||
      [...this.clientTx.values()].some((t) => t.state === 'calling' || t.state === 'trying' || t.state === 'proceeding');
    while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const t of [...this.clientTx.values()]) t.terminate();
    for (const t of [...this.serverTx.values()]) t.terminate();
    for (const d of [...this.dialogs.values()]) d.terminate('closed');
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

function firstExternalAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === family && !a.internal) return a.address;
  }
  return undefined;
}

/** The URI of the first Contact, if any. */
export function contactUri(msg: SipRequest | SipResponse): string | undefined {
  const c = msg.getAll('contact')[0];
  if (!c || c === '*') return undefined;
  try {
    return parseNameAddr(c).uri;
  } catch {
    return undefined;
  }
}
