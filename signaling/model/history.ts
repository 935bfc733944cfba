/**
 * A call's history for its call detail record: who was in it from when to when, when it was
 * answered, each listen-disconnect interval. It lives on the call itself (Call.history), so it
 * travels in the call's snapshot and a replica that takes the call over publishes the whole record.
 *
 * The history is brought in step with the call's parties once per step (syncHistory, for every
 * call the step touched, and for a call as it ends), rather than at each place parties change:
 * one rule sees every join, answer, leave and isolation, however a transition made it.
 */
import type { CallDetail, CdrRelease } from '../../common/nats/cdr-contract.js';
import type { Call, CallHistory } from './state.js';

export function newHistory(time: number, previousConnIds: string[] = []): CallHistory {
  const history: CallHistory = { start: time, members: [], listen: [] };
  if (previousConnIds.length > 0) history.previousConnIds = previousConnIds;
  return history;
}

/** The call's history, made at `time` for a call restored from a snapshot written before histories existed. */
function historyOf(call: Call, time: number): CallHistory {
  call.history ??= newHistory(time);
  return call.history;
}

/** Records what changed in the call's parties since the last step, at `time`. */
export function syncHistory(call: Call, time: number): void {
  const h = historyOf(call, time);
  if (call.established) h.answer ??= time;
  if (call.conference) h.conference = 1;
  const present = new Map(call.parties.map((p) => [p.legId, p]));
  for (const m of h.members) {
    if (m.left !== undefined) continue;
    const party = present.get(m.legId);
    if (party === undefined) {
      m.left = time;
      continue;
    }
    present.delete(m.legId);
    m.alias = party.alias;
    m.location = party.location;
    m.role = party.role;
    if (party.state === 'Established') m.connected ??= time;
    if (party.callId !== undefined) m.callId = party.callId;
  }
  for (const party of present.values()) {
    const m: CallHistory['members'][number] = { legId: party.legId, alias: party.alias, location: party.location, role: party.role, joined: time };
    if (party.dn !== undefined) m.dn = party.dn;
    if (party.trunk !== undefined) m.trunk = party.trunk;
    if (party.callId !== undefined) m.callId = party.callId;
    if (party.state === 'Established') m.connected = time;
    h.members.push(m);
  }
  const isolated = new Map(call.parties.filter((p) => p.listenDisconnected !== undefined).map((p) => [p.legId, p]));
  for (const interval of h.listen) {
    if (interval.to !== undefined) continue;
    if (isolated.has(interval.legId)) isolated.delete(interval.legId);
    else interval.to = time;
  }
  for (const party of isolated.values()) h.listen.push({ legId: party.legId, by: party.listenDisconnected?.by ?? '', whom: party.alias, from: time });
}

/** ListenReconnect by `by`: the party's open interval ends now, naming who ended it. */
export function closeListen(call: Call, legId: string, time: number, by: string): void {
  const interval = historyOf(call, time).listen.find((i) => i.legId === legId && i.to === undefined);
  if (interval === undefined) return;
  interval.to = time;
  interval.reconnectedBy = by;
}

/** The call's detail record as it ends at `time` (its history brought up to date first; whoever is left leaves now). */
export function callDetail(call: Call, location: string, time: number, release: CdrRelease): CallDetail {
  syncHistory(call, time);
  const h = historyOf(call, time);
  const parties = h.members.map((m) => {
    const party: CallDetail['parties'][number] = { alias: m.alias, location: m.location, role: m.role, joined: m.joined, left: m.left ?? time };
    if (m.dn !== undefined) party.dn = m.dn;
    if (m.trunk !== undefined) party.trunk = m.trunk;
    if (m.callId !== undefined) party.callId = m.callId;
    if (m.connected !== undefined) party.connected = m.connected;
    return party;
  });
  const distinct = (values: (string | undefined)[]) => [...new Set(values.filter((v): v is string => v !== undefined))];
  const detail: CallDetail = {
    connId: call.connId,
    previousConnIds: h.previousConnIds ?? [],
    site: location,
    type: call.type,
    start: h.start,
    end: time,
    conference: h.conference === 1,
    parties,
    dns: distinct(parties.map((p) => p.dn)),
    trunks: distinct(parties.map((p) => p.trunk)),
    callIds: distinct(parties.map((p) => p.callId)),
    listenDisconnects: h.listen.map((i) => {
      const interval: CallDetail['listenDisconnects'][number] = { by: i.by, whom: i.whom, from: i.from, to: i.to ?? time };
      if (i.reconnectedBy !== undefined) interval.reconnectedBy = i.reconnectedBy;
      return interval;
    }),
    release,
  };
  if (call.origin !== undefined) detail.originConnId = call.origin.connId;
  if (h.answer !== undefined) detail.answer = h.answer;
  if (call.consultOf !== undefined) detail.consultOf = call.consultOf;
  return detail;
}
