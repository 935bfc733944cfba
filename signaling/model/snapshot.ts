/**
 * Snapshot and restore of the call model's state, one call group at a time, so that another
 * process can carry calls on (signaling/call-state.ts keeps them in JetStream). A call group is
 * the calls that share legs (a consultation and its main call): they must move together, since a
 * leg belongs to one owner. Plain JSON, compact: absent fields are left out.
 */
import type { AppliedMedia, Call, Leg, Party, Store } from './state.js';

export interface LegRecord {
  id: string;
  bridgeId: string;
  direction: Leg['direction'];
  sip: Leg['sip'];
  /** Applied media: [listen, talk, music] with null for an unknown flag, 0 for no music. */
  applied: [boolean | null, boolean | null, 0 | { file: string | null }];
  sipGone?: 1;
  mediaGone?: 1;
}

/** A call with its parties in join order (the LCTParty order). */
export type CallRecord = Omit<Call, 'parties'> & { parties: Party[] };

export interface GroupSnapshot {
  calls: CallRecord[];
  legs: LegRecord[];
}

/** The group of a call: the calls reachable from it through shared legs, `seed` first. */
export function groupOf(store: Store, seed: Call): Call[] {
  const found = new Set<Call>([seed]);
  const queue = [seed];
  for (let call = queue.pop(); call !== undefined; call = queue.pop()) {
    for (const party of call.parties) {
      for (const other of store.legs.get(party.legId)?.users ?? []) {
        if (found.has(other)) continue;
        found.add(other);
        queue.push(other);
      }
    }
  }
  return [...found];
}

function legRecord(leg: Leg): LegRecord {
  const { listen, talk, music } = leg.applied;
  const record: LegRecord = { id: leg.id, bridgeId: leg.bridgeId, direction: leg.direction, sip: leg.sip, applied: [listen ?? null, talk ?? null, music === 'none' ? 0 : { file: music.file }] };
  if (leg.sipGone) record.sipGone = 1;
  if (leg.mediaGone) record.mediaGone = 1;
  return record;
}

/** The group's calls and legs as records; they share the live parties, so serialize them at once. */
export function snapshotGroup(store: Store, calls: readonly Call[]): GroupSnapshot {
  const legs = new Map<string, LegRecord>();
  const records = calls.map((call): CallRecord => {
    for (const party of call.parties) {
      const leg = store.legs.get(party.legId);
      if (leg !== undefined && !legs.has(leg.id)) legs.set(leg.id, legRecord(leg));
    }
    return { ...call };
  });
  return { calls: records, legs: [...legs.values()] };
}

/** Puts a group's calls and legs into the store; calls or legs with the same ids are replaced. */
export function restoreGroup(store: Store, snapshot: GroupSnapshot): Call[] {
  for (const record of snapshot.legs) {
    const [listen, talk, music] = record.applied;
    const applied: AppliedMedia = { listen: listen ?? undefined, talk: talk ?? undefined, music: music === 0 ? 'none' : { file: music.file } };
    store.legs.set(record.id, {
      id: record.id,
      bridgeId: record.bridgeId,
      direction: record.direction,
      sip: record.sip,
      sipGone: record.sipGone === 1,
      mediaGone: record.mediaGone === 1,
      applied,
      users: new Set(),
    });
  }
  const calls = snapshot.calls.map((record) => structuredCopy(record) as Call);
  for (const call of calls) {
    const old = store.calls.get(call.connId);
    if (old !== undefined) store.deleteCall(old);
    store.addCall(call);
  }
  return calls;
}

/** Removes a group from the store (another process owns it now); nothing is sent for it. */
export function dropGroup(store: Store, calls: readonly Call[]): void {
  for (const call of calls) {
    store.deleteCall(call);
    for (const party of call.parties) {
      const leg = store.legs.get(party.legId);
      if (leg !== undefined && leg.users.size === 0) store.legs.delete(leg.id);
    }
  }
}

/** A deep copy of JSON-shaped data (no Sets, Maps or functions). */
function structuredCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
