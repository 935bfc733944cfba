/**
 * Call detail records (CDRs): what signaling publishes when a call (a ConnID) ends, on
 * Subjects.cdr(site, connId) into the site's JetStream stream (CdrStream), and what the gateway's
 * `/cdr` endpoint and `tlib cdr` hand out. The format is versioned: a reader checks `version`;
 * fields are only ever added within a version. Times are milliseconds since the epoch (UTC), as
 * the T-Library `Time` attribute. Documented in tlib-api/README.md, "Call detail records".
 */
import type { CallType, DNRole } from '../tlib/enums.js';

export const CdrFormatVersion = 1;

/** One stay of a party in the call: from joining (dialled, or moved in) until leaving. A party that came back has a second entry. */
export interface CdrParty {
  /** The LCTParty alias: the DN, or the remote number / remote DN behind a trunk. */
  alias: string;
  /** One of this site's phone DNs. */
  dn?: string;
  /** The Trunk DN the party is reached through. */
  trunk?: string;
  location: string;
  /** The party's role when it left. */
  role: DNRole;
  /** The SIP Call-ID of the party's leg (known once its INVITE came in or was answered). */
  callId?: string;
  joined: number;
  /** When the party was connected in this call (answered, or joined already connected); absent if it never was. */
  connected?: number;
  left: number;
}

/** One listen-disconnect interval: `by` disconnected `whom` from `from` until `to`. */
export interface CdrListenDisconnect {
  by: string;
  whom: string;
  from: number;
  to: number;
  /** Who reconnected the party (ListenReconnect); absent when the interval ended otherwise (the party left, the leaving rule, the call's end). */
  reconnectedBy?: string;
}

/**
 * Why the call (its ConnID) ended: `cause` is the T-Library CallState the parties were released
 * with (Ok, Busy, NoAnswer, GeneralError ...), `Conferenced` for a consultation merged into its
 * main call, or `NewConnID` when the leaving rule carried the parties on in a new call.
 */
export interface CdrRelease {
  cause: string;
  /** The party whose leaving ended the call (hang-up, ReleaseCall, DeleteFromConference), or the DN that asked. */
  by?: string;
  /** The SIP status the call's end gave an unanswered caller or came from (486, 487, 503 ...). */
  status?: number;
  /** Conferenced: the main call; NewConnID: the new call. */
  nextConnId?: string;
}

/** What the call model knows of a call when it ends. */
export interface CallDetail {
  connId: string;
  /** ConnIDs this call carries on (the leaving rule's earlier calls), oldest first. */
  previousConnIds: string[];
  /** The consultation's main call (InitiateConference). */
  consultOf?: string;
  /** A call that came over an inter-trunk from another of our sites: its ConnID there (OriginConnID), which joins the two sites' records. */
  originConnId?: string;
  site: string;
  type: CallType;
  start: number;
  /** When two parties were first connected; absent for a call never answered. */
  answer?: number;
  end: number;
  /** The call was a conference (three or more parties) at some time. */
  conference: boolean;
  /** Every stay of every party, in join order. */
  parties: CdrParty[];
  /** This site's phone DNs that took part, in join order. */
  dns: string[];
  trunks: string[];
  /** The SIP Call-IDs of the call's legs. */
  callIds: string[];
  listenDisconnects: CdrListenDisconnect[];
  release: CdrRelease;
}

/** A CDR as published. */
export interface CallDetailRecord extends CallDetail {
  version: typeof CdrFormatVersion;
}

/** What a reader asks for: the CDRs naming a ConnID (its own or a previous one) and/or a DN (a party's DN or alias). */
export interface CdrFilter {
  connId?: string;
  dn?: string;
}

export function cdrMatches(record: CallDetailRecord, filter: CdrFilter): boolean {
  if (filter.connId !== undefined && record.connId !== filter.connId && record.originConnId !== filter.connId && !record.previousConnIds.includes(filter.connId) && record.release.nextConnId !== filter.connId) return false;
  if (filter.dn !== undefined && !record.dns.includes(filter.dn) && !record.parties.some((p) => p.alias === filter.dn)) return false;
  return true;
}
