/**
 * The B2BUA: the adapter between SIP (our stack), media-controller (NATS) and T-Library (NATS) on
 * one side and the pure call model on the other. Every input to the model runs through one serial
 * queue, and the model's outputs are carried out in the order given, so the model sees a
 * consistent world. SDP never goes phone to phone: each leg's SDP is exchanged with
 * media-controller (one rtpengine leg per party).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { parse as parseSdp } from 'sdp-transform';
import type { TlibOrigin } from '../common/nats/tlib-contract.js';
import type { TEvent, TRequest } from '../common/tlib/messages.js';
import type { CallModel, ConferenceMember, IncomingFrom, ModelInput, ModelOutput, SipConnect } from './model/index.js';
import type { MediaClient } from './media-client.js';
import type { Dialog, Endpoint, OutgoingInvite, ServerRequest, SipRequest, SipStack } from './sip/index.js';
import { uriUser } from './sip/index.js';
import { CONFERENCE_INFO_CONTENT_TYPE, conferenceInfoXml, type ConferenceInfo } from './conference-info.js';
import type { DnDirectory } from './dn-directory.js';
import type { RegistrarService } from './registrar-service.js';

/** Headers that carry a party's identity across an inter-trunk between two of our sites. */
export const InterTrunkHeaders = { alias: 'X-Huddle-Alias', location: 'X-Huddle-Location' } as const;

interface Leg {
  legId: string;
  bridgeId: string;
  direction: 'inbound' | 'outbound';
  /** Inbound: the INVITE we answer. */
  invite?: ServerRequest;
  /** Outbound: the INVITE we sent. */
  outgoing?: OutgoingInvite;
  dialog?: Dialog;
  /** The SDP media-controller gave for the phone (answer for inbound, offer for outbound). */
  localSdp?: string;
  /** Where to send requests for this leg when the phone is behind NAT (its registered flow). */
  flow?: Endpoint;
  /** The Trunk DN the leg runs over, if any. */
  trunk?: string;
  phoneHeld: boolean;
  released: boolean;
}

interface Subscription {
  dialog: Dialog;
  /** A ConnID, or a DN whose current conference is followed. */
  key: string;
  expiresAt: number;
}

export interface B2buaOptions {
  stack: SipStack;
  model: CallModel;
  media: MediaClient;
  registrar: RegistrarService;
  directory: DnDirectory;
  publish: (dn: string, event: TEvent, origin?: TlibOrigin) => void;
  location: () => string;
  log: Logger;
}

export class B2bua {
  private queue: Promise<void> = Promise.resolve();
  private readonly pendingIncoming = new Map<string, { invite: ServerRequest; offer: string; trunk?: string }>();
  private readonly legs = new Map<string, Leg>();
  private readonly subscriptions = new Set<Subscription>();
  private readonly conferences = new Map<string, Extract<ModelOutput, { kind: 'conference.state' }>>();
  /** Replies collected for the T-Library request being handled. */
  private replies: TEvent[] | undefined;

  constructor(private readonly o: B2buaOptions) {}

  /** Runs a model input through the serial queue; resolves when its outputs are carried out. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.then(
      () => undefined,
      (err: Error) => this.o.log.error({ err: err.stack }, 'signaling job failed'),
    );
    return run;
  }

  private async input(input: ModelInput): Promise<void> {
    const outputs = this.o.model.handle(input);
    await this.execute(outputs);
  }

  /** A T-Library request from a gateway; resolves with the events answering it at once. */
  tlibRequest(request: TRequest, origin: TlibOrigin): Promise<TEvent[]> {
    return this.enqueue(async () => {
      this.replies = [];
      try {
        await this.input({ kind: 'tlib.request', request, origin });
        return this.replies;
      } finally {
        this.replies = undefined;
      }
    });
  }

  /** A gateway stopped or went silent: its clients' registrations end. */
  gatewayGone(gateway: string): void {
    void this.enqueue(() => this.input({ kind: 'tlib.gatewayGone', gateway }));
  }

  mediaEvent(input: Extract<ModelInput, { kind: 'media.event' }>): void {
    void this.enqueue(() => this.input(input));
  }

  /** Out-of-dialog SIP requests other than REGISTER (the registrar service takes those). */
  onRequest(req: ServerRequest): void {
    switch (req.method) {
      case 'INVITE':
        this.onInvite(req);
        return;
      case 'SUBSCRIBE':
        this.onSubscribe(req);
        return;
      case 'OPTIONS':
        req.respond(200, { headers: { Allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, INFO, UPDATE', Accept: 'application/sdp' } });
        return;
      default:
        req.respond(405, { headers: { Allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, SUBSCRIBE' } });
    }
  }

  private onInvite(req: ServerRequest): void {
    const msg = req.message;
    const offer = msg.body.toString();
    if (offer.length === 0) {
      req.respond(488, { reason: 'An SDP offer is required in the INVITE' });
      return;
    }
    const dialled = uriUser(msg.requestUri) ?? uriUser(msg.to.uri);
    if (!dialled) {
      req.respond(404, { reason: 'No number in the Request-URI' });
      return;
    }
    const from = this.identifyCaller(msg, req.source);
    if ('error' in from) {
      req.respond(403, { reason: from.error });
      return;
    }
    const sipRef = randomBytes(6).toString('hex');
    this.pendingIncoming.set(sipRef, { invite: req, offer, ...('trunk' in from ? { trunk: from.trunk } : {}) });
    req.onCancel(() => {
      void this.enqueue(async () => {
        const leg = [...this.legs.values()].find((l) => l.invite === req);
        this.pendingIncoming.delete(sipRef);
        if (leg && !leg.released) {
          this.ended(leg);
          await this.input({ kind: 'sip.released', legId: leg.legId });
        }
      });
    });
    void this.enqueue(() => this.input({ kind: 'sip.incoming', sipRef, from, to: dialled }));
  }

  /** A Trunk by where the request came from, else one of our DNs by the From user. */
  private identifyCaller(msg: SipRequest, source: Endpoint): IncomingFrom | { error: string } {
    const trunk = this.o.directory.trunkAt(source.host, source.port) ?? this.o.directory.trunkAt(msg.via.host, msg.via.port ?? 5060);
    const fromUser = uriUser(msg.from.uri);
    if (trunk) {
      const from: IncomingFrom = { trunk: trunk.number, number: fromUser ?? 'anonymous' };
      if (trunk.options['sip-server-inter-trunk']) {
        const alias = msg.get(InterTrunkHeaders.alias);
        const location = msg.get(InterTrunkHeaders.location);
        if (alias) from.alias = alias;
        if (location) from.location = location;
      }
      return from;
    }
    if (!fromUser) return { error: 'Caller has no user part' };
    const dn = this.o.directory.dn(fromUser);
    if (!dn || dn.type === 'Trunk') return { error: `DN ${fromUser} is not configured` };
    return { dn: fromUser };
  }

  private async execute(outputs: ModelOutput[]): Promise<void> {
    for (let i = 0; i < outputs.length; ) {
      const run = pipelinedMediaRun(outputs, i);
      await Promise.all(run.map((out) => this.carryOutOrReport(out)));
      i += run.length;
    }
  }

  private async carryOutOrReport(out: ModelOutput): Promise<void> {
    try {
      await this.carryOut(out);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, output: out.kind }, 'output failed');
      await this.onOutputFailure(out, err as Error);
    }
  }

  private async carryOut(out: ModelOutput): Promise<void> {
    switch (out.kind) {
      case 'tlib.event':
        this.o.publish(out.to, out.event, out.origin);
        return;
      case 'tlib.reply':
        if (this.replies) this.replies.push(out.event);
        return;
      case 'media':
        await this.o.media.send(out.command, out.colocateWith);
        return;
      case 'sip.connect':
        if (out.direction === 'inbound') await this.connectInbound(out);
        else await this.connectOutbound(out);
        return;
      case 'sip.ringing': {
        const leg = this.legs.get(out.legId);
        if (leg?.invite && !leg.invite.answered) leg.invite.respond(180);
        return;
      }
      case 'sip.answer':
        this.answerInbound(out.legId);
        return;
      case 'sip.reject': {
        const pending = this.pendingIncoming.get(out.sipRef);
        this.pendingIncoming.delete(out.sipRef);
        if (pending && !pending.invite.answered) pending.invite.respond(out.status);
        return;
      }
      case 'sip.release':
        this.release(out.legId, out.status);
        return;
      case 'sip.remoteAnswer':
        await this.remoteAnswer(out.legId);
        return;
      case 'conference.state':
        this.conferenceChanged(out);
        return;
      case 'report':
        this.o.log[out.level]({ code: out.code, connId: out.connId, legId: out.legId }, out.message);
        return;
    }
  }

  /** A leg whose SIP or media set-up failed is reported to the model as failed or released. */
  private async onOutputFailure(out: ModelOutput, err: Error): Promise<void> {
    if (out.kind !== 'sip.connect') return;
    const leg = this.legs.get(out.legId);
    if (out.direction === 'inbound') {
      const pending = this.pendingIncoming.get(out.sipRef);
      this.pendingIncoming.delete(out.sipRef);
      if (pending && !pending.invite.answered) pending.invite.respond(488, { reason: `Media refused: ${err.message}`.slice(0, 120) });
      if (leg) this.ended(leg);
      await this.input({ kind: 'sip.released', legId: out.legId });
    } else {
      if (leg) this.ended(leg);
      await this.input({ kind: 'sip.failed', legId: out.legId, status: 503, reason: err.message });
    }
  }

  private async connectInbound(out: Extract<SipConnect, { direction: 'inbound' }>): Promise<void> {
    const pending = this.pendingIncoming.get(out.sipRef);
    if (!pending) throw new Error(`no pending INVITE ${out.sipRef}`);
    this.pendingIncoming.delete(out.sipRef);
    const leg: Leg = { legId: out.legId, bridgeId: out.bridgeId, direction: 'inbound', invite: pending.invite, phoneHeld: false, released: false };
    if (pending.trunk) leg.trunk = pending.trunk;
    this.legs.set(out.legId, leg);
    if (pending.invite.canceled) {
      this.ended(leg);
      await this.input({ kind: 'sip.released', legId: out.legId });
      return;
    }
    const reply = await this.o.media.send({ op: 'leg.offer', bridgeId: out.bridgeId, legId: out.legId, sdp: pending.offer, label: uriUser(pending.invite.message.from.uri) ?? 'caller' });
    leg.localSdp = reply.sdp;
  }

  private answerInbound(legId: string): void {
    const leg = this.legs.get(legId);
    if (!leg?.invite || leg.invite.answered || leg.released) return;
    const headers: Record<string, string> = {};
    const trunk = leg.trunk ? this.o.directory.dn(leg.trunk) : undefined;
    if (trunk?.options['sip-server-inter-trunk']) {
      headers[InterTrunkHeaders.alias] = uriUser(leg.invite.message.requestUri) ?? '';
      headers[InterTrunkHeaders.location] = this.o.location();
    }
    const dialog = leg.invite.accept({ body: leg.localSdp ?? '', headers });
    this.watchDialog(leg, dialog);
  }

  private async connectOutbound(out: Extract<SipConnect, { direction: 'outbound' }>): Promise<void> {
    const leg: Leg = { legId: out.legId, bridgeId: out.bridgeId, direction: 'outbound', phoneHeld: false, released: false };
    this.legs.set(out.legId, leg);
    const route = this.route(out.target);
    if ('status' in route) {
      this.ended(leg);
      await this.input({ kind: 'sip.failed', legId: out.legId, status: route.status, reason: route.reason });
      return;
    }
    if ('trunk' in out.target) leg.trunk = out.target.trunk;
    const offer = await this.o.media.send({ op: 'leg.create', bridgeId: out.bridgeId, legId: out.legId, label: 'dn' in out.target ? out.target.dn : out.target.number });
    leg.localSdp = offer.sdp;
    if (route.flow) leg.flow = route.flow;
    const headers: Record<string, string> = {};
    if (route.interTrunk) {
      headers[InterTrunkHeaders.alias] = out.caller.alias;
      headers[InterTrunkHeaders.location] = out.caller.location;
    }
    if (out.autoAnswer) {
      headers['Call-Info'] = `<${route.uri}>;answer-after=0`;
      headers['Alert-Info'] = '<http://127.0.0.1/>;info=alert-autoanswer';
    }
    const host = this.o.stack.addresses[0]?.host ?? '127.0.0.1';
    const outgoing = this.o.stack.invite(route.uri, {
      from: `"${out.caller.alias}" <sip:${out.caller.alias}@${host}>`,
      to: `<${route.uri}>`,
      body: offer.sdp ?? '',
      headers,
      contactUser: out.caller.alias,
      ...(route.flow ? { destination: route.flow } : {}),
    });
    leg.outgoing = outgoing;
    let rang = false;
    outgoing.onProvisional((res) => {
      if (rang || res.status === 100 || leg.released) return;
      rang = true;
      void this.enqueue(() => this.input({ kind: 'sip.ringing', legId: leg.legId }));
    });
    void outgoing.result.then((result) =>
      this.enqueue(async () => {
        if (leg.released) {
          if (result.ok) void result.dialog.bye().catch(() => undefined);
          return;
        }
        if (!result.ok) {
          this.ended(leg);
          await this.input({ kind: 'sip.failed', legId: leg.legId, status: result.status, reason: result.reason });
          return;
        }
        this.watchDialog(leg, result.dialog);
        try {
          await this.o.media.send({ op: 'leg.answer', bridgeId: leg.bridgeId, legId: leg.legId, sdp: result.response.body.toString() });
        } catch (err) {
          this.o.log.error({ err: (err as Error).message, legId: leg.legId }, 'media refused the answer');
          this.ended(leg);
          void result.dialog.bye().catch(() => undefined);
          await this.input({ kind: 'sip.released', legId: leg.legId });
          return;
        }
        const remote: { alias?: string; location?: string } = {};
        if (route.interTrunk) {
          const alias = result.response.get(InterTrunkHeaders.alias);
          const location = result.response.get(InterTrunkHeaders.location);
          if (alias) remote.alias = alias;
          if (location) remote.location = location;
        }
        await this.input({ kind: 'sip.answered', legId: leg.legId, remote });
      }),
    );
  }

  /** Where an outbound leg goes: a DN's registered contact (through its flow), or a trunk's peer. */
  private route(target: { dn: string } | { trunk: string; number: string }):
    | { uri: string; flow?: Endpoint; interTrunk: boolean }
    | { status: number; reason: string } {
    if ('dn' in target) {
      const dn = this.o.directory.dn(target.dn);
      if (dn?.options.contact) return { uri: dn.options.contact, interTrunk: false };
      const binding = this.o.registrar.lookup(target.dn);
      if (!binding) return { status: 480, reason: `DN ${target.dn} is not registered` };
      return { uri: binding.contact, flow: { protocol: binding.source.transport, host: binding.source.host, port: binding.source.port }, interTrunk: false };
    }
    const trunk = this.o.directory.dn(target.trunk);
    const peer = this.o.directory.peer(target.trunk);
    if (!trunk || !peer) return { status: 503, reason: `Trunk ${target.trunk} has no SIP contact` };
    const transport = peer.params.transport ? `;transport=${String(peer.params.transport)}` : '';
    return { uri: `sip:${target.number}@${peer.host}${peer.port ? `:${peer.port}` : ''}${transport}`, interTrunk: trunk.options['sip-server-inter-trunk'] };
  }

  private watchDialog(leg: Leg, dialog: Dialog): void {
    leg.dialog = dialog;
    dialog.onTerminated((t) => {
      if (leg.released) return;
      this.ended(leg);
      if (t.cause !== 'local-bye') void this.enqueue(() => this.input({ kind: 'sip.released', legId: leg.legId }));
    });
    dialog.onRequest((req) => {
      if (req.method === 'INVITE' || req.method === 'UPDATE') {
        void this.enqueue(() => this.reoffer(leg, req));
        return;
      }
      req.respond(200);
    });
  }

  /** A re-INVITE/UPDATE from the phone: new SDP through media-controller, and hold/retrieve detection. */
  private async reoffer(leg: Leg, req: ServerRequest): Promise<void> {
    const offer = req.message.body.toString();
    if (offer.length === 0) {
      req.respond(200, { body: leg.localSdp ?? '' });
      return;
    }
    let answer: string | undefined;
    try {
      answer = (await this.o.media.send({ op: 'leg.reoffer', bridgeId: leg.bridgeId, legId: leg.legId, sdp: offer })).sdp;
    } catch (err) {
      req.respond(488, { reason: `Media refused the offer: ${(err as Error).message}`.slice(0, 120) });
      return;
    }
    leg.localSdp = answer ?? leg.localSdp;
    req.respond(200, { body: leg.localSdp ?? '' });
    const held = isHoldOffer(offer);
    if (held !== leg.phoneHeld) {
      leg.phoneHeld = held;
      await this.input({ kind: held ? 'sip.hold' : 'sip.retrieve', legId: leg.legId });
    }
  }

  /**
   * The leg ended on the SIP side (BYE or CANCEL from the peer, a failed or refused set-up): it is
   * forgotten now, since the model will not ask to release a leg it was told has gone.
   */
  private ended(leg: Leg): void {
    leg.released = true;
    this.legs.delete(leg.legId);
  }

  private release(legId: string, status?: number): void {
    const leg = this.legs.get(legId);
    if (!leg) return;
    this.ended(leg);
    if (leg.dialog && leg.dialog.state !== 'terminated') {
      void leg.dialog.bye(leg.flow ? { destination: leg.flow } : {}).catch(() => undefined);
    } else if (leg.outgoing) {
      leg.outgoing.cancel();
    } else if (leg.invite && !leg.invite.answered) {
      leg.invite.respond(status ?? 480);
    }
  }

  /** Broadsoft-style remote answer: NOTIFY Event: talk to the ringing phone. */
  private async remoteAnswer(legId: string): Promise<void> {
    const leg = this.legs.get(legId);
    const invite = leg?.outgoing ? await leg.outgoing.request : undefined;
    if (!leg || !invite) return;
    const res = await this.o.stack.request('NOTIFY', invite.uri, {
      headers: { Event: 'talk', 'Subscription-State': 'terminated;reason=noresource' },
      callId: invite.callId,
      to: invite.get('to') ?? `<${invite.uri}>`,
      ...(leg.flow ? { destination: leg.flow } : {}),
    });
    if (res.status >= 300) this.o.log.warn({ legId, status: res.status, target: invite.uri }, 'phone refused remote answer');
  }

  private onSubscribe(req: ServerRequest): void {
    const event = (req.message.get('event') ?? '').split(';')[0]?.trim().toLowerCase();
    if (event !== 'conference') {
      req.respond(489, { reason: 'Only the conference event package is supported' });
      return;
    }
    const user = uriUser(req.message.requestUri);
    if (!user) {
      req.respond(404, { reason: 'No conference in the Request-URI' });
      return;
    }
    const expires = Math.min(3600, Number(req.message.get('expires') ?? 3600));
    const key = user.startsWith('conf-') ? user.slice(5) : user;
    const dialog = req.accept({ headers: { Expires: String(expires) } });
    const sub: Subscription = { dialog, key, expiresAt: Date.now() + expires * 1000 };
    if (expires > 0) this.subscriptions.add(sub);
    dialog.onRequest((inDialog) => {
      if (inDialog.method !== 'SUBSCRIBE') {
        inDialog.respond(200);
        return;
      }
      const refresh = Number(inDialog.message.get('expires') ?? 3600);
      inDialog.respond(200, { headers: { Expires: String(refresh) } });
      sub.expiresAt = Date.now() + refresh * 1000;
      if (refresh === 0) this.endSubscription(sub);
    });
    dialog.onTerminated(() => this.subscriptions.delete(sub));
    this.notify(sub, expires === 0);
  }

  private conferenceFor(key: string): Extract<ModelOutput, { kind: 'conference.state' }> | undefined {
    const byConnId = this.conferences.get(key);
    if (byConnId) return byConnId;
    for (const state of this.conferences.values()) if (state.members.some((m) => m.dn === key || m.alias === key)) return state;
    return undefined;
  }

  private conferenceChanged(out: Extract<ModelOutput, { kind: 'conference.state' }>): void {
    const before = this.conferences.get(out.connId);
    if (out.state === 'deleted') this.conferences.delete(out.connId);
    else this.conferences.set(out.connId, out);
    const concerned = new Set<string>([out.connId, ...out.members.flatMap((m) => [m.alias, ...(m.dn ? [m.dn] : [])])]);
    for (const m of before?.members ?? []) concerned.add(m.alias);
    for (const sub of this.subscriptions) if (concerned.has(sub.key)) this.notify(sub, false, out);
  }

  private notify(sub: Subscription, final: boolean, state = this.conferenceFor(sub.key)): void {
    if (Date.now() > sub.expiresAt) final = true;
    const location = this.o.location();
    const info: ConferenceInfo = {
      entity: `sip:conf-${state?.connId ?? sub.key}@${location}`,
      version: state?.version ?? 0,
      state: state?.state === 'full' ? 'full' : 'deleted',
      members: (state?.state === 'full' ? state.members : []).map((m: ConferenceMember) => ({
        alias: m.alias,
        location: m.location,
        entity: `sip:${m.alias}@${m.location}`,
        status: m.status,
        media: m.media,
      })),
    };
    const remaining = Math.max(0, Math.round((sub.expiresAt - Date.now()) / 1000));
    void sub.dialog
      .request('NOTIFY', {
        headers: { Event: 'conference', 'Subscription-State': final ? 'terminated;reason=timeout' : `active;expires=${remaining}` },
        body: conferenceInfoXml(info),
        contentType: CONFERENCE_INFO_CONTENT_TYPE,
      })
      .catch(() => undefined);
    if (final) this.subscriptions.delete(sub);
  }

  private endSubscription(sub: Subscription): void {
    this.notify(sub, true);
  }

  /** Ends every call (BYE/CANCEL) and subscription; used when stopping. */
  async drain(): Promise<void> {
    await this.enqueue(async () => {
      for (const legId of [...this.legs.keys()]) this.release(legId, 503);
      for (const sub of [...this.subscriptions]) this.notify(sub, true);
    });
  }

  get activeLegs(): number {
    return this.legs.size;
  }
}

/**
 * The outputs from `start` that may be carried out together: consecutive media commands on one
 * existing bridge. The media-controller queues a bridge's commands in arrival order, and NATS
 * keeps one connection's order, so sending them without waiting for each reply keeps their
 * effect in order and saves a round trip each (ListenDisconnect: leg.flags then leg.music.play).
 * bridge.create (its owner is known only from its reply) and leg.move (it touches a second
 * bridge's queue) go alone; anything else (events, SIP) waits for the commands before it.
 */
export function pipelinedMediaRun(outputs: readonly ModelOutput[], start: number): ModelOutput[] {
  const first = outputs[start]!;
  const bridgeOf = (out: ModelOutput): string | undefined =>
    out.kind === 'media' && out.command.op !== 'bridge.create' && out.command.op !== 'leg.move' ? out.command.bridgeId : undefined;
  const bridge = bridgeOf(first);
  if (bridge === undefined) return [first];
  let end = start + 1;
  while (end < outputs.length && bridgeOf(outputs[end]!) === bridge) end++;
  return outputs.slice(start, end);
}

/** RFC 3264 §8.4: a phone holds by offering sendonly or inactive (or, old style, c=0.0.0.0). */
export function isHoldOffer(sdp: string): boolean {
  const session = parseSdp(sdp);
  const audio = session.media.find((m) => m.type === 'audio');
  const direction = audio?.direction ?? session.direction;
  const address = audio?.connection?.ip ?? session.connection?.ip;
  return direction === 'sendonly' || direction === 'inactive' || address === '0.0.0.0';
}
