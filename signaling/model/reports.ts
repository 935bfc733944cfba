/**
 * What the model reports about a call's parties: the LCTParty list (Call Participant Info,
 * EventUserEvent Extensions) and the RFC 4575 conference member list.
 */
import type { Call, Party, Store } from './state.js';
import type { DNRole } from '../../common/tlib/enums.js';
import type { ConferenceMember, EndpointStatus, ModelEnv, PartiesReport, ReportedParty } from './types.js';

/** What a report reads of the model: DN configuration and where each leg is. */
export interface ReportSource {
  readonly env: Pick<ModelEnv, 'dn'>;
  readonly store: Pick<Store, 'legs'>;
}

/** Parties listed in LCTParty: those connected to the call, in join order. */
function listedParties(call: Call): Party[] {
  return call.parties.filter((p) => p.state === 'Established');
}

/** LCTParty<n>_type (extended): how the party is reached. */
function reachType(engine: ReportSource, party: Party): string {
  if (party.trunk !== undefined) return isInterTrunk(engine, party) ? 'InterTrunk' : 'Trunk';
  return party.dn === undefined ? 'Unknown' : (engine.env.dn(party.dn)?.type ?? 'Unknown');
}

export function isInterTrunk(engine: Pick<ReportSource, 'env'>, party: Party): boolean {
  return party.trunk !== undefined && engine.env.dn(party.trunk)?.options['sip-server-inter-trunk'] === true;
}

/** One line of the LCTParty list: a party of this site's call, or one another site reported. */
interface LctEntry extends ReportedParty {
  role: DNRole;
  type: string;
  /** The Trunk DN of this site the party is reached through. */
  trunk?: string;
}

function localEntry(engine: ReportSource, p: Party): LctEntry {
  const entry: LctEntry = { alias: p.alias, location: p.location, role: p.role, type: reachType(engine, p) };
  if (p.trunk !== undefined) entry.trunk = p.trunk;
  if (p.listenDisconnected !== undefined) {
    entry.state = 'ListenDisconnectedHeld';
    entry.disconnectedBy = p.listenDisconnected.by;
  }
  return entry;
}

/** A party another site reported, reached through `via` (listen-disconnected here with it, if `via` is). */
function remoteEntry(engine: ReportSource, via: Party, reported: ReportedParty): LctEntry {
  const entry: LctEntry = { alias: reported.alias, location: reported.location, role: reported.role ?? via.role, type: reported.type ?? 'Unknown' };
  if (via.trunk !== undefined) entry.trunk = via.trunk;
  const by = reported.state !== undefined ? reported.disconnectedBy : via.listenDisconnected?.by;
  if (reported.state !== undefined || via.listenDisconnected !== undefined) entry.state = 'ListenDisconnectedHeld';
  if (by !== undefined) entry.disconnectedBy = by;
  return entry;
}

/**
 * The far site's listen-disconnect of our side of the leg (its peer entry) shown on the party it
 * names. The role stays ours: each site says the roles of the parties it holds.
 */
function withPeerState(entry: LctEntry, peer: ReportedParty): LctEntry {
  const shown = { ...entry };
  if (shown.state === undefined && peer.state !== undefined) {
    shown.state = peer.state;
    if (peer.disconnectedBy !== undefined) shown.disconnectedBy = peer.disconnectedBy;
  }
  return shown;
}

/**
 * A party over an inter-trunk stands for the far site's parties of the call. One that reported
 * only itself stays as this site sees it (with the far site's listen-disconnect state of it).
 */
function expanded(engine: ReportSource, p: Party): LctEntry[] {
  const remote = (p.remote ?? []).filter((r) => r.peer !== true);
  const local = localEntry(engine, p);
  if (remote.length === 0) return [local];
  if (remote.length === 1 && remote[0]!.alias === p.alias) return [withPeerState(local, remote[0]!)];
  return remote.map((r) => remoteEntry(engine, p, r));
}

/**
 * The call's LCTParty list, the far sites' parties included. A call that came from another of our
 * sites is listed in that site's order (it started there), our own parties in place of the entry
 * that stands for this site. `via`: the party a report is for, listed as itself and marked peer.
 */
function lctEntries(engine: ReportSource, call: Call, via?: Party): LctEntry[] {
  const listed = listedParties(call);
  const own = (p: Party): LctEntry[] => (p === via ? [{ ...localEntry(engine, p), peer: true }] : expanded(engine, p));
  const frame = call.origin === undefined || via !== undefined ? undefined : listed.find((p) => p.legId === call.origin?.legId && p.remote?.some((r) => r.peer === true));
  if (frame === undefined) return listed.flatMap(own);
  return frame.remote!.flatMap((r) => {
    if (r.peer !== true) return [remoteEntry(engine, frame, r)];
    return listed.filter((p) => p !== frame).flatMap((p) => own(p).map((e) => (e.alias === r.alias ? withPeerState(e, r) : e)));
  });
}

/**
 * LCTParty<n> = alias, LCTParty<n>_location = site, LCTParty<n>_state = ListenDisconnectedHeld while
 * listen-disconnected, LCTPartiesLength. Extended keys: LCTParty<n>_role (DN role in the call),
 * LCTParty<n>_type (Extension | ACDPosition | Trunk | InterTrunk), LCTParty<n>_trunk (the Trunk DN
 * the party is reached through), LCTParty<n>_disconnectedBy (who listen-disconnected it).
 */
export function lctExtensions(engine: ReportSource, call: Call, extended: boolean): Record<string, string | number> {
  const ext: Record<string, string | number> = {};
  const entries = lctEntries(engine, call);
  entries.forEach((p, n) => {
    const key = `LCTParty${n}`;
    ext[key] = p.alias;
    ext[`${key}_location`] = p.location;
    if (p.state !== undefined) ext[`${key}_state`] = p.state;
    if (!extended) return;
    ext[`${key}_role`] = p.role;
    ext[`${key}_type`] = p.type;
    if (p.trunk !== undefined) ext[`${key}_trunk`] = p.trunk;
    if (p.disconnectedBy !== undefined) ext[`${key}_disconnectedBy`] = p.disconnectedBy;
  });
  ext.LCTPartiesLength = entries.length;
  return ext;
}

/** The call's correlation id: the ConnID where it started. */
export function originConnId(call: Call): string {
  return call.origin?.connId ?? call.connId;
}

/** What this site tells the far site of the inter-trunk party `via` about the call. */
export function partiesReport(engine: ReportSource, call: Call, via: Party): PartiesReport {
  const parties = lctEntries(engine, call, via).map(({ trunk: _trunk, ...reported }): ReportedParty => reported);
  return { originConnId: originConnId(call), parties };
}

function endpointStatus(engine: ReportSource, call: Call, party: Party): EndpointStatus {
  const leg = engine.store.legs.get(party.legId);
  if (party.state !== 'Established') {
    if (leg?.direction === 'inbound') return 'dialing-in';
    return leg?.sip === 'ringing' ? 'alerting' : 'dialing-out';
  }
  if (party.listenDisconnected !== undefined || party.held || leg?.bridgeId !== call.bridgeId) return 'on-hold';
  return 'connected';
}

export function conferenceMembers(engine: ReportSource, call: Call): ConferenceMember[] {
  return call.parties.map((p) => {
    const status = endpointStatus(engine, call, p);
    const member: ConferenceMember = { alias: p.alias, location: p.location, role: p.role, status, media: status === 'connected' ? 'sendrecv' : 'inactive' };
    if (p.listenDisconnected !== undefined) member.lctState = 'ListenDisconnectedHeld';
    if (p.dn !== undefined) member.dn = p.dn;
    if (p.trunk !== undefined) member.trunk = p.trunk;
    return member;
  });
}
