/**
 * The parties report on the wire: a SIP INFO (RFC 6086 Info-Package `huddle-parties`) with a JSON
 * body, sent only within dialogs over inter-trunks between our sites, so that a site shows the
 * parties another site holds (LCTParty) and names the call as the site it started on does.
 * RFC 4575 conference-info (signaling/conference-info.ts) is what phones get; it has no place for
 * who listen-disconnected whom, the LCTParty role and type, the entry that is the receiver itself,
 * or the call's ConnID, so sites speak this instead.
 *
 *   INFO sip:…  Info-Package: huddle-parties  Content-Type: application/vnd.huddle.parties+json
 *   {"originConnId":"00b1c2d3e4f50607","parties":[{"alias":"7001","location":"SiteA","role":"ConferenceMember","type":"Extension"},
 *    {"alias":"8001","location":"SiteB","role":"ConferenceMember","type":"InterTrunk","state":"ListenDisconnectedHeld","disconnectedBy":"7002","peer":true}]}
 */
import { ConnIDPattern } from '../common/tlib/connid.js';
import { DNRoles } from '../common/tlib/enums.js';
import type { PartiesReport, ReportedParty } from './model/index.js';

export const PartiesInfoPackage = 'huddle-parties';
export const PartiesContentType = 'application/vnd.huddle.parties+json';

/** More parties than any conference we make: a report beyond it is refused rather than shown. */
const MaxParties = 64;
const MaxText = 64;

export function encodePartiesReport(report: PartiesReport): string {
  return JSON.stringify(report);
}

function text(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MaxText;
}

/** The report in an INFO body from another site, or an error saying what is wrong with it. */
export function decodePartiesReport(body: string): PartiesReport | { error: string } {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return { error: 'body is not JSON' };
  }
  const { originConnId, parties } = (data ?? {}) as { originConnId?: unknown; parties?: unknown };
  if (typeof originConnId !== 'string' || !ConnIDPattern.test(originConnId)) return { error: 'originConnId is not a ConnID' };
  if (!Array.isArray(parties) || parties.length > MaxParties) return { error: `parties is not a list of at most ${MaxParties}` };
  const read: ReportedParty[] = [];
  for (const p of parties as Record<string, unknown>[]) {
    if (typeof p !== 'object' || p === null || !text(p.alias) || !text(p.location)) return { error: 'a party has no alias or location' };
    const party: ReportedParty = { alias: p.alias, location: p.location };
    if (p.role !== undefined) {
      if (!DNRoles.includes(p.role as (typeof DNRoles)[number])) return { error: `unknown role ${String(p.role)}` };
      party.role = p.role as (typeof DNRoles)[number];
    }
    if (p.type !== undefined) {
      if (!text(p.type)) return { error: 'type is not a name' };
      party.type = p.type;
    }
    if (p.state !== undefined) {
      if (p.state !== 'ListenDisconnectedHeld') return { error: `unknown state ${String(p.state)}` };
      party.state = p.state;
    }
    if (p.disconnectedBy !== undefined) {
      if (!text(p.disconnectedBy)) return { error: 'disconnectedBy is not a DN' };
      party.disconnectedBy = p.disconnectedBy;
    }
    if (p.peer === true) party.peer = true;
    read.push(party);
  }
  return { originConnId, parties: read };
}
