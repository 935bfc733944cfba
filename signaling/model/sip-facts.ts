/** SIP-side and media-side facts, as the adapters report them, applied to the calls. */
import type { MediaEvent } from '../../common/nats/media-contract.js';
import { callStateOfStatus, isPhone, type Engine } from './engine.js';
import type { Call, Party } from './state.js';
import type { Step } from './step.js';
import { ConnIDPattern } from '../../common/tlib/connid.js';
import { lctExtensions } from './reports.js';
import type { IncomingFrom, ModelInput, PartiesReport, RemoteIdentity } from './types.js';

/** A new INVITE from one of our phones or from a trunk peer. */
export function incoming(engine: Engine, step: Step, sipRef: string, from: IncomingFrom, to: string, callId: string | undefined): void {
  let caller: Omit<Party, 'legId'>;
  if ('dn' in from) {
    if (!isPhone(engine.env.dn(from.dn))) return step.sipOut({ kind: 'sip.reject', sipRef, status: 403 });
    caller = { alias: from.dn, dn: from.dn, location: engine.env.location, role: 'Origination', state: 'Dialing', ringingReported: true, held: false };
  } else {
    if (engine.env.dn(from.trunk)?.type !== 'Trunk') return step.sipOut({ kind: 'sip.reject', sipRef, status: 403 });
    caller = {
      alias: from.alias ?? from.number,
      trunk: from.trunk,
      location: from.location ?? engine.env.location,
      role: 'Origination',
      state: 'Dialing',
      ringingReported: true,
      held: false,
    };
  }
  const dest = engine.route(to);
  // A trunk call goes to one of our phones only: no trunk-to-trunk tromboning.
  if (dest === undefined || (caller.trunk !== undefined && dest.dn === undefined) || (dest.dn !== undefined && dest.dn === caller.dn)) {
    return step.sipOut({ kind: 'sip.reject', sipRef, status: 404 });
  }
  if (dest.trunk !== undefined && caller.dn !== undefined && !engine.mayUseTrunk(caller.dn, dest.trunk)) {
    return step.sipOut({ kind: 'sip.reject', sipRef, status: 403, reason: `DN ${caller.dn} may not call out through Trunk ${dest.trunk}` });
  }
  const call = engine.newCall(step, caller.trunk !== undefined ? 'Inbound' : dest.trunk !== undefined ? 'Outbound' : 'Internal');
  const leg = engine.newLeg(call.bridgeId, 'inbound');
  const origin = 'trunk' in from ? from.originConnId : undefined;
  if (origin !== undefined && ConnIDPattern.test(origin) && origin !== call.connId) call.origin = { connId: origin, legId: leg.id };
  step.sipOut({ kind: 'sip.connect', direction: 'inbound', sipRef, legId: leg.id, bridgeId: call.bridgeId });
  const callerParty = engine.store.join(call, { ...caller, legId: leg.id, ...(callId !== undefined ? { callId } : {}) });
  engine.dial(step, call, dest, 'Destination', { alias: callerParty.alias, location: callerParty.location });
  engine.send(step, call, callerParty, 'EventDialing', { OtherDN: dest.alias, OtherDNRole: 'Destination' });
}

/** A fact about a leg the model no longer has (it crossed our own release): nothing to do. */
function stale(step: Step, fact: string, legId: string): void {
  step.report('info', 'stale-leg', `${fact} for leg ${legId}, which is gone or not in that state`, { legId });
}

function ringing(engine: Engine, step: Step, legId: string): void {
  const leg = engine.store.legs.get(legId);
  if (leg === undefined || leg.sip === 'up' || leg.direction !== 'outbound') return stale(step, 'sip.ringing', legId);
  leg.sip = 'ringing';
  for (const { call, party } of engine.store.partiesOfLeg(legId)) {
    if (party.state === 'Ringing') engine.reportRinging(step, call, party);
  }
  for (const { call } of engine.store.partiesOfLeg(legId)) engine.changed(step, call);
}

function answered(engine: Engine, step: Step, legId: string, remote: RemoteIdentity | undefined, callId: string | undefined): void {
  const leg = engine.store.legs.get(legId);
  if (leg === undefined || leg.sip === 'up' || leg.direction !== 'outbound') return stale(step, 'sip.answered', legId);
  leg.sip = 'up';
  for (const { call, party } of engine.store.partiesOfLeg(legId)) {
    if (callId !== undefined) party.callId = callId;
    if (party.trunk !== undefined && remote !== undefined) {
      if (remote.alias !== undefined) party.alias = remote.alias;
      if (remote.location !== undefined) party.location = remote.location;
    }
    if (call.pendingDestination !== undefined && party.role === 'Origination') {
      // 3pcc: ThisDN's phone answered; now call the destination, presenting ThisDN.
      const dest = call.pendingDestination;
      delete call.pendingDestination;
      engine.dial(step, call, dest, 'Destination', { alias: party.alias, location: party.location });
    } else if (party.state === 'Ringing' && party.addedBy !== undefined) {
      engine.addedPartyAnswered(step, call, party);
    } else if (party.state === 'Ringing') {
      engine.establishTwoParty(step, call, party);
    }
  }
}

function failed(engine: Engine, step: Step, legId: string, status: number): void {
  const leg = engine.store.legs.get(legId);
  if (leg === undefined || leg.sip === 'up') return stale(step, 'sip.failed', legId);
  leg.sipGone = true;
  const state = callStateOfStatus(status);
  for (const { call, party } of engine.store.partiesOfLeg(legId)) {
    engine.removeParty(step, call, party, { callState: state, status });
  }
}

/** The peer ended the leg: every call using it loses that party. */
function released(engine: Engine, step: Step, legId: string): void {
  const leg = engine.store.legs.get(legId);
  if (leg === undefined) return stale(step, 'sip.released', legId);
  leg.sipGone = true;
  for (const { call, party } of engine.store.partiesOfLeg(legId)) engine.removeParty(step, call, party, { callState: 'Ok' });
}

/**
 * The site at the other end of an inter-trunk leg told how it sees the call: its parties are shown
 * here (LCTParty), and a call that came from there follows the name it has there now.
 */
function remoteParties(engine: Engine, step: Step, legId: string, report: PartiesReport): void {
  const uses = engine.store.partiesOfLeg(legId).filter(({ party }) => party.trunk !== undefined);
  if (uses.length === 0) return stale(step, 'sip.remoteParties', legId);
  for (const { call, party } of uses) {
    const before = JSON.stringify(lctExtensions(engine, call, true));
    party.remote = report.parties;
    const renamed = call.origin?.legId === legId && call.origin.connId !== report.originConnId && ConnIDPattern.test(report.originConnId);
    if (renamed) call.origin = { connId: report.originConnId, legId };
    // Only what desktops and other sites are told changes: no media, no RFC 4575 state of ours.
    if (renamed || JSON.stringify(lctExtensions(engine, call, true)) !== before) step.lctDirty.add(call.connId);
  }
}

/** The call whose bridge the leg is in, and the party using it there. */
function activeUse(engine: Engine, legId: string): { call: Call; party: Party } | undefined {
  const leg = engine.store.legs.get(legId);
  return engine.store.partiesOfLeg(legId).find(({ call }) => call.bridgeId === leg?.bridgeId);
}

function phoneHold(engine: Engine, step: Step, legId: string, on: boolean): void {
  const use = activeUse(engine, legId);
  if (use === undefined || use.party.state !== 'Established' || use.party.held === on) return;
  if (on) engine.hold(step, use.call, use.party, undefined);
  else engine.retrieve(step, use.call, use.party);
}

function mediaEvent(engine: Engine, step: Step, event: MediaEvent): void {
  switch (event.kind) {
    case 'leg-failed': {
      const leg = engine.store.legs.get(event.legId);
      const uses = engine.store.partiesOfLeg(event.legId);
      step.report('warn', 'leg-failed', `media leg ${event.legId} failed on ${event.instance}: ${event.reason}`, { legId: event.legId, connId: uses[0]?.call.connId });
      if (leg === undefined) return;
      leg.mediaGone = true;
      for (const { call, party } of uses) engine.removeParty(step, call, party, { callState: 'Ok', ownState: 'GeneralError' });
      return;
    }
    case 'music-error': {
      // The party stays isolated (flags unchanged); only the music is missing.
      const use = activeUse(engine, event.legId);
      step.report('warn', 'music-error', `music ${event.file} failed for leg ${event.legId}${use === undefined ? '' : ` (${use.party.alias})`}: ${event.reason}`, {
        legId: event.legId,
        connId: use?.call.connId,
      });
      return;
    }
    case 'music-ended':
      return step.report('info', 'music-ended', `music ended on leg ${event.legId}`, { legId: event.legId });
    case 'rtpengine-lost':
    case 'rtpengine-back':
      return step.report(event.kind === 'rtpengine-lost' ? 'warn' : 'info', event.kind, `rtpengine ${event.ng} on ${event.instance}: ${event.kind}`);
  }
}

/**
 * A bridge died with its media-controller: nobody on it hears anything, so its call ends at once
 * (BYE to every phone, EventReleased to every desktop) instead of staying up silent. A leg of it
 * that another call also uses (a consulting DN's phone) cannot move back there without media: that
 * party leaves the other call too.
 */
function bridgeLost(engine: Engine, step: Step, bridgeId: string, instance: string, reason: string): void {
  const call = engine.store.bridgeCall(bridgeId);
  const legs = [...engine.store.legs.values()].filter((leg) => leg.bridgeId === bridgeId && !leg.mediaGone);
  step.report('warn', 'bridge-lost', `media bridge ${bridgeId} lost with media-controller ${instance}: ${reason}`, { connId: call?.connId });
  for (const leg of legs) leg.mediaGone = true;
  if (call !== undefined) engine.endCall(step, call, { callState: 'GeneralError', status: 503 });
  for (const leg of legs) {
    for (const use of engine.store.partiesOfLeg(leg.id)) engine.removeParty(step, use.call, use.party, { callState: 'Ok', ownState: 'GeneralError', status: 503 });
  }
}

/** An adopted bridge's parties start fresh (hear and are heard, no music): every leg's flags and music are sent again. */
function bridgeRebuilt(engine: Engine, step: Step, bridgeId: string, instance: string): void {
  step.report('info', 'bridge-rebuilt', `media bridge ${bridgeId} adopted by media-controller ${instance}`, { connId: engine.store.bridgeCall(bridgeId)?.connId });
  for (const leg of engine.store.legs.values()) {
    if (leg.bridgeId === bridgeId && !leg.mediaGone) leg.applied = { listen: undefined, talk: undefined, music: 'none' };
  }
  step.touched.add(bridgeId);
}

export function applyFact(engine: Engine, step: Step, input: Exclude<ModelInput, { kind: 'tlib.request' | 'tlib.gatewayGone' }>): void {
  switch (input.kind) {
    case 'sip.incoming':
      return incoming(engine, step, input.sipRef, input.from, input.to, input.callId);
    case 'sip.ringing':
      return ringing(engine, step, input.legId);
    case 'sip.answered':
      return answered(engine, step, input.legId, input.remote, input.callId);
    case 'sip.failed':
      return failed(engine, step, input.legId, input.status);
    case 'sip.released':
      return released(engine, step, input.legId);
    case 'sip.hold':
      return phoneHold(engine, step, input.legId, true);
    case 'sip.retrieve':
      return phoneHold(engine, step, input.legId, false);
    case 'sip.remoteParties':
      return remoteParties(engine, step, input.legId, input.report);
    case 'media.event':
      return mediaEvent(engine, step, input.event);
    case 'media.bridgeLost':
      return bridgeLost(engine, step, input.bridgeId, input.instance, input.reason);
    case 'media.bridgeRebuilt':
      return bridgeRebuilt(engine, step, input.bridgeId, input.instance);
  }
}
