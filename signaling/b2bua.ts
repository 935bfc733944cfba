/**
 * The B2BUA: UAS on every inbound leg, UAC on every outbound one. It keeps the SIP legs, routes
 * outbound legs, watches their dialogs and tells the call model what happened on them (SIP facts);
 * the model decides which legs meet on a media bridge. SDP never goes phone to phone: each leg's
 * SDP is exchanged with media-controller (one rtpengine leg per party).
 */
import { randomBytes } from 'node:crypto';
import { context, propagation, SpanKind, trace, type Attributes, type Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { parse as parseSdp } from 'sdp-transform';
import type { IncomingFrom, ModelInput, ModelOutput, SipConnect } from './model/index.js';
import type { AdmissionGate } from './admission-gate.js';
import { MediaCommandError, type MediaClient } from './media-client.js';
import type { Dialog, DialogState, Endpoint, InviteResult, OutgoingInvite, ServerRequest, SipRequest, SipStack } from './sip/index.js';
import { uriUser } from './sip/index.js';
import type { ConferenceEventNotifier } from './conference-events.js';
import type { AuthVerdict, DnAuthenticator } from './dn-auth.js';
import type { DnDirectory } from './dn-directory.js';
import type { RegistrarService } from './registrar-service.js';
import { peerOpenedOnly } from './registrar.js';
import { decodePartiesReport, encodePartiesReport, PartiesContentType, PartiesInfoPackage } from './parties-report.js';

/**
 * Headers that carry a party's identity across an inter-trunk between two of our sites, and on the
 * INVITE the call's correlation id (the ConnID where it started, signaling/parties-report.ts).
 */
export const InterTrunkHeaders = { alias: 'X-Huddle-Alias', location: 'X-Huddle-Location', originConnId: 'X-Huddle-Origin-ConnID' } as const;

/** What happened on a leg, for the call model: it arrived, rang, answered, failed, ended, was held or retrieved. */
export type SipFact = Extract<ModelInput, { kind: `sip.${string}` }>;

/** What the call model asks of a leg: connect, ring, answer, reject, release, remote answer. */
export type SipAction = Extract<ModelOutput, { kind: `sip.${string}` }>;

/** The call model's serial queue, as the B2BUA reaches it. */
export interface SipFactQueue {
  /**
   * Runs `job` after every model input queued before it, then hands the model the fact `job`
   * returns, if any; so leg state read or changed in `job` agrees with the outputs before it.
   */
  serially(job: () => SipFact | undefined | Promise<SipFact | undefined>): void;
}

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
  /** Over an inter-trunk: the latest parties report sent (only it is sent again). */
  partiesReport?: string;
}

const tracer = trace.getTracer('huddle.signaling');

/** The W3C trace context headers our sites put on requests to each other over an inter-trunk. */
function traceHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  propagation.inject(context.active(), headers);
  return headers;
}

/**
 * Runs `queue` (which queues the model's work for a SIP request) in the request's server span: the
 * model step and the SIP and media actions it causes are its children, so a phone's INVITE is one
 * trace, found by its Call-ID. A request from another of our sites continues the trace it carries,
 * so one request's trace spans both sites.
 */
function inSipSpan(msg: SipRequest, attributes: Attributes, queue: (end: () => void) => void, spanContext: (ctx: Context) => Context = (ctx) => ctx): void {
  const carrier: Record<string, string> = {};
  for (const key of propagation.fields()) {
    const value = msg.get(key);
    if (value) carrier[key] = value;
  }
  inServerSpan(`sip ${msg.method}`, { 'sip.call_id': msg.callId, ...attributes }, spanContext(propagation.extract(context.active(), carrier)), queue);
}

function inServerSpan(name: string, attributes: Attributes, parent: Context, queue: (end: () => void) => void): void {
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  context.with(trace.setSpan(parent, span), () => queue(() => span.end()));
}

/** A parties report the far site did not know the dialog for yet (481: our 200 still on its way) is sent again, this often at most, this far apart. */
const PartiesReportTries = 3;
const PartiesReportRetryMs = 200;

/** A leg as another process needs it to carry the call on: its SIP dialog once confirmed. */
export interface LegState {
  legId: string;
  bridgeId: string;
  direction: 'inbound' | 'outbound';
  trunk?: string;
  phoneHeld?: true;
  localSdp?: string;
  flow?: { protocol: Endpoint['protocol']; host: string; port: number };
  dialog?: DialogState;
}

/** Seconds a caller is asked to wait before retrying a call refused because media is down (503). */
const MediaRetryAfterSeconds = 5;
const MediaDown = { reason: 'Media unavailable', headers: { 'Retry-After': String(MediaRetryAfterSeconds) } };

/** Whether a media failure is media being down (503, retry later) rather than this call's SDP (488). */
function mediaDown(err: Error): boolean {
  return !(err instanceof MediaCommandError) || !['BadSdp', 'NoCommonCodec', 'BadCommand'].includes(err.code);
}

/** Where an outbound leg goes. */
type Route = { uri: string; flow?: Endpoint; path?: string[]; interTrunk: boolean };

/**
 * A contact reached over WebSocket (its flow, or its URI's transport when registered through the
 * edge) is a browser: media offers it WebRTC (ICE, DTLS-SRTP), as the browser requires.
 */
function phoneMedia(route: Route): 'rtp' | 'webrtc' {
  const ws = route.flow ? peerOpenedOnly(route.flow.protocol) : /;transport=wss?(?=[;>?]|$)/i.test(route.uri);
  return ws ? 'webrtc' : 'rtp';
}

export interface B2buaOptions {
  stack: SipStack;
  media: MediaClient;
  registrar: RegistrarService;
  directory: DnDirectory;
  /** Proves that an INVITE or SUBSCRIBE naming one of our DNs in From comes from that DN. */
  auth: DnAuthenticator;
  /** Takes SUBSCRIBEs to the conference event package. */
  conferenceEvents: Pick<ConferenceEventNotifier, 'onSubscribe'>;
  facts: SipFactQueue;
  /** Admission control: new INVITEs refused while overloaded, and the bound on a set-up that never rings. */
  admission?: Pick<AdmissionGate, 'check' | 'retryAfterSeconds' | 'setUpTimeoutMs' | 'setUpTimedOut'>;
  location: () => string;
  /** The context a SIP request's span starts in gets the component's mark (tracing's componentContext), so it is signaling's. */
  spanContext?: (ctx: Context) => Context;
  log: Logger;
}

export class B2bua {
  /** INVITEs told to the model (sip.incoming) that it has not yet made a leg of or rejected. */
  private readonly pendingIncoming = new Map<string, { invite: ServerRequest; offer: string; trunk?: string }>();
  private readonly legs = new Map<string, Leg>();
  /** Incoming INVITEs answered 180: from then on they are never failed for lack of capacity. */
  private readonly rang = new WeakSet<ServerRequest>();

  constructor(private readonly o: B2buaOptions) {}

  get activeLegs(): number {
    return this.legs.size;
  }

  /** INVITEs not yet taken and legs whose set-up is under way (no confirmed dialog): what a replica lets finish before it hands its calls over. */
  get settingUp(): number {
    let n = this.pendingIncoming.size;
    for (const leg of this.legs.values()) if (!leg.released && leg.dialog?.state !== 'confirmed') n++;
    return n;
  }

  /** The state of a leg, for the call state store; undefined once it ended. */
  exportLeg(legId: string): LegState | undefined {
    const leg = this.legs.get(legId);
    if (!leg) return undefined;
    const state: LegState = { legId, bridgeId: leg.bridgeId, direction: leg.direction };
    if (leg.trunk) state.trunk = leg.trunk;
    if (leg.phoneHeld) state.phoneHeld = true;
    if (leg.localSdp) state.localSdp = leg.localSdp;
    if (leg.flow) state.flow = { protocol: leg.flow.protocol, host: leg.flow.host, port: leg.flow.port };
    if (leg.dialog && leg.dialog.state === 'confirmed') state.dialog = leg.dialog.exportState();
    return state;
  }

  /**
   * Carries on a leg another process (or this one before a restart) set up. Only a confirmed
   * dialog can be carried on: false for a leg whose set-up was under way (its transaction died
   * with the process), which the caller reports to the model as failed.
   */
  restoreLeg(state: LegState): boolean {
    const leg: Leg = { legId: state.legId, bridgeId: state.bridgeId, direction: state.direction, phoneHeld: state.phoneHeld === true, released: false };
    if (state.trunk) leg.trunk = state.trunk;
    if (state.localSdp) leg.localSdp = state.localSdp;
    if (state.flow) leg.flow = { ...state.flow };
    this.legs.set(state.legId, leg);
    if (!state.dialog) return false;
    this.watchDialog(leg, this.o.stack.restoreDialog(state.dialog));
    return true;
  }

  /** A leg that another process owns now: forgotten here without a BYE, CANCEL or answer. */
  dropLeg(legId: string): void {
    const leg = this.legs.get(legId);
    if (!leg) return;
    this.ended(leg);
    leg.dialog?.forget();
  }

  /** The leg's SIP Call-ID once its dialog is confirmed. */
  callIdOf(legId: string): string | undefined {
    return this.legs.get(legId)?.dialog?.callId;
  }

  /** Out-of-dialog SIP requests other than REGISTER (the registrar service takes those). */
  onRequest(req: ServerRequest): void {
    switch (req.method) {
      case 'INVITE':
        this.onInvite(req).catch((err: Error) => this.failed(req, err));
        return;
      case 'SUBSCRIBE':
        this.onSubscribe(req).catch((err: Error) => this.failed(req, err));
        return;
      case 'OPTIONS':
        // Answered without a challenge, as registrars usually do: phones and trunks use OPTIONS as a
        // keepalive, and the answer tells nothing but what the stack supports. The stack adds Allow
        // to OPTIONS 2xx and to 405.
        req.respond(200, { headers: { Accept: 'application/sdp' } });
        return;
      default:
        req.respond(405);
    }
  }

  /** Carries out a SIP action; resolves with the fact it led to at once (a CANCEL came first, no route), if any. */
  async carryOut(out: SipAction): Promise<SipFact | undefined> {
    switch (out.kind) {
      case 'sip.connect':
        return out.direction === 'inbound' ? this.connectInbound(out) : this.connectOutbound(out);
      case 'sip.ringing': {
        const leg = this.legs.get(out.legId);
        if (leg?.invite && !leg.invite.answered) {
          leg.invite.respond(180);
          this.rang.add(leg.invite);
        }
        return undefined;
      }
      case 'sip.answer':
        this.answerInbound(out.legId);
        return undefined;
      case 'sip.reject': {
        const pending = this.pendingIncoming.get(out.sipRef);
        this.pendingIncoming.delete(out.sipRef);
        if (pending && !pending.invite.answered) pending.invite.respond(out.status, out.reason ? { reason: out.reason } : {});
        return undefined;
      }
      case 'sip.release':
        this.release(out.legId, out.status);
        return undefined;
      case 'sip.remoteAnswer':
        await this.remoteAnswer(out.legId);
        return undefined;
      case 'sip.partiesReport':
        this.sendPartiesReport(out.legId, encodePartiesReport(out.report));
        return undefined;
    }
  }

  /** A leg whose SIP or media set-up failed: the caller is refused, and the model told it failed or ended. */
  connectFailed(out: SipConnect, err: Error): SipFact {
    const leg = this.legs.get(out.legId);
    if (out.direction === 'inbound') {
      // The INVITE is the leg's once connectInbound took it over from pendingIncoming.
      const invite = leg?.invite ?? this.pendingIncoming.get(out.sipRef)?.invite;
      this.pendingIncoming.delete(out.sipRef);
      if (invite && !invite.answered) {
        if (mediaDown(err)) invite.respond(503, MediaDown);
        else invite.respond(488, { reason: `Media refused: ${err.message}`.slice(0, 120) });
      }
      if (leg) this.ended(leg);
      return { kind: 'sip.released', legId: out.legId };
    }
    if (leg) this.ended(leg);
    return { kind: 'sip.failed', legId: out.legId, status: 503, reason: err.message };
  }

  /** Ends every leg (BYE, CANCEL or a final response); used when stopping. */
  releaseAll(status: number): void {
    for (const legId of [...this.legs.keys()]) this.release(legId, status);
  }

  private failed(req: ServerRequest, err: Error): void {
    this.o.log.error({ err: err.stack, method: req.method }, 'request failed');
    if (!req.answered) req.respond(500, { reason: 'Server error' });
  }

  private async onSubscribe(req: ServerRequest): Promise<void> {
    const from = await this.identifyCaller(req.message, req.origin);
    if ('status' in from) {
      req.respond(from.status, { reason: from.reason, ...(from.headers ? { headers: from.headers } : {}) });
      return;
    }
    this.o.conferenceEvents.onSubscribe(req);
  }

  private async onInvite(req: ServerRequest): Promise<void> {
    const msg = req.message;
    if (!this.o.media.available()) {
      // No media-controller is alive: a final answer now, not a call that waits for media that will not come.
      req.respond(503, MediaDown);
      return;
    }
    // Before anything is spent on the call (digest check, media): an overloaded server says so at once.
    const verdict = this.o.admission?.check('INVITE');
    if (verdict && !verdict.admit) {
      req.respond(503, { reason: verdict.message.slice(0, 120), headers: { 'Retry-After': String(this.o.admission!.retryAfterSeconds) } });
      return;
    }
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
    const from = await this.identifyCaller(msg, req.origin);
    if ('status' in from) {
      req.respond(from.status, { reason: from.reason, ...(from.headers ? { headers: from.headers } : {}) });
      return;
    }
    if (req.canceled) return;
    const sipRef = randomBytes(6).toString('hex');
    this.pendingIncoming.set(sipRef, { invite: req, offer, ...('trunk' in from ? { trunk: from.trunk } : {}) });
    req.onCancel(() => {
      this.o.facts.serially(() => {
        const leg = [...this.legs.values()].find((l) => l.invite === req);
        this.pendingIncoming.delete(sipRef);
        if (!leg || leg.released) return undefined;
        this.ended(leg);
        return { kind: 'sip.released', legId: leg.legId };
      });
    });
    if (this.o.admission) {
      const timer = setTimeout(() => this.setUpTimedOut(req, sipRef), this.o.admission.setUpTimeoutMs);
      timer.unref();
    }
    // An INVITE answered meanwhile (its set-up timed out) never reaches the model.
    const queue = (end: () => void) =>
      this.o.facts.serially(() => {
        end();
        return this.pendingIncoming.has(sipRef) ? { kind: 'sip.incoming', sipRef, from, to: dialled, callId: msg.callId } : undefined;
      });
    inSipSpan(msg, 'trunk' in from && from.originConnId !== undefined ? { 'tlib.origin_conn_id': from.originConnId } : {}, queue, this.o.spanContext);
  }

  /**
   * Every INVITE gets a final answer in bounded time: one neither ringing nor answered by now is
   * answered 503 at once (however long the model's queue), and its call and media are released
   * through the model (a leg it made of it ends as if the caller had cancelled).
   */
  private setUpTimedOut(req: ServerRequest, sipRef: string): void {
    if (req.answered || req.canceled || this.rang.has(req)) return;
    req.respond(503, { reason: 'Call set-up timed out', headers: { 'Retry-After': String(this.o.admission!.retryAfterSeconds) } });
    this.o.admission!.setUpTimedOut();
    if (this.pendingIncoming.delete(sipRef)) return;
    this.o.facts.serially(() => {
      const leg = [...this.legs.values()].find((l) => l.invite === req);
      if (!leg || leg.released) return undefined;
      this.ended(leg);
      return { kind: 'sip.released', legId: leg.legId };
    });
  }

  /**
   * A Trunk by the address the packet came from (never by Via or any other header), else one of
   * our DNs by the From user, once its digest credentials check out.
   */
  private async identifyCaller(msg: SipRequest, source: Endpoint): Promise<IncomingFrom | Exclude<AuthVerdict, { ok: true }>> {
    const trunk = this.o.directory.trunkFrom(source.host, source.port);
    const fromUser = uriUser(msg.from.uri);
    if (trunk) {
      const from: IncomingFrom = { trunk: trunk.number, number: fromUser ?? 'anonymous' };
      if (trunk.options['sip-server-inter-trunk']) {
        const alias = msg.get(InterTrunkHeaders.alias);
        const location = msg.get(InterTrunkHeaders.location);
        const originConnId = msg.get(InterTrunkHeaders.originConnId);
        if (alias) from.alias = alias;
        if (location) from.location = location;
        if (originConnId) from.originConnId = originConnId;
      }
      return from;
    }
    if (!fromUser) return { ok: false, status: 403, reason: 'Caller has no user part' };
    const dn = this.o.directory.dn(fromUser);
    if (!dn || dn.type === 'Trunk') return { ok: false, status: 403, reason: `DN ${fromUser} is not configured` };
    const verdict = await this.o.auth.check(msg, fromUser, true);
    return verdict.ok ? { dn: fromUser } : verdict;
  }

  private async connectInbound(out: Extract<SipConnect, { direction: 'inbound' }>): Promise<SipFact | undefined> {
    const pending = this.pendingIncoming.get(out.sipRef);
    if (!pending) throw new Error(`no pending INVITE ${out.sipRef}`);
    this.pendingIncoming.delete(out.sipRef);
    const leg: Leg = { legId: out.legId, bridgeId: out.bridgeId, direction: 'inbound', invite: pending.invite, phoneHeld: false, released: false };
    if (pending.trunk) leg.trunk = pending.trunk;
    this.legs.set(out.legId, leg);
    if (pending.invite.canceled) {
      this.ended(leg);
      return { kind: 'sip.released', legId: out.legId };
    }
    const reply = await this.o.media.send({ op: 'leg.offer', bridgeId: out.bridgeId, legId: out.legId, sdp: pending.offer, label: uriUser(pending.invite.message.from.uri) ?? 'caller' });
    leg.localSdp = reply.sdp;
    return undefined;
  }

  private answerInbound(legId: string): void {
    const leg = this.legs.get(legId);
    if (!leg?.invite || leg.invite.answered || leg.released) return;
    const headers: Record<string, string> = {};
    const trunk = leg.trunk ? this.o.directory.dn(leg.trunk) : undefined;
    if (trunk?.options['sip-server-inter-trunk']) {
      headers[InterTrunkHeaders.alias] = uriUser(leg.invite.message.requestUri) ?? '';
      headers[InterTrunkHeaders.location] = this.o.location();
      headers['Recv-Info'] = PartiesInfoPackage;
    }
    const dialog = leg.invite.accept({ body: leg.localSdp ?? '', headers });
    this.watchDialog(leg, dialog);
  }

  private async connectOutbound(out: Extract<SipConnect, { direction: 'outbound' }>): Promise<SipFact | undefined> {
    const leg: Leg = { legId: out.legId, bridgeId: out.bridgeId, direction: 'outbound', phoneHeld: false, released: false };
    this.legs.set(out.legId, leg);
    const route = this.route(out.target);
    if ('status' in route) {
      this.ended(leg);
      return { kind: 'sip.failed', legId: out.legId, status: route.status, reason: route.reason };
    }
    if ('trunk' in out.target) leg.trunk = out.target.trunk;
    const offer = await this.o.media.send({ op: 'leg.create', bridgeId: out.bridgeId, legId: out.legId, label: 'dn' in out.target ? out.target.dn : out.target.number, phone: phoneMedia(route) });
    leg.localSdp = offer.sdp;
    if (route.flow) leg.flow = route.flow;
    const headers: Record<string, string> = {};
    if (route.interTrunk) {
      Object.assign(headers, traceHeaders());
      headers[InterTrunkHeaders.alias] = out.caller.alias;
      headers[InterTrunkHeaders.location] = out.caller.location;
      headers[InterTrunkHeaders.originConnId] = out.originConnId;
      headers['Recv-Info'] = PartiesInfoPackage;
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
      ...(route.path ? { route: route.path } : {}),
    });
    leg.outgoing = outgoing;
    let rang = false;
    outgoing.onProvisional((res) => {
      if (rang || res.status === 100 || leg.released) return;
      rang = true;
      this.o.facts.serially(() => ({ kind: 'sip.ringing', legId: leg.legId }));
    });
    void outgoing.result.then((result) => this.o.facts.serially(() => this.outboundFinal(leg, route, result)));
    return undefined;
  }

  /** The final response to an outbound leg's INVITE: a failure, or the answer SDP for media-controller. */
  private async outboundFinal(leg: Leg, route: Route, result: InviteResult): Promise<SipFact | undefined> {
    if (leg.released) {
      if (result.ok) void result.dialog.bye().catch(() => undefined);
      return undefined;
    }
    if (!result.ok) {
      this.ended(leg);
      return { kind: 'sip.failed', legId: leg.legId, status: result.status, reason: result.reason };
    }
    this.watchDialog(leg, result.dialog);
    try {
      await this.o.media.send({ op: 'leg.answer', bridgeId: leg.bridgeId, legId: leg.legId, sdp: result.response.body.toString() });
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, legId: leg.legId }, 'media refused the answer');
      this.ended(leg);
      void result.dialog.bye().catch(() => undefined);
      return { kind: 'sip.released', legId: leg.legId };
    }
    const remote: { alias?: string; location?: string } = {};
    if (route.interTrunk) {
      const alias = result.response.get(InterTrunkHeaders.alias);
      const location = result.response.get(InterTrunkHeaders.location);
      if (alias) remote.alias = alias;
      if (location) remote.location = location;
    }
    return { kind: 'sip.answered', legId: leg.legId, remote, callId: result.dialog.callId };
  }

  /** Where an outbound leg goes: a DN's registered contact (through its flow), or a trunk's peer. */
  private route(target: { dn: string } | { trunk: string; number: string }): Route | { status: number; reason: string } {
    if ('dn' in target) {
      const dn = this.o.directory.dn(target.dn);
      if (dn?.options.contact) return { uri: dn.options.contact, interTrunk: false };
      const binding = this.o.registrar.lookup(target.dn);
      if (!binding) return { status: 480, reason: `DN ${target.dn} is not registered` };
      // Registered through a proxy that added Path (the SIP edge): through it, which knows the phone's connection.
      if (binding.path) return { uri: binding.contact, path: binding.path, interTrunk: false };
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
      if (t.cause === 'local-bye') return;
      const queue = (end: () => void) =>
        this.o.facts.serially(() => {
          end();
          return { kind: 'sip.released', legId: leg.legId };
        });
      // The phone's BYE (answered by the dialog layer) is its own transaction's span, like an INVITE's.
      if (t.cause === 'remote-bye') inServerSpan('sip BYE', { 'sip.call_id': dialog.callId, 'huddle.leg_id': leg.legId }, (this.o.spanContext ?? ((c: Context) => c))(context.active()), queue);
      else queue(() => undefined);
    });
    dialog.onRequest((req) => {
      if (req.method === 'INVITE' || req.method === 'UPDATE') {
        inSipSpan(
          req.message,
          { 'huddle.leg_id': leg.legId },
          (end) =>
            this.o.facts.serially(() => {
              end();
              return this.reoffer(leg, req);
            }),
          this.o.spanContext,
        );
        return;
      }
      if (req.method === 'INFO' && this.interTrunk(leg) && (req.message.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() === PartiesContentType) {
        this.onPartiesReport(leg, req);
        return;
      }
      req.respond(200);
    });
  }

  /** A leg over an inter-trunk to another of our sites. */
  private interTrunk(leg: Leg): boolean {
    return leg.trunk !== undefined && this.o.directory.dn(leg.trunk)?.options['sip-server-inter-trunk'] === true;
  }

  /** How the site at the other end of an inter-trunk leg sees the call, for the model. */
  private onPartiesReport(leg: Leg, req: ServerRequest): void {
    const report = decodePartiesReport(req.message.body.toString());
    if ('error' in report) {
      this.o.log.warn({ legId: leg.legId, trunk: leg.trunk, callId: leg.dialog?.callId, error: report.error }, 'parties report refused');
      req.respond(400, { reason: `Bad parties report: ${report.error}`.slice(0, 120) });
      return;
    }
    req.respond(200);
    inSipSpan(
      req.message,
      { 'tlib.origin_conn_id': report.originConnId },
      (end) =>
        this.o.facts.serially(() => {
          end();
          return leg.released ? undefined : { kind: 'sip.remoteParties', legId: leg.legId, report };
        }),
      this.o.spanContext,
    );
  }

  /** Tells the site at the other end of an inter-trunk leg how this site sees the call. */
  private sendPartiesReport(legId: string, body: string, tries = PartiesReportTries): void {
    const leg = this.legs.get(legId);
    if (!leg?.dialog || leg.released || !this.interTrunk(leg)) return;
    leg.partiesReport = body;
    void leg.dialog
      .request('INFO', { headers: { 'Info-Package': PartiesInfoPackage, ...traceHeaders() }, body, contentType: PartiesContentType })
      .then((res) => {
        if (res.status < 300) return;
        // A newer report went meanwhile: this one must not overtake it.
        if (res.status === 481 && tries > 1 && leg.partiesReport === body) {
          setTimeout(() => leg.partiesReport === body && this.sendPartiesReport(legId, body, tries - 1), PartiesReportRetryMs).unref();
          return;
        }
        this.o.log.warn({ legId, status: res.status, callId: leg.dialog?.callId }, 'parties report not taken');
      })
      .catch(() => undefined);
  }

  /** A re-INVITE/UPDATE from the phone: new SDP through media-controller, and hold/retrieve detection. */
  private async reoffer(leg: Leg, req: ServerRequest): Promise<SipFact | undefined> {
    const offer = req.message.body.toString();
    if (offer.length === 0) {
      req.respond(200, { body: leg.localSdp ?? '' });
      return undefined;
    }
    let answer: string | undefined;
    try {
      answer = (await this.o.media.send({ op: 'leg.reoffer', bridgeId: leg.bridgeId, legId: leg.legId, sdp: offer })).sdp;
    } catch (err) {
      req.respond(488, { reason: `Media refused the offer: ${(err as Error).message}`.slice(0, 120) });
      return undefined;
    }
    leg.localSdp = answer ?? leg.localSdp;
    req.respond(200, { body: leg.localSdp ?? '' });
    const held = isHoldOffer(offer);
    if (held === leg.phoneHeld) return undefined;
    leg.phoneHeld = held;
    return { kind: held ? 'sip.hold' : 'sip.retrieve', legId: leg.legId };
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
      leg.invite.respond(status ?? 480, status === 503 ? MediaDown : {});
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
}

/** RFC 3264 §8.4: a phone holds by offering sendonly or inactive (or, old style, c=0.0.0.0). */
export function isHoldOffer(sdp: string): boolean {
  const session = parseSdp(sdp);
  const audio = session.media.find((m) => m.type === 'audio');
  const direction = audio?.direction ?? session.direction;
  const address = audio?.connection?.ip ?? session.connection?.ip;
  return direction === 'sendonly' || direction === 'inactive' || address === '0.0.0.0';
}
