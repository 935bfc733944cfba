/** Dialogs (§12-§15): in-dialog requests both ways, ACK for 2xx, 2xx retransmission until the ACK. */
import type { TimerHandle } from './clock.js';
import type { DialogCore } from './core.js';
import { parseNameAddr } from './headers.js';
import { localResponse, SipRequest, type SipResponse } from './message.js';
import { firstRetransmit, nextTimerG, sixtyFourT1 } from './timers.js';
import type { ServerTransaction } from './transaction.js';
import type { Endpoint, Transport } from './transport/transport.js';
import type { Dialog, DialogRequestOptions, DialogState, DialogTermination, ServerRequest, TerminationCause } from './types.js';
import { applyBody, applyHeaders } from './util.js';

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return callId + '|' + localTag + '|' + remoteTag;
}

/** Methods whose 2xx creates a dialog (INVITE, SUBSCRIBE - RFC 6665). */
export function createsDialog(method: string): boolean {
  return method === 'INVITE' || method === 'SUBSCRIBE';
}

interface AnswerRetransmit {
  seq: number;
  response: SipResponse;
  tx: ServerTransaction;
  timer?: TimerHandle;
  deadline: TimerHandle;
  interval: number;
}

interface DialogInit {
  role: 'uac' | 'uas';
  callId: string;
  localTag: string;
  remoteTag: string;
  /** From/To header values as this side writes them (with tags). */
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  routeSet: string[];
  localSeq: number;
  remoteSeq?: number;
  initialRequest: SipRequest;
  transport: Transport;
  flow?: Endpoint;
  /** Preferred next hop for in-dialog requests. */
  destination?: Endpoint;
}

export class DialogImpl implements Dialog {
  readonly id: string;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  readonly localUri: string;
  readonly remoteUri: string;
  remoteTarget: string;
  readonly routeSet: readonly string[];
  readonly role: 'uac' | 'uas';
  state: 'confirmed' | 'terminated' = 'confirmed';
  readonly initialRequest: SipRequest;
  readonly flow?: Endpoint;
  readonly transport: Transport;
  readonly terminated: Promise<DialogTermination>;
  localSeq: number;
  remoteSeq?: number;
  pendingOutInvite = false;
  pendingInInvite = false;
  /** SUBSCRIBE usage: NOTIFYs go here and are answered 200 by the stack. */
  notifyHandler?: (notify: SipRequest) => void;
  private readonly destination?: Endpoint;
  /** Our Contact as the peer knows it, when the dialog was restored (this process may listen elsewhere). */
  private contact?: string;
  private requestHandler?: (req: ServerRequest) => void;
  private readonly ackHandlers: ((ack: SipRequest) => void)[] = [];
  private readonly termHandlers: ((t: DialogTermination) => void)[] = [];
  private resolveTerminated!: (t: DialogTermination) => void;
  private answer: AnswerRetransmit | undefined;
  private ackedSeq?: number;
  /** ACKs we sent for 2xx, by CSeq: re-sent when the 2xx is retransmitted (§13.2.2.4). */
  private readonly acks = new Map<number, { ack: SipRequest; dest: Endpoint; transport: Transport }>();

  /** Through the factories below, which also add the dialog to the core's table. */
  private constructor(
    private readonly core: DialogCore<DialogImpl>,
    init: DialogInit,
  ) {
    this.role = init.role;
    this.callId = init.callId;
    this.localTag = init.localTag;
    this.remoteTag = init.remoteTag;
    this.localUri = init.localUri;
    this.remoteUri = init.remoteUri;
    this.remoteTarget = init.remoteTarget;
    this.routeSet = init.routeSet;
    this.localSeq = init.localSeq;
    if (init.remoteSeq !== undefined) this.remoteSeq = init.remoteSeq;
    this.initialRequest = init.initialRequest;
    this.transport = init.transport;
    if (init.flow) this.flow = init.flow;
    if (init.destination) this.destination = init.destination;
    this.id = dialogKey(this.callId, this.localTag, this.remoteTag);
    this.terminated = new Promise((resolve) => (this.resolveTerminated = resolve));
  }

  /** §12.1.2: the dialog a 2xx to our INVITE or SUBSCRIBE creates, added to the core's table. */
  static uac(core: DialogCore<DialogImpl>, req: SipRequest, res: SipResponse, transport: Transport, destination?: Endpoint): DialogImpl {
    const d = new DialogImpl(core, {
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
    core.addDialog(d);
    return d;
  }

  /** §12.1.1: the dialog our 2xx (`res`, To tag `localTag`) to `req` creates, added to the core's table. */
  static uas(core: DialogCore<DialogImpl>, req: SipRequest, localTag: string, res: SipResponse, transport: Transport, flow: Endpoint): DialogImpl {
    const d = new DialogImpl(core, {
      role: 'uas',
      callId: req.callId,
      localTag,
      remoteTag: req.fromTag ?? '',
      localUri: res.get('to')!,
      remoteUri: req.get('from')!,
      remoteTarget: contactUri(req) ?? req.from.uri,
      routeSet: req.getAll('record-route'),
      localSeq: 100,
      remoteSeq: req.cseq.seq,
      initialRequest: req,
      transport,
      flow,
    });
    core.addDialog(d);
    return d;
  }

  /**
   * RFC 6665 §4.1.2.4: a NOTIFY that arrives before the 2xx to our SUBSCRIBE creates the dialog,
   * its From tag being the remote tag; added to the core's table.
   */
  static fromNotify(core: DialogCore<DialogImpl>, subscribe: SipRequest, notify: SipRequest, transport: Transport): DialogImpl {
    const d = new DialogImpl(core, {
      role: 'uac',
      callId: notify.callId,
      localTag: subscribe.fromTag ?? '',
      remoteTag: notify.fromTag ?? '',
      localUri: subscribe.get('from')!,
      remoteUri: notify.get('from')!,
      remoteTarget: contactUri(notify) ?? notify.from.uri,
      routeSet: notify.getAll('record-route'),
      localSeq: subscribe.cseq.seq,
      initialRequest: subscribe,
      transport,
    });
    core.addDialog(d);
    return d;
  }

  /**
   * A confirmed dialog from an exported state, added to the core's table. The request that
   * created it is gone with the process that took it: a stand-in carries its identifiers and our
   * Contact.
   */
  static restore(core: DialogCore<DialogImpl>, state: DialogState, transport: Transport): DialogImpl {
    const initial = new SipRequest('INVITE', state.remoteTarget);
    initial.append('From', state.role === 'uac' ? state.localUri : state.remoteUri);
    initial.append('To', state.role === 'uac' ? state.remoteUri : state.localUri);
    initial.append('Call-ID', state.callId);
    initial.append('CSeq', `${state.role === 'uac' ? state.localSeq : (state.remoteSeq ?? 1)} INVITE`);
    initial.append('Contact', `<${state.contact}>`);
    const d = new DialogImpl(core, {
      role: state.role,
      callId: state.callId,
      localTag: state.localTag,
      remoteTag: state.remoteTag,
      localUri: state.localUri,
      remoteUri: state.remoteUri,
      remoteTarget: state.remoteTarget,
      routeSet: [...state.routeSet],
      localSeq: state.localSeq,
      ...(state.remoteSeq !== undefined ? { remoteSeq: state.remoteSeq } : {}),
      initialRequest: initial,
      transport,
      ...(state.flow ? { flow: { ...state.flow } } : {}),
    });
    d.contact = state.contact;
    core.addDialog(d);
    return d;
  }

  exportState(): DialogState {
    const state: DialogState = {
      role: this.role,
      callId: this.callId,
      localTag: this.localTag,
      remoteTag: this.remoteTag,
      localUri: this.localUri,
      remoteUri: this.remoteUri,
      remoteTarget: this.remoteTarget,
      routeSet: [...this.routeSet],
      localSeq: this.localSeq,
      protocol: this.transport.protocol,
      contact: this.contact ?? this.core.contact(this.contactUser(), this.transport.protocol),
    };
    if (this.remoteSeq !== undefined) state.remoteSeq = this.remoteSeq;
    if (this.flow) state.flow = { protocol: this.flow.protocol, host: this.flow.host, port: this.flow.port };
    return state;
  }

  forget(): void {
    this.terminate('closed');
  }

  onRequest(handler: (req: ServerRequest) => void): void {
    this.requestHandler = handler;
  }

  onAck(handler: (ack: SipRequest) => void): void {
    this.ackHandlers.push(handler);
  }

  onTerminated(handler: (t: DialogTermination) => void): void {
    this.termHandlers.push(handler);
  }

  /** Builds an in-dialog request (§12.2.1.1); loose routing only (every Route is ;lr). */
  buildRequest(method: string, seq: number, opts: DialogRequestOptions): SipRequest {
    const req = new SipRequest(method, this.remoteTarget);
    for (const r of this.routeSet) req.append('Route', r);
    req.append('Max-Forwards', '70');
    req.append('From', this.localUri);
    req.append('To', this.remoteUri);
    req.append('Call-ID', this.callId);
    req.append('CSeq', seq + ' ' + method);
    if (method === 'INVITE' || method === 'UPDATE' || method === 'SUBSCRIBE' || method === 'NOTIFY' || method === 'REFER') {
      req.append('Contact', '<' + (this.contact ?? this.core.contact(this.contactUser(), this.transport.protocol)) + '>');
    }
    this.core.addUserAgent(req);
    applyHeaders(req, opts.headers);
    applyBody(req, opts);
    return req;
  }

  private contactUser(): string {
    const m = /^[^<]*<sips?:([^@>;]+)@/.exec(this.localUri);
    return m?.[1] ?? 'huddle';
  }

  private nextHop(opts: DialogRequestOptions): Endpoint | undefined {
    if (opts.destination) return opts.destination;
    if (this.destination) return this.destination;
    // Over a stream the peer's own connection is the reliable way back (RFC 5923 style reuse).
    if (this.flow && this.transport.reliable && this.flow.connectionId) return this.flow;
    return undefined;
  }

  async request(method: string, opts: DialogRequestOptions = {}): Promise<SipResponse> {
    if (this.state === 'terminated') return localResponse(481, 'Dialog Terminated');
    if (method === 'ACK' || method === 'CANCEL') throw new Error(`${method} is sent by the stack, not through Dialog.request`);
    const isInvite = method === 'INVITE';
    if (isInvite && (this.pendingOutInvite || this.pendingInInvite)) return localResponse(491, 'Request Pending');
    if (isInvite) this.pendingOutInvite = true;
    try {
      let lastAck: SipRequest | undefined;
      const res = await this.core.sendWithAuth(
        () => this.buildRequest(method, ++this.localSeq, opts),
        { uri: this.remoteTarget, routeSet: this.routeSet, destination: this.nextHop(opts), transport: this.transport },
        opts.auth,
        {
          on2xx: (r, req, dest, transport) => {
            if (!isInvite) return;
            // §13.2.2.4: ACK every 2xx (first and retransmissions) of a re-INVITE.
            if (!lastAck) {
              lastAck = this.buildAck(req);
              this.core.addVia(lastAck, transport);
            }
            this.acks.set(req.cseq.seq, { ack: lastAck, dest, transport });
            this.core.send(lastAck, dest, transport, false);
            this.refreshTarget(r);
          },
        },
      );
      return res;
    } finally {
      if (isInvite) this.pendingOutInvite = false;
    }
  }

  async bye(opts: DialogRequestOptions = {}): Promise<SipResponse> {
    if (this.state === 'terminated') return localResponse(481, 'Dialog Terminated');
    const res = this.sendBye(opts);
    this.terminate('local-bye');
    return res;
  }

  private sendBye(opts: DialogRequestOptions): Promise<SipResponse> {
    return this.core.sendWithAuth(
      () => this.buildRequest('BYE', ++this.localSeq, opts),
      { uri: this.remoteTarget, routeSet: this.routeSet, destination: this.nextHop(opts), transport: this.transport },
      opts.auth,
      {},
    );
  }

  /** ACK for a 2xx (§13.2.2.4): new transaction-less request, same CSeq number as the INVITE. */
  buildAck(invite: SipRequest, extra: { headers?: DialogRequestOptions['headers']; body?: Buffer | string; contentType?: string } = {}): SipRequest {
    const ack = new SipRequest('ACK', this.remoteTarget);
    for (const r of this.routeSet) ack.append('Route', r);
    ack.append('Max-Forwards', '70');
    ack.append('From', this.localUri);
    ack.append('To', this.remoteUri);
    ack.append('Call-ID', this.callId);
    ack.append('CSeq', invite.cseq.seq + ' ACK');
    for (const a of invite.getAll('proxy-authorization')) ack.append('Proxy-Authorization', a);
    for (const a of invite.getAll('authorization')) ack.append('Authorization', a);
    this.core.addUserAgent(ack);
    applyHeaders(ack, extra.headers);
    applyBody(ack, extra);
    return ack;
  }

  /** Sends the ACK for the dialog-creating 2xx and remembers it for retransmitted 2xx. */
  sendAck(ack: SipRequest, dest: Endpoint, transport: Transport): void {
    this.core.addVia(ack, transport);
    this.acks.set(ack.cseq.seq, { ack, dest, transport });
    this.core.send(ack, dest, transport, false);
  }

  /** A retransmitted (or late) 2xx for one of our INVITEs. */
  resendAck(res: SipResponse): void {
    const sent = this.acks.get(res.cseq.seq);
    if (sent) this.core.send(sent.ack, sent.dest, sent.transport, true);
  }

  private refreshTarget(msg: SipRequest | SipResponse): void {
    const contact = msg.getAll('contact')[0];
    if (!contact) return;
    const m = /<([^>]+)>/.exec(contact);
    this.remoteTarget = m ? m[1]! : contact.split(';')[0]!.trim();
  }

  /** UAS core: retransmit the 2xx to an INVITE until its ACK (§13.3.1.4). */
  startAnswerRetransmit(res: SipResponse, tx: ServerTransaction): void {
    this.stopAnswerRetransmit();
    const { clock, timers } = this.core;
    // §13.3.1.4: retransmitted "with an interval that starts at T1 seconds and doubles for each
    // retransmission until it reaches T2 seconds"; no ACK after 64*T1 ends the dialog.
    const a: AnswerRetransmit = {
      seq: res.cseq.seq,
      response: res,
      tx,
      interval: firstRetransmit(timers),
      deadline: clock.setTimer(sixtyFourT1(timers), () => this.answerNotAcknowledged(a)),
    };
    if (!tx.transport.reliable) a.timer = clock.setTimer(a.interval, () => this.retransmitAnswer(a));
    this.answer = a;
  }

  private retransmitAnswer(a: AnswerRetransmit): void {
    if (this.answer !== a) return;
    this.core.send(a.response, a.tx.dest, a.tx.transport, true);
    a.interval = nextTimerG(this.core.timers, a.interval);
    a.timer = this.core.clock.setTimer(a.interval, () => this.retransmitAnswer(a));
  }

  /** No ACK within 64*T1: the dialog is confirmed but dead, so it is ended with BYE. */
  private answerNotAcknowledged(a: AnswerRetransmit): void {
    if (this.answer !== a) return;
    this.stopAnswerRetransmit();
    if (this.state === 'confirmed') {
      this.sendBye({}).catch(() => undefined);
      this.terminate('no-ack');
    }
  }

  private stopAnswerRetransmit(): void {
    if (!this.answer) return;
    this.answer.timer?.cancel();
    this.answer.deadline.cancel();
    this.answer = undefined;
  }

  /** True when the ACK acknowledged our 2xx (later copies of it too). */
  receiveAck(ack: SipRequest): boolean {
    const seq = ack.cseq.seq;
    if (this.answer && seq === this.answer.seq) {
      this.stopAnswerRetransmit();
      this.ackedSeq = seq;
      for (const h of this.ackHandlers) h(ack);
      return true;
    }
    return seq === this.ackedSeq;
  }

  /** An in-dialog request matched this dialog (§12.2.2). */
  receiveRequest(sreq: ServerRequest): void {
    const req = sreq.message;
    const seq = req.cseq.seq;
    if (this.remoteSeq !== undefined && seq <= this.remoteSeq) {
      sreq.respond(500, { reason: 'CSeq Out Of Order' });
      return;
    }
    this.remoteSeq = seq;
    switch (req.method) {
      case 'BYE':
        sreq.respond(200);
        this.terminate('remote-bye', req);
        return;
      case 'INVITE':
        if (this.pendingOutInvite) {
          sreq.respond(491);
          return;
        }
        if (this.pendingInInvite) {
          sreq.respond(500, { reason: 'Re-INVITE Pending', headers: { 'Retry-After': String(Math.floor(Math.random() * 10)) } });
          return;
        }
        this.pendingInInvite = true;
        this.refreshTarget(req);
        break;
      case 'UPDATE':
        this.refreshTarget(req);
        break;
      case 'NOTIFY':
        if (this.notifyHandler) {
          this.notifyHandler(req);
          sreq.respond(200);
          if ((req.get('subscription-state') ?? '').trim().toLowerCase().startsWith('terminated')) this.terminate('subscription-terminated', req);
          return;
        }
        break;
    }
    if (!this.requestHandler) {
      const m = req.method;
      sreq.respond(m === 'OPTIONS' || m === 'INFO' || m === 'NOTIFY' ? 200 : m === 'INVITE' || m === 'UPDATE' ? 488 : 501);
      return;
    }
    try {
      this.requestHandler(sreq);
    } catch (err) {
      this.core.log?.error({ err, method: req.method }, 'in-dialog request handler threw');
      if (!sreq.answered) sreq.respond(500);
    }
  }

  /** A re-INVITE we received got its final response. */
  incomingInviteAnswered(): void {
    this.pendingInInvite = false;
  }

  terminate(cause: TerminationCause, request?: SipRequest): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.stopAnswerRetransmit();
    this.core.removeDialog(this);
    const t: DialogTermination = request ? { cause, request } : { cause };
    this.resolveTerminated(t);
    for (const h of this.termHandlers) h(t);
  }
}

/** The URI of the first Contact, if any. */
function contactUri(msg: SipRequest | SipResponse): string | undefined {
  const c = msg.getAll('contact')[0];
  if (!c || c === '*') return undefined;
  try {
    return parseNameAddr(c).uri;
  } catch {
    return undefined;
  }
}
