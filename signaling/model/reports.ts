/**
 * What the model reports about a call's parties: the LCTParty list (Call Participant Info,
 * EventUserEvent Extensions) and the RFC 4575 conference member list.
 */
import type { Call, Party, Store } from './state.js';
import type { ConferenceMember, EndpointStatus, ModelEnv } from './types.js';

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
  if (party.trunk !== undefined) return engine.env.dn(party.trunk)?.options['sip-server-inter-trunk'] === true ? 'InterTrunk' : 'Trunk';
  return party.dn === undefined ? 'Unknown' : (engine.env.dn(party.dn)?.type ?? 'Unknown');
}

/**
 * LCTParty<n> = alias, LCTParty<n>_location = site, LCTParty<n>_state = ListenDisconnectedHeld while
 * listen-disconnected, LCTPartiesLength. Extended keys: LCTParty<n>_role (DN role in the call),
 * LCTParty<n>_type (Extension | ACDPosition | Trunk | InterTrunk), LCTParty<n>_trunk (the Trunk DN
 * the party is reached through), LCTParty<n>_disconnectedBy (who listen-disconnected it).
 */
export function lctExtensions(engine: ReportSource, call: Call, extended: boolean): Record<string, string | number> {
  const ext: Record<string, string | number> = {};
  listedParties(call).forEach((p, n) => {
    const key = `LCTParty${n}`;
    ext[key] = p.alias;
    ext[`${key}_location`] = p.location;
    if (p.listenDisconnected !== undefined) ext[`${key}_state`] = 'ListenDisconnectedHeld';
    if (!extended) return;
    ext[`${key}_role`] = p.role;
    ext[`${key}_type`] = reachType(engine, p);
    if (p.trunk !== undefined) ext[`${key}_trunk`] = p.trunk;
    if (p.listenDisconnected !== undefined) ext[`${key}_disconnectedBy`] = p.listenDisconnected.by;
  });
  ext.LCTPartiesLength = listedParties(call).length;
  return ext;
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
