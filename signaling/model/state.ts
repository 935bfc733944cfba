/** The model's internal state: calls, their parties, and the media legs the parties use. */
import type { CdrParty } from '../../common/nats/cdr-contract.js';
import type { TlibOrigin } from '../../common/nats/tlib-contract.js';
import type { CallType, DNRole } from '../../common/tlib/enums.js';
import type { PartyState, ReportedParty } from './types.js';

/** A request whose answering event comes later (AnswerCall, SingleStepConference). */
export interface PendingReply {
  ref: number;
  origin: TlibOrigin;
  /** The requester's DN. */
  dn: string;
}

export interface ListenDisconnect {
  /** The DN that asked. */
  by: string;
  /** What the party hears, chosen at request time: a file, or null for silence. */
  music: string | null;
}

/** A party of a call. A call's parties are kept in join order, which is the LCTParty numbering. */
export interface Party {
  legId: string;
  /** The LCTParty alias: the DN number, or the remote number / remote DN behind a trunk. */
  alias: string;
  /** Set when the party is one of our phone DNs (it has a desktop to send events to). */
  dn?: string;
  /** Set when the party is reached over a Trunk DN. */
  trunk?: string;
  location: string;
  role: DNRole;
  state: PartyState;
  /** EventRinging already sent (or not needed). */
  ringingReported: boolean;
  /** This party put the call on hold; holdMusic is what the other party of a two-party call hears. */
  held: boolean;
  holdMusic?: string;
  listenDisconnected?: ListenDisconnect;
  /** Added by SingleStepConference: who added it, and that request's answer, due when the party joins. */
  addedBy?: string;
  joinRequest?: PendingReply;
  /** TAnswerCall on this ringing party: its answer is due when the phone answers. */
  answerRequest?: PendingReply;
  /** Over an inter-trunk: the far site's parties of the call, as it last reported them. */
  remote?: ReportedParty[];
  /** Over an inter-trunk: the last report sent to the far site (JSON), so that only changes are sent. */
  reported?: string;
  /** The SIP Call-ID of the party's leg, once the adapter told it (incoming INVITE, answer). */
  callId?: string;
}

/** Media state the model believes a leg has; undefined flags: unknown (re-sent on next reconcile). */
export interface AppliedMedia {
  listen: boolean | undefined;
  talk: boolean | undefined;
  /** 'none', or the file playing (null: silence). */
  music: 'none' | { file: string | null };
}

export interface Leg {
  id: string;
  bridgeId: string;
  direction: 'inbound' | 'outbound';
  sip: 'offered' | 'calling' | 'ringing' | 'up';
  /** The leg's dialog is gone (BYE/CANCEL/failure): never release it again. */
  sipGone: boolean;
  /** media-controller lost the leg (leg-failed): never remove it again. */
  mediaGone: boolean;
  applied: AppliedMedia;
  /** The calls with a party on this leg (kept by Store.join/leave/addCall/deleteCall). */
  users: Set<Call>;
}

export interface Call {
  connId: string;
  bridgeId: string;
  type: CallType;
  parties: Party[];
  /** Two parties have been connected at least once. */
  established: boolean;
  conference: boolean;
  confVersion: number;
  /** For a consultation call: the main call's ConnID, and the DN consulting. */
  consultOf?: string;
  consultBy?: string;
  /**
   * The call came over an inter-trunk from another of our sites: the ConnID of the call where it
   * started, and the leg it came on (whose reports keep it current).
   */
  origin?: { connId: string; legId: string };
  /** MakeCall (3pcc): the destination, called once the caller's phone has answered. */
  pendingDestination?: { alias: string; dn?: string; trunk?: string; number?: string; location: string };
  /** What the call detail record will tell (history.ts); absent only in a call restored from an older snapshot. */
  history?: CallHistory;
}

/** A party's stay in a call, by its leg (times in the model's clock): its CDR entry while the call lasts. */
export interface MemberHistory extends Omit<CdrParty, 'left'> {
  legId: string;
  left?: number;
}

export interface ListenHistory {
  legId: string;
  by: string;
  whom: string;
  from: number;
  to?: number;
  reconnectedBy?: string;
}

export interface CallHistory {
  start: number;
  answer?: number;
  /** 1 once the call was a conference (compact in the snapshot). */
  conference?: 1;
  previousConnIds?: string[];
  members: MemberHistory[];
  listen: ListenHistory[];
}

export class Store {
  readonly calls = new Map<string, Call>();
  readonly legs = new Map<string, Leg>();
  readonly callByBridge = new Map<string, string>();
  /** DN -> keys of the origins (gateway/client) that registered it. */
  readonly registrations = new Map<string, Set<string>>();

  /** A call enters the store with its parties (a new call, or the one the leaving rule makes). */
  addCall(call: Call): void {
    this.calls.set(call.connId, call);
    this.callByBridge.set(call.bridgeId, call.connId);
    for (const party of call.parties) this.legs.get(party.legId)?.users.add(call);
  }

  /** A call leaves the store; its parties stay readable on the object but no longer use their legs. */
  deleteCall(call: Call): void {
    this.calls.delete(call.connId);
    if (this.callByBridge.get(call.bridgeId) === call.connId) this.callByBridge.delete(call.bridgeId);
    for (const party of call.parties) this.legs.get(party.legId)?.users.delete(call);
  }

  join(call: Call, party: Party): Party {
    call.parties.push(party);
    this.legs.get(party.legId)?.users.add(call);
    return party;
  }

  leave(call: Call, party: Party): void {
    call.parties.splice(call.parties.indexOf(party), 1);
    this.legs.get(party.legId)?.users.delete(call);
  }

  bridgeCall(bridgeId: string): Call | undefined {
    const connId = this.callByBridge.get(bridgeId);
    return connId === undefined ? undefined : this.calls.get(connId);
  }

  /** Every (call, party) using a leg: one, or two while its DN consults (main call held + consultation). */
  partiesOfLeg(legId: string): { call: Call; party: Party }[] {
    const found: { call: Call; party: Party }[] = [];
    for (const call of this.legs.get(legId)?.users ?? []) {
      const party = call.parties.find((p) => p.legId === legId);
      if (party !== undefined) found.push({ call, party });
    }
    return found;
  }
}

export function originKey(origin: TlibOrigin): string {
  return `${origin.gateway}\u0000${origin.client}`;
}
