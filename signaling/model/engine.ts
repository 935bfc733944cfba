/**
 * The transitions of the call model: how calls, parties and legs change, and the outputs each
 * change produces. Request validation lives in requests.ts; this file assumes valid arguments.
 */
import type { MediaCommand } from '../../common/nats/media-contract.js';
import { ConnIDPattern } from '../../common/tlib/connid.js';
import { errorEvent } from '../../common/tlib/errors.js';
import type { CallState, CallType, DNRole } from '../../common/tlib/enums.js';
import type { TEvent } from '../../common/tlib/messages.js';
import type { CdrRelease } from '../../common/nats/cdr-contract.js';
import { callDetail, newHistory, syncHistory } from './history.js';
import { conferenceMembers, isInterTrunk, lctExtensions, originConnId, partiesReport } from './reports.js';
import { Store, type AppliedMedia, type Call, type Leg, type Party, type PendingReply } from './state.js';
import type { Step } from './step.js';
import type { DnConfig, ModelEnv, ModelOutput, Presented } from './types.js';

/** Where a dialled number goes: one of our phones, or a number through a Trunk. */
export interface Destination {
  alias: string;
  location: string;
  dn?: string;
  trunk?: string;
  number?: string;
}

export interface LeaveCause {
  /** CallState reported to the parties that remain (or are released with the call). */
  callState: CallState;
  /** CallState of the leaving party's own EventReleased; default callState. */
  ownState?: CallState;
  /** The DN that removed the party (DeleteFromConference); absent when it left by itself. */
  by?: string;
  /** Final response for a caller's unanswered INVITE that this leave ends. */
  status?: number;
}

const PhoneTypes = new Set(['Extension', 'ACDPosition']);

export function isPhone(dn: DnConfig | undefined): dn is DnConfig {
  return dn !== undefined && PhoneTypes.has(dn.type);
}

export function callStateOfStatus(status: number): CallState {
  if (status === 486 || status === 600 || status === 603) return 'Busy';
  if (status === 408 || status === 480 || status === 487) return 'NoAnswer';
  return 'GeneralError';
}

function freshMedia(): AppliedMedia {
  return { listen: true, talk: true, music: 'none' };
}

function sameMusic(a: AppliedMedia['music'], b: AppliedMedia['music']): boolean {
  if (a === 'none' || b === 'none') return a === b;
  return a.file === b.file;
}

export class Engine {
  readonly store = new Store();

  constructor(readonly env: ModelEnv) {}

  // ---------------------------------------------------------------- lookups

  /** A dialled number: our phone DN, else the Trunk with the longest matching prefix. */
  route(number: string): Destination | undefined {
    const dn = this.env.dn(number);
    if (dn !== undefined) return isPhone(dn) ? { alias: number, dn: number, location: this.env.location } : undefined;
    let best: { trunk: string; length: number } | undefined;
    for (const trunk of this.env.trunks()) {
      for (const prefix of trunk.options.prefix ?? []) {
        if (number.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = { trunk: trunk.number, length: prefix.length };
      }
    }
    return best === undefined ? undefined : { alias: number, trunk: best.trunk, number, location: this.env.location };
  }

  /** DN `dn` may call out through `trunk`: the DN's sip-trunk-access lists it, or it is an inter-trunk to our other sites. */
  mayUseTrunk(dn: string, trunk: string): boolean {
    if (this.env.dn(trunk)?.options['sip-server-inter-trunk'] === true) return true;
    return this.env.dn(dn)?.options['sip-trunk-access']?.includes(trunk) === true;
  }

  /** sip-enable-moh of the DN through which the party is reached (its own DN, or its trunk). */
  mohEnabled(party: Party): boolean {
    const via = party.dn ?? party.trunk;
    return via === undefined ? true : (this.env.dn(via)?.options['sip-enable-moh'] ?? true);
  }

  /** Music for a hold: request Extensions `music`, then the holder DN's music-on-hold, then default-music. */
  holdMusic(holderDn: string | undefined, requested: unknown): string {
    if (typeof requested === 'string' && requested.length > 0) return this.env.resolveMusic(requested);
    const own = holderDn === undefined ? undefined : this.env.dn(holderDn)?.options['music-on-hold'];
    if (own !== undefined) return this.env.resolveMusic(own);
    return this.env.options()['default-music'];
  }

  otherOf(call: Call, party: Party): Party | undefined {
    return call.parties.length === 2 ? call.parties.find((p) => p !== party) : undefined;
  }

  /** Established parties with a desktop, `first` (a DN) at the head, then in join order. */
  recipients(call: Call, first?: string): Party[] {
    const list = call.parties.filter((p) => p.dn !== undefined && p.state === 'Established');
    return [...list.filter((p) => p.dn === first), ...list.filter((p) => p.dn !== first)];
  }

  partyOfDn(call: Call, dn: string): Party | undefined {
    return call.parties.find((p) => p.dn === dn);
  }

  /** The call's parties changed: its legs get reconciled, its conference state (and LCTParty list if asked) re-sent. */
  changed(step: Step, call: Call, lct = false): void {
    step.touched.add(call.bridgeId);
    if (lct) step.lctDirty.add(call.connId);
    if (call.conference) step.confDirty.add(call.connId);
  }

  // ---------------------------------------------------------------- events

  ev(call: Call, to: Party, event: TEvent['event'], extra: Partial<TEvent> = {}): TEvent {
    const ev: TEvent = { event, ThisDN: to.dn, ThisDNRole: to.role, ConnID: call.connId, CallType: call.type, CallState: 'Ok', ...extra };
    if (call.origin !== undefined) ev.OriginConnID = call.origin.connId;
    return ev;
  }

  send(step: Step, call: Call, to: Party, event: TEvent['event'], extra: Partial<TEvent> = {}, answer?: PendingReply): void {
    if (to.dn === undefined) return;
    step.event(to.dn, this.ev(call, to, event, extra), answer);
  }

  // ---------------------------------------------------------------- creation

  private mintConnId(): string {
    const connId = this.env.ids.connId();
    // A broken id source is a programming error of the adapter, not a request to refuse.
    if (!ConnIDPattern.test(connId) || this.store.calls.has(connId)) throw new Error(`id source gave an invalid or duplicate ConnID "${connId}"`);
    return connId;
  }

  newCall(step: Step, type: CallType, colocateWith?: string): Call {
    const connId = this.mintConnId();
    const call: Call = { connId, bridgeId: this.env.ids.bridgeId(), type, parties: [], established: false, conference: false, confVersion: 0, history: newHistory(step.time) };
    this.store.addCall(call);
    step.bridgeCreate(call.bridgeId, colocateWith);
    return call;
  }

  newLeg(bridgeId: string, direction: Leg['direction']): Leg {
    const leg: Leg = { id: this.env.ids.legId(), bridgeId, direction, sip: direction === 'inbound' ? 'offered' : 'calling', sipGone: false, mediaGone: false, applied: freshMedia(), users: new Set() };
    this.store.legs.set(leg.id, leg);
    return leg;
  }

  /** A new party reached by calling it: an outbound leg in the call's bridge. */
  dial(step: Step, call: Call, dest: Destination, role: DNRole, caller: Presented, autoAnswer = false): Party {
    const leg = this.newLeg(call.bridgeId, 'outbound');
    const party = this.store.join(call, {
      legId: leg.id,
      alias: dest.alias,
      dn: dest.dn,
      trunk: dest.trunk,
      location: dest.location,
      role,
      state: 'Ringing',
      ringingReported: false,
      held: false,
    });
    step.touched.add(call.bridgeId);
    const target = dest.dn !== undefined ? { dn: dest.dn } : { trunk: dest.trunk ?? '', number: dest.number ?? dest.alias };
    step.sipOut({ kind: 'sip.connect', direction: 'outbound', legId: leg.id, bridgeId: call.bridgeId, target, caller, autoAnswer, originConnId: originConnId(call) });
    return party;
  }

  moveLeg(step: Step, leg: Leg, toBridgeId: string): void {
    step.mediaCmd({ op: 'leg.move', bridgeId: leg.bridgeId, legId: leg.id, toBridgeId });
    step.touched.add(leg.bridgeId);
    step.touched.add(toBridgeId);
    leg.bridgeId = toBridgeId;
    // Flags are re-sent after a move rather than trusted to follow the leg.
    leg.applied = { ...leg.applied, listen: undefined, talk: undefined };
  }

  // ---------------------------------------------------------------- call progress

  /** EventRinging to a called party (once), and 180 to an unanswered inbound caller unless an answer follows at once. */
  reportRinging(step: Step, call: Call, party: Party, answering = false): void {
    if (party.ringingReported) return;
    party.ringingReported = true;
    if (party.addedBy !== undefined) {
      this.send(step, call, party, 'EventRinging', { OtherDN: party.addedBy, OtherDNRole: 'AddedBy', ThirdPartyDN: party.addedBy, ThirdPartyDNRole: 'AddedBy' });
      return;
    }
    const caller = this.otherOf(call, party);
    if (caller === undefined) return;
    const callerLeg = this.store.legs.get(caller.legId);
    if (callerLeg !== undefined && callerLeg.direction === 'inbound' && callerLeg.sip === 'offered' && !answering) step.sipOut({ kind: 'sip.ringing', legId: callerLeg.id });
    this.send(step, call, party, 'EventRinging', { OtherDN: caller.alias, OtherDNRole: caller.role });
  }

  /** The called party of a two-party call answered: both are connected. */
  establishTwoParty(step: Step, call: Call, answering: Party): void {
    const caller = this.otherOf(call, answering);
    if (caller === undefined) return;
    this.reportRinging(step, call, answering, true);
    answering.state = 'Established';
    caller.state = 'Established';
    call.established = true;
    const callerLeg = this.store.legs.get(caller.legId);
    if (callerLeg !== undefined && callerLeg.direction === 'inbound' && callerLeg.sip !== 'up') {
      step.sipOut({ kind: 'sip.answer', legId: callerLeg.id });
      callerLeg.sip = 'up';
    }
    this.send(step, call, answering, 'EventEstablished', { OtherDN: caller.alias, OtherDNRole: caller.role }, this.take(answering, 'answerRequest'));
    this.send(step, call, caller, 'EventEstablished', { OtherDN: answering.alias, OtherDNRole: answering.role });
    this.changed(step, call, true);
  }

  /** A party added by SingleStepConference answered: the call is a conference. */
  addedPartyAnswered(step: Step, call: Call, party: Party): void {
    this.reportRinging(step, call, party, true);
    party.state = 'Established';
    const by = party.addedBy ?? '';
    const pending = this.take(party, 'joinRequest');
    this.makeConference(call);
    const established = { OtherDN: by, OtherDNRole: 'AddedBy', ThirdPartyDN: by, ThirdPartyDNRole: 'AddedBy' } as const;
    this.send(step, call, party, 'EventEstablished', established, this.take(party, 'answerRequest'));
    for (const r of this.recipients(call, by)) {
      if (r === party) continue;
      const answer = pending !== undefined && r.dn === pending.dn ? pending : undefined;
      this.send(step, call, r, 'EventPartyAdded', { OtherDN: party.alias, OtherDNRole: 'NewParty', ThirdPartyDN: by, ThirdPartyDNRole: 'AddedBy' }, answer);
    }
    this.changed(step, call, true);
  }

  /** The call becomes a conference: every party is a ConferenceMember. */
  makeConference(call: Call): void {
    call.conference = true;
    for (const p of call.parties) p.role = 'ConferenceMember';
  }

  /** A request answer waiting on this party, removed so that it is answered once. */
  take(party: Party, which: 'joinRequest' | 'answerRequest'): PendingReply | undefined {
    const pending = party[which];
    delete party[which];
    return pending;
  }

  /** The party holds the call: in a two-party call the other party gets `music`, in a conference nobody does. */
  hold(step: Step, call: Call, party: Party, requestedMusic: unknown): void {
    party.held = true;
    party.holdMusic = this.holdMusic(party.dn, requestedMusic);
    const other = this.otherOf(call, party);
    this.send(step, call, party, 'EventHeld', other === undefined ? {} : { OtherDN: other.alias, OtherDNRole: other.role });
    this.changed(step, call);
  }

  retrieve(step: Step, call: Call, party: Party): void {
    party.held = false;
    delete party.holdMusic;
    const other = this.otherOf(call, party);
    this.send(step, call, party, 'EventRetrieved', other === undefined ? {} : { OtherDN: other.alias, OtherDNRole: other.role });
    this.changed(step, call);
  }

  // ---------------------------------------------------------------- leaving

  /** A party leaves a call (hangs up, is released, is deleted, or its leg failed). */
  removeParty(step: Step, call: Call, party: Party, cause: LeaveCause): void {
    const other = this.otherOf(call, party);
    this.store.leave(call, party);
    this.detachLeg(step, call, party.legId, cause.status);
    this.reportReleased(step, call, party, cause.ownState ?? cause.callState, other?.alias, cause);
    // A consultation whose consulting DN left the main call is a plain call from then on.
    if (party.dn !== undefined) this.clearConsultations(call.connId, party.dn);
    const established = call.parties.filter((p) => p.state === 'Established');
    if (!call.established || established.length < 2) {
      this.endCall(step, call, call.established ? { callState: 'Ok' } : cause, party.alias);
      return;
    }
    if (party.state !== 'Established') {
      // A party that never joined (added by SingleStepConference) leaves no trace in the call.
      this.changed(step, call);
      return;
    }
    const by = cause.by ?? party.alias;
    for (const r of this.recipients(call, cause.by)) {
      this.send(step, call, r, 'EventPartyDeleted', { OtherDN: party.alias, OtherDNRole: 'DeletedParty', ThirdPartyDN: by, ThirdPartyDNRole: 'DeletedBy' });
    }
    this.changed(step, call, true);
    this.applyLeavingRule(step, call);
  }

  /** EventReleased to a leaving party's desktop, or EventError to whoever was waiting for it to join. */
  private reportReleased(step: Step, call: Call, party: Party, state: CallState, otherAlias: string | undefined, cause: LeaveCause): void {
    const pending = this.take(party, 'joinRequest');
    if (pending !== undefined) {
      const why = cause.status === undefined ? `call ${call.connId} ended before it answered` : `it answered SIP ${cause.status}`;
      const code = cause.status === 404 || cause.status === 484 ? 71 : cause.status === 486 || cause.status === 600 ? 566 : 50;
      step.event(
        pending.dn,
        errorEvent(code, `${party.alias} did not join the conference: ${why}`, { ThisDN: pending.dn, ConnID: call.connId, OtherDN: party.alias }),
        pending,
      );
    }
    const extra: Partial<TEvent> = { CallState: state };
    if (otherAlias !== undefined) extra.OtherDN = otherAlias;
    if (cause.by !== undefined && cause.by !== party.dn) {
      extra.ThirdPartyDN = cause.by;
      extra.ThirdPartyDNRole = 'DeletedBy';
    }
    // A desktop that was never told of the call (no EventRinging yet) is not told of its end either.
    const answer = this.take(party, 'answerRequest');
    if (!party.ringingReported && answer === undefined) return;
    this.send(step, call, party, 'EventReleased', extra, answer);
  }

  /** The call ends: every remaining party is released, the bridge destroyed. */
  endCall(step: Step, call: Call, cause: LeaveCause, lastOther?: string): void {
    const release: CdrRelease = { cause: cause.callState };
    if (lastOther !== undefined) release.by = lastOther;
    if (cause.status !== undefined) release.status = cause.status;
    this.retireCall(step, call, release);
    const parties = call.parties.splice(0);
    for (const party of parties) {
      const other = parties.length === 2 ? parties.find((p) => p !== party)?.alias : lastOther;
      this.detachLeg(step, call, party.legId, cause.status);
      this.reportReleased(step, call, party, cause.callState, other, { callState: cause.callState, status: cause.status });
    }
    step.bridgeDestroy(call.bridgeId);
    this.clearConsultations(call.connId);
  }

  /** The call leaves the store with its detail record; a conference's final ("deleted") state is due in this step. */
  retireCall(step: Step, call: Call, release: CdrRelease): void {
    step.cdr(callDetail(call, this.env.location, step.time, release));
    this.store.deleteCall(call);
    if (call.conference) {
      call.confVersion += 1;
      step.confDeleted.set(call.connId, call.confVersion);
    }
  }

  /** The consultations of call `connId` (only those of DN `by`, if given) become plain calls. */
  private clearConsultations(connId: string, by?: string): void {
    for (const c of this.store.calls.values()) {
      if (c.consultOf === connId && (by === undefined || c.consultBy === by)) {
        delete c.consultOf;
        delete c.consultBy;
      }
    }
  }

  /**
   * A party's leg is no longer used by `call`: released when no other call uses it, moved back to
   * the other call's bridge when it sat in this one (the consulting DN returns to its held call).
   */
  detachLeg(step: Step, call: Call, legId: string, status?: number): void {
    const leg = this.store.legs.get(legId);
    if (leg === undefined) return;
    const users = this.store.partiesOfLeg(legId);
    const user = users[0];
    if (user === undefined) {
      if (!leg.sipGone) {
        const unansweredInbound = leg.direction === 'inbound' && leg.sip !== 'up';
        step.sipOut(unansweredInbound && status !== undefined ? { kind: 'sip.release', legId, status } : { kind: 'sip.release', legId });
        leg.sipGone = true;
      }
      if (!leg.mediaGone) step.mediaCmd({ op: 'leg.remove', bridgeId: leg.bridgeId, legId });
      this.store.legs.delete(legId);
      return;
    }
    if (leg.bridgeId === call.bridgeId && !leg.sipGone && !leg.mediaGone) this.moveLeg(step, leg, user.call.bridgeId);
  }

  /**
   * The leaving rule (seed): with listen-disconnected parties and at most one active participant
   * left, the conference is released and a new call joins the remaining parties, all reconnected.
   */
  applyLeavingRule(step: Step, conf: Call): void {
    const established = conf.parties.filter((p) => p.state === 'Established');
    const active = established.filter((p) => p.listenDisconnected === undefined);
    const disconnected = established.filter((p) => p.listenDisconnected !== undefined);
    if (disconnected.length === 0 || active.length > 1) return;
    const order = [...active, ...disconnected];
    // Parties still ringing into the conference do not follow it into the new call.
    for (const p of conf.parties.filter((x) => x.state !== 'Established')) {
      this.store.leave(conf, p);
      this.detachLeg(step, conf, p.legId);
      this.reportReleased(step, conf, p, 'Ok', undefined, { callState: 'Ok' });
    }
    for (const p of order) this.send(step, conf, p, 'EventReleased', { CallState: 'Ok' });
    const connId = this.mintConnId();
    this.retireCall(step, conf, { cause: 'NewConnID', nextConnId: connId });
    const parties = conf.parties;
    const call: Call = {
      connId,
      bridgeId: conf.bridgeId,
      type: conf.type === 'Consult' ? 'Internal' : conf.type,
      parties,
      established: true,
      conference: parties.length > 2,
      confVersion: 0,
      // The new ConnID's record names the calls it carries on, so a CDR reader can join them.
      history: newHistory(step.time, [...(conf.history?.previousConnIds ?? []), conf.connId]),
    };
    // A call that came from another site keeps its name there: the new ConnID is this site's only.
    if (conf.origin !== undefined) call.origin = conf.origin;
    for (const p of parties) {
      delete p.listenDisconnected;
      // Everyone hears everyone in the new call; a phone away in a consultation keeps its hold.
      if (this.store.legs.get(p.legId)?.bridgeId === call.bridgeId) {
        p.held = false;
        delete p.holdMusic;
      }
      p.role = call.conference ? 'ConferenceMember' : p === order[0] ? 'Origination' : 'Destination';
    }
    this.store.addCall(call);
    for (const c of this.store.calls.values()) if (c.consultOf === conf.connId) c.consultOf = connId;
    for (const p of order) {
      const other = this.otherOf(call, p) ?? order[0];
      const extra: Partial<TEvent> = { PreviousConnID: conf.connId };
      if (other !== undefined && other !== p) {
        extra.OtherDN = other.alias;
        extra.OtherDNRole = other.role;
      }
      this.send(step, call, p, 'EventEstablished', extra);
    }
    this.changed(step, call, true);
  }

  // ---------------------------------------------------------------- media

  /** What a leg should hear and send, from the state of the party whose call owns its bridge. */
  desiredMedia(leg: Leg): AppliedMedia {
    const call = this.store.bridgeCall(leg.bridgeId);
    const party = call?.parties.find((p) => p.legId === leg.id);
    if (call === undefined || party === undefined) return freshMedia();
    if (party.listenDisconnected !== undefined) return { listen: false, talk: false, music: { file: party.listenDisconnected.music } };
    if (party.held) return { listen: false, talk: false, music: 'none' };
    const other = this.otherOf(call, party);
    if (other?.held === true && party.state === 'Established') {
      return { listen: false, talk: false, music: { file: this.mohEnabled(party) ? (other.holdMusic ?? this.env.options()['default-music']) : null } };
    }
    return freshMedia();
  }

  /** The legs sitting in a bridge: those of its call's parties that are there (never anyone else's). */
  private legsIn(bridgeId: string): Leg[] {
    const legs: Leg[] = [];
    for (const party of this.store.bridgeCall(bridgeId)?.parties ?? []) {
      const leg = this.store.legs.get(party.legId);
      if (leg !== undefined && leg.bridgeId === bridgeId && !leg.sipGone && !leg.mediaGone) legs.push(leg);
    }
    return legs;
  }

  /**
   * Media commands bringing legs to their desired state: isolate before music, stop music before
   * restoring. With `commit` false they are only computed (mediaDrift).
   */
  reconcileMedia(legs: Iterable<Leg>, commit: boolean): MediaCommand[] {
    const commands: MediaCommand[] = [];
    for (const leg of legs) {
      const want = this.desiredMedia(leg);
      const have = leg.applied;
      const base = { bridgeId: leg.bridgeId, legId: leg.id };
      const flags: MediaCommand = { op: 'leg.flags', ...base, listen: want.listen ?? true, talk: want.talk ?? true };
      const flagsDiffer = have.listen !== want.listen || have.talk !== want.talk;
      if (want.music === 'none') {
        if (have.music !== 'none') commands.push({ op: 'leg.music.stop', ...base });
        if (flagsDiffer) commands.push(flags);
      } else {
        if (flagsDiffer) commands.push(flags);
        if (!sameMusic(have.music, want.music)) commands.push({ op: 'leg.music.play', ...base, file: want.music.file });
      }
      if (commit) leg.applied = want;
    }
    return commands;
  }

  /** Commands a reconcile of every leg would still send: empty unless a transition forgot to mark a bridge. */
  mediaDrift(): MediaCommand[] {
    return this.reconcileMedia([...this.store.legs.values()].filter((leg) => !leg.sipGone && !leg.mediaGone), false);
  }

  /**
   * The call as this site sees it, for each other site of ours in it (a party over an inter-trunk
   * whose leg is up in the call's bridge); only when it changed since the last report on that leg.
   */
  private partiesReports(call: Call): ModelOutput[] {
    const reports: ModelOutput[] = [];
    for (const party of call.parties) {
      const leg = this.store.legs.get(party.legId);
      if (party.state !== 'Established' || !isInterTrunk(this, party) || leg === undefined || leg.sip !== 'up' || leg.sipGone || leg.bridgeId !== call.bridgeId) continue;
      const report = partiesReport(this, call, party);
      const json = JSON.stringify(report);
      if (json === party.reported) continue;
      party.reported = json;
      reports.push({ kind: 'sip.partiesReport', legId: party.legId, report });
    }
    return reports;
  }

  // ---------------------------------------------------------------- finishing a step

  finish(step: Step): ModelOutput[] {
    for (const bridgeId of step.touched) {
      const call = this.store.bridgeCall(bridgeId);
      if (call !== undefined) syncHistory(call, step.time);
    }
    const media = this.reconcileMedia([...step.touched].flatMap((bridgeId) => this.legsIn(bridgeId)), true);
    const options = this.env.options();
    const lct: ModelOutput[] = [];
    if (options['sip-enable-call-info']) {
      for (const connId of step.lctDirty) {
        const call = this.store.calls.get(connId);
        if (call === undefined || !call.established) continue;
        const extensions = lctExtensions(this, call, options['sip-enable-call-info-extended']);
        for (const r of this.recipients(call)) {
          if (r.dn === undefined) continue;
          const event: TEvent = { event: 'EventUserEvent', ThisDN: r.dn, ConnID: call.connId, Extensions: { ...extensions }, Time: step.time };
          if (call.origin !== undefined) event.OriginConnID = call.origin.connId;
          lct.push({ kind: 'tlib.event', to: r.dn, event });
        }
      }
    }
    for (const connId of step.lctDirty) {
      const call = this.store.calls.get(connId);
      if (call !== undefined && call.established) lct.push(...this.partiesReports(call));
    }
    const conferences: ModelOutput[] = [];
    for (const [connId, version] of step.confDeleted) conferences.push({ kind: 'conference.state', connId, version, state: 'deleted', members: [] });
    for (const connId of step.confDirty) {
      const call = this.store.calls.get(connId);
      if (call === undefined || !call.conference) continue;
      call.confVersion += 1;
      conferences.push({ kind: 'conference.state', connId, version: call.confVersion, state: 'full', members: conferenceMembers(this, call) });
    }
    return step.finish(media, lct, conferences);
  }
}
