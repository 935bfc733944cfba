/**
 * T-Library requests: each is checked completely first (a RequestError changes nothing), then
 * applied through the engine's transitions. A request arrives well-formed (the gateway checks it
 * against its schema, common/tlib/requests.ts): the checks here are those that need the world.
 */
import type { TlibOrigin } from '../../common/nats/tlib-contract.js';
import { ConnIDPattern } from '../../common/tlib/connid.js';
import type { RequestName } from '../../common/tlib/enums.js';
import type { TEvent } from '../../common/tlib/messages.js';
import type { TRequest } from '../../common/tlib/requests.js';
import { isPhone, type Destination, type Engine, type LeaveCause } from './engine.js';
import { refuse } from './errors.js';
import { closeListen } from './history.js';
import { lctExtensions } from './reports.js';
import { originKey, type Call, type Party } from './state.js';
import type { Step } from './step.js';

/** A request that may be applied; ThisDN, OtherDN and ConnID are '' when the request carries none. */
export interface CheckedRequest {
  name: RequestName;
  ref: number;
  origin: TlibOrigin;
  thisDN: string;
  otherDN: string;
  connId: string;
  raw: TRequest;
}

/** The ListenDisconnect option gate (51), DN configured (59), DN registered (41). */
export function checkRequest(engine: Engine, raw: TRequest, origin: TlibOrigin): CheckedRequest {
  const name = raw.request;
  if (name === 'ListenDisconnect' || name === 'ListenReconnect') {
    const options = engine.env.options();
    if (!options['sip-enable-call-info'] || !options['sip-enable-call-info-extended']) {
      refuse('UnsupportedOperation', `${name} needs the options sip-enable-call-info and sip-enable-call-info-extended set to true`);
    }
  }
  const thisDN = raw.ThisDN ?? '';
  if (raw.ThisDN !== undefined && engine.env.dn(thisDN) === undefined) refuse('DNNotConfigured', `DN ${thisDN} is not configured`);
  if (raw.ThisDN !== undefined && name !== 'RegisterAddress' && engine.store.registrations.get(thisDN)?.has(originKey(origin)) !== true) {
    refuse('NotRegistered', `DN ${thisDN} is not registered by this client`);
  }
  const otherDN = 'OtherDN' in raw ? raw.OtherDN : '';
  const connId = connIdOf(raw) ?? '';
  return { name, ref: raw.ReferenceID, origin, thisDN, otherDN, connId, raw };
}

/** The ConnID of a request that names a call. */
export function connIdOf(raw: TRequest): string | undefined {
  return 'ConnID' in raw ? raw.ConnID : undefined;
}

// ------------------------------------------------------------------ shared checks

function phoneOf(engine: Engine, req: CheckedRequest): void {
  if (!isPhone(engine.env.dn(req.thisDN))) refuse('UnsupportedOperation', `${req.name} needs ThisDN to be an Extension or ACDPosition; ${req.thisDN} is not`);
}

function callOf(engine: Engine, connId: string): Call {
  if (!ConnIDPattern.test(connId)) refuse('InvalidConnID', `ConnID ${connId} is not 16 lowercase hexadecimal digits`);
  const call = engine.store.calls.get(connId);
  if (call === undefined) refuse('InvalidConnID', `no call with ConnID ${connId}`);
  return call;
}

function requesterIn(engine: Engine, call: Call, dn: string): Party {
  const party = engine.partyOfDn(call, dn);
  if (party === undefined) refuse('InvalidConnID', `DN ${dn} is not a party of call ${call.connId}`);
  return party;
}

/** The requester's party is connected, with its phone in this call (not away in a consultation). */
function assertActive(engine: Engine, call: Call, party: Party): void {
  const dn = party.dn ?? party.alias; // the requester's party: its dn is ThisDN
  if (party.state !== 'Established') refuse('InvalidState', `DN ${dn} is not connected to call ${call.connId}`);
  if (engine.store.legs.get(party.legId)?.bridgeId !== call.bridgeId) refuse('InvalidState', `DN ${dn} is in a consultation call; complete or release it first`);
}

function destinationFor(engine: Engine, req: CheckedRequest, call?: Call): Destination {
  const dest = engine.route(req.otherDN);
  if (dest === undefined) refuse('InvalidCalledDN', `${req.otherDN} is neither a DN of this site nor a number matching a Trunk prefix`);
  if (dest.dn === req.thisDN) refuse('InvalidCalledDN', `DN ${req.thisDN} cannot call itself`);
  if (dest.trunk !== undefined && !engine.mayUseTrunk(req.thisDN, dest.trunk)) {
    refuse('InvalidCalledDN', `DN ${req.thisDN} may not call out through Trunk ${dest.trunk} (SipDN option sip-trunk-access)`);
  }
  if (call !== undefined && call.parties.some((p) => p.alias === dest.alias)) refuse('InvalidAttribute', `${req.otherDN} is already a party of call ${call.connId}`);
  return dest;
}

/** A conference party by its LCTParty alias, for DeleteFromConference / ListenDisconnect / ListenReconnect. */
function conferenceTarget(engine: Engine, call: Call, req: CheckedRequest): Party {
  const listed = call.parties.filter((p) => p.state === 'Established');
  if (listed.length < 3) refuse('InvalidState', `${req.name} needs a conference of three or more parties; call ${call.connId} has ${listed.length}`);
  const requester = engine.partyOfDn(call, req.thisDN);
  if (requester !== undefined && requester.alias === req.otherDN) refuse('InvalidAttribute', `OtherDN ${req.otherDN} is the requester itself`);
  const target = listed.find((p) => p.alias === req.otherDN);
  if (target === undefined) refuse('InvalidAttribute', `OtherDN ${req.otherDN} is not a party alias (LCTParty) of call ${call.connId}`);
  return target;
}

// ------------------------------------------------------------------ requests

export function applyRequest(engine: Engine, step: Step, req: CheckedRequest): void {
  switch (req.name) {
    case 'RegisterAddress':
      return register(engine, step, req);
    case 'UnregisterAddress':
      return unregister(engine, step, req);
    case 'QueryCall':
      return queryCall(engine, step, req);
    case 'SendUserEvent':
      return sendUserEvent(engine, step, req);
    default:
      phoneOf(engine, req);
      return callControl(engine, step, req);
  }
}

function callControl(engine: Engine, step: Step, req: CheckedRequest): void {
  if (req.name === 'MakeCall') return makeCall(engine, step, req);
  const call = callOf(engine, req.connId);
  // Every call-control request is made by a party of the call: checked before anything else.
  const party = requesterIn(engine, call, req.thisDN);
  switch (req.name) {
    case 'AnswerCall':
      return answerCall(engine, step, req, call, party);
    case 'ReleaseCall':
      return releaseCall(engine, step, call, party);
    case 'HoldCall':
      return holdCall(engine, step, req, call, party);
    case 'RetrieveCall':
      return retrieveCall(engine, step, req, call, party);
    case 'InitiateConference':
      return initiateConference(engine, step, req, call, party);
    case 'CompleteConference':
      return completeConference(engine, step, req, call);
    case 'SingleStepConference':
      return singleStepConference(engine, step, req, call, party);
    case 'DeleteFromConference':
      return deleteFromConference(engine, step, req, call);
    case 'ListenDisconnect':
      return listenDisconnect(engine, step, req, call);
    case 'ListenReconnect':
      return listenReconnect(engine, step, req, call);
    default:
      refuse('UnsupportedOperation', `${req.name} is not a call-control request`);
  }
}

function register(engine: Engine, step: Step, req: CheckedRequest): void {
  const key = originKey(req.origin);
  const set = engine.store.registrations.get(req.thisDN) ?? new Set<string>();
  set.add(key);
  engine.store.registrations.set(req.thisDN, set);
  for (const event of dnState(engine, req.thisDN, req.ref, step.time)) step.reply(req.origin, event);
}

/**
 * EventRegistered, then the state of each call the DN is in (EventPartyInfo and, with call info
 * enabled, the LCTParty EventUserEvent): a desktop (re-)registering, or resynced after signaling
 * took its calls over, learns everything it may have missed.
 */
export function dnState(engine: Engine, dn: string, ref: number, time: number): TEvent[] {
  const events: TEvent[] = [{ event: 'EventRegistered', ReferenceID: ref, ThisDN: dn, Time: time }];
  const options = engine.env.options();
  for (const call of engine.store.calls.values()) {
    if (!call.parties.some((p) => p.dn === dn)) continue;
    events.push({ ...partyInfo(call, ref, dn), Time: time });
    if (options['sip-enable-call-info']) {
      const Extensions = lctExtensions(engine, call, options['sip-enable-call-info-extended']);
      const lct: TEvent = { event: 'EventUserEvent', ReferenceID: ref, ThisDN: dn, ConnID: call.connId, Extensions, Time: time };
      if (call.origin !== undefined) lct.OriginConnID = call.origin.connId;
      events.push(lct);
    }
  }
  return events;
}

function partyInfo(call: Call, ref: number, thisDN: string | undefined): TEvent {
  const Parties = call.parties.map((p) => ({
    DN: p.alias,
    Role: p.role,
    State: p.listenDisconnected !== undefined ? 'ListenDisconnectedHeld' : p.held ? 'Held' : p.state,
    Location: p.location,
  }));
  const event: TEvent = { event: 'EventPartyInfo', ReferenceID: ref, ConnID: call.connId, CallType: call.type, CallState: 'Ok', Parties };
  if (call.origin !== undefined) event.OriginConnID = call.origin.connId;
  if (thisDN !== undefined) event.ThisDN = thisDN;
  return event;
}

function unregister(engine: Engine, step: Step, req: CheckedRequest): void {
  const set = engine.store.registrations.get(req.thisDN);
  set?.delete(originKey(req.origin));
  if (set?.size === 0) engine.store.registrations.delete(req.thisDN);
  step.reply(req.origin, { event: 'EventUnregistered', ReferenceID: req.ref, ThisDN: req.thisDN });
}

/** A call's parties are told only to a DN in it, or to a supervisor (a flag only the gateway's envelope carries). */
function queryCall(engine: Engine, step: Step, req: CheckedRequest): void {
  const call = callOf(engine, req.connId);
  if (req.origin.supervisor !== true) {
    if (req.thisDN === '') refuse('InvalidConnID', `QueryCall without ThisDN: only a supervisor may query call ${call.connId}`);
    requesterIn(engine, call, req.thisDN);
  }
  step.reply(req.origin, partyInfo(call, req.ref, req.raw.ThisDN !== undefined ? req.thisDN : undefined));
}

function sendUserEvent(engine: Engine, step: Step, req: CheckedRequest): void {
  const connId = connIdOf(req.raw);
  let to: string[] = [req.thisDN];
  if (connId !== undefined) {
    const call = callOf(engine, connId);
    requesterIn(engine, call, req.thisDN);
    to = engine.recipients(call, req.thisDN).map((p) => p.dn ?? '');
  }
  for (const dn of to) {
    const event: TEvent = { event: 'EventUserEvent', ThisDN: dn, OtherDN: req.thisDN };
    if (connId !== undefined) event.ConnID = connId;
    if (req.raw.UserData !== undefined) event.UserData = req.raw.UserData;
    if (req.raw.Extensions !== undefined) event.Extensions = req.raw.Extensions;
    step.event(dn, event);
  }
  step.reply(req.origin, { event: 'EventACK', ReferenceID: req.ref, ThisDN: req.thisDN });
}

/** 3pcc (RFC 3725): ThisDN's phone is called first; once it answers, OtherDN is called. */
function makeCall(engine: Engine, step: Step, req: CheckedRequest): void {
  const dest = destinationFor(engine, req);
  const call = engine.newCall(step, dest.trunk !== undefined ? 'Outbound' : 'Internal');
  const autoAnswer = engine.env.dn(req.thisDN)?.options['remote-answer'] === true;
  const caller = engine.dial(step, call, { alias: req.thisDN, dn: req.thisDN, location: engine.env.location }, 'Origination', { alias: dest.alias, location: dest.location }, autoAnswer);
  caller.state = 'Dialing';
  caller.ringingReported = true;
  call.pendingDestination = dest;
  engine.send(step, call, caller, 'EventDialing', { OtherDN: dest.alias, OtherDNRole: 'Destination' });
}

function answerCall(engine: Engine, step: Step, req: CheckedRequest, call: Call, party: Party): void {
  if (party.state === 'Established') refuse('InSameState', `DN ${req.thisDN} is already connected to call ${call.connId}`);
  if (party.state !== 'Ringing' || engine.store.legs.get(party.legId)?.direction !== 'outbound') refuse('InvalidState', `DN ${req.thisDN} is not ringing in call ${call.connId}`);
  if (engine.env.dn(req.thisDN)?.options['remote-answer'] !== true) {
    refuse('UnsupportedOperation', `the phone of DN ${req.thisDN} does not accept a remote answer (option remote-answer is false); answer on the phone`);
  }
  party.answerRequest = { ref: req.ref, origin: req.origin, dn: req.thisDN };
  step.sipOut({ kind: 'sip.remoteAnswer', legId: party.legId });
}

function releaseCall(engine: Engine, step: Step, call: Call, party: Party): void {
  let cause: LeaveCause = { callState: 'Ok' };
  if (!call.established && party.role === 'Destination') cause = { callState: 'Busy', ownState: 'Ok', status: 486 };
  else if (!call.established) cause = { callState: 'Ok', status: 487 };
  engine.removeParty(step, call, party, cause);
}

function holdCall(engine: Engine, step: Step, req: CheckedRequest, call: Call, party: Party): void {
  if (party.held) refuse('InSameState', `DN ${req.thisDN} already holds call ${call.connId}`);
  assertActive(engine, call, party);
  engine.hold(step, call, party, req.raw.Extensions?.music);
}

function retrieveCall(engine: Engine, step: Step, req: CheckedRequest, call: Call, party: Party): void {
  if (!party.held) refuse('InSameState', `DN ${req.thisDN} does not hold call ${call.connId}`);
  // A held party is always Established (only an Established party can hold), so this is the consultation check.
  assertActive(engine, call, party);
  engine.retrieve(step, call, party);
}

function initiateConference(engine: Engine, step: Step, req: CheckedRequest, main: Call, party: Party): void {
  assertActive(engine, main, party);
  if (party.held) refuse('InvalidState', `DN ${req.thisDN} holds call ${main.connId}; retrieve it first`);
  const dest = destinationFor(engine, req, main);
  engine.hold(step, main, party, req.raw.Extensions?.music);
  const consult = engine.newCall(step, 'Consult', main.bridgeId);
  consult.consultOf = main.connId;
  consult.consultBy = req.thisDN;
  const leg = engine.store.legs.get(party.legId);
  if (leg !== undefined) engine.moveLeg(step, leg, consult.bridgeId);
  const consulting = engine.store.join(consult, {
    legId: party.legId,
    alias: party.alias,
    dn: req.thisDN,
    location: party.location,
    role: 'Origination',
    state: 'Dialing',
    ringingReported: true,
    held: false,
    ...(party.callId !== undefined ? { callId: party.callId } : {}),
  });
  engine.dial(step, consult, dest, 'Destination', { alias: party.alias, location: party.location });
  engine.send(step, consult, consulting, 'EventDialing', { OtherDN: dest.alias, OtherDNRole: 'Destination' });
}

/** ConnID may name either the held main call or the consultation call. */
function consultationPair(engine: Engine, req: CheckedRequest, call: Call): { main: Call; consult: Call } {
  if (call.consultOf !== undefined && call.consultBy === req.thisDN) {
    const main = engine.store.calls.get(call.consultOf);
    if (main !== undefined) return { main, consult: call };
  }
  for (const consult of engine.store.calls.values()) {
    if (consult.consultOf === call.connId && consult.consultBy === req.thisDN) return { main: call, consult };
  }
  refuse('InvalidState', `DN ${req.thisDN} has no consultation call for call ${call.connId}`);
}

function completeConference(engine: Engine, step: Step, req: CheckedRequest, call: Call): void {
  const { main, consult } = consultationPair(engine, req, call);
  const inMain = requesterIn(engine, main, req.thisDN);
  const inConsult = requesterIn(engine, consult, req.thisDN);
  const added = consult.parties.filter((p) => p !== inConsult);
  if (!consult.established || added.some((p) => p.state !== 'Established')) refuse('InvalidState', `consultation call ${consult.connId} is not established`);

  const consulted = added[0];
  engine.send(step, consult, inConsult, 'EventReleased', consulted === undefined ? { CallState: 'Conferenced' } : { CallState: 'Conferenced', OtherDN: consulted.alias });
  engine.retireCall(step, consult, { cause: 'Conferenced', by: req.thisDN, nextConnId: main.connId });
  for (const p of added) {
    const leg = engine.store.legs.get(p.legId);
    if (leg !== undefined) engine.moveLeg(step, leg, main.bridgeId);
    engine.store.join(main, p);
  }
  const leg = engine.store.legs.get(inMain.legId);
  if (leg !== undefined) engine.moveLeg(step, leg, main.bridgeId);
  step.bridgeDestroy(consult.bridgeId);
  inMain.held = false;
  delete inMain.holdMusic;
  engine.makeConference(main);

  engine.send(step, main, inMain, 'EventRetrieved');
  for (const p of main.parties) {
    if (!added.some((a) => a.legId === p.legId)) continue;
    engine.send(step, main, p, 'EventPartyChanged', {
      PreviousConnID: consult.connId,
      CallState: 'Conferenced',
      OtherDN: req.thisDN,
      OtherDNRole: 'ConferencedBy',
      ThirdPartyDN: req.thisDN,
      ThirdPartyDNRole: 'ConferencedBy',
    });
  }
  for (const r of engine.recipients(main, req.thisDN)) {
    if (added.some((a) => a.legId === r.legId)) continue;
    for (const a of added) {
      engine.send(step, main, r, 'EventPartyAdded', { OtherDN: a.alias, OtherDNRole: 'NewParty', ThirdPartyDN: req.thisDN, ThirdPartyDNRole: 'AddedBy' });
    }
  }
  engine.changed(step, main, true);
}

function singleStepConference(engine: Engine, step: Step, req: CheckedRequest, call: Call, party: Party): void {
  assertActive(engine, call, party);
  if (!call.established) refuse('InvalidState', `call ${call.connId} is not established`);
  const dest = destinationFor(engine, req, call);
  const added = engine.dial(step, call, dest, 'NewParty', { alias: party.alias, location: party.location });
  added.addedBy = req.thisDN;
  added.joinRequest = { ref: req.ref, origin: req.origin, dn: req.thisDN };
}

function deleteFromConference(engine: Engine, step: Step, req: CheckedRequest, call: Call): void {
  const target = conferenceTarget(engine, call, req);
  engine.removeParty(step, call, target, { callState: 'Ok', by: req.thisDN });
}

function listenDisconnect(engine: Engine, step: Step, req: CheckedRequest, call: Call): void {
  const target = conferenceTarget(engine, call, req);
  if (target.listenDisconnected !== undefined) refuse('InSameState', `${req.otherDN} is already listen-disconnected in call ${call.connId}`);
  const active = call.parties.filter((p) => p.state === 'Established' && p.listenDisconnected === undefined && p !== target);
  if (active.length < 2) refuse('InvalidState', `disconnecting ${req.otherDN} would leave fewer than two active parties in call ${call.connId}`);
  // The option is read now: a change applies to the next ListenDisconnect without a restart.
  const music = engine.mohEnabled(target) ? engine.env.options()['music-listen-disconnect'] : null;
  target.listenDisconnected = { by: req.thisDN, music };
  reportListen(engine, step, req, call, target, 'EventListenDisconnected', 'Held');
}

function listenReconnect(engine: Engine, step: Step, req: CheckedRequest, call: Call): void {
  const target = conferenceTarget(engine, call, req);
  if (target.listenDisconnected === undefined) refuse('InSameState', `${req.otherDN} is not listen-disconnected in call ${call.connId}`);
  closeListen(call, target.legId, step.time, req.thisDN);
  delete target.listenDisconnected;
  reportListen(engine, step, req, call, target, 'EventListenReconnected', 'Ok');
}

/** The listen change of `target` goes to every connected desktop, the requester first; the LCTParty list is re-sent. */
function reportListen(
  engine: Engine,
  step: Step,
  req: CheckedRequest,
  call: Call,
  target: Party,
  event: 'EventListenDisconnected' | 'EventListenReconnected',
  callState: 'Held' | 'Ok',
): void {
  for (const r of engine.recipients(call, req.thisDN)) {
    engine.send(step, call, r, event, { OtherDN: target.alias, ThirdPartyDN: req.thisDN, CallState: callState });
  }
  engine.changed(step, call, true);
}
