/**
 * The call model's inputs, outputs and environment. The model is pure: time, ids, options and DN
 * configuration come in through ModelEnv; everything it wants done goes out as ModelOutput, which
 * the adapters (SIP, media over NATS, T-Library over NATS) carry out in the order given.
 */
import type { DNOptions, DNType, TServerOptions } from '../../common/config/schema.js';
import type { CallDetail } from '../../common/nats/cdr-contract.js';
import type { MediaCommand, MediaEvent } from '../../common/nats/media-contract.js';
import type { TlibOrigin } from '../../common/nats/tlib-contract.js';
import type { CallType, DNRole } from '../../common/tlib/enums.js';
import type { TEvent, TRequest } from '../../common/tlib/messages.js';

/** A SipDN as the model needs it (the spec without its cluster). */
export interface DnConfig {
  number: string;
  type: DNType;
  options: DNOptions;
}

/** Where ids come from. Adapters give random ones; tests give counterIds(). */
export interface IdSource {
  /** 16 lowercase hexadecimal digits, unique. */
  connId(): string;
  legId(): string;
  bridgeId(): string;
}

export interface ModelEnv {
  /** This site's name (SipCluster spec.location), reported as LCTParty<n>_location. */
  location: string;
  /**
   * TServer options, read at the moment of use (so a change applies to the next request).
   * music-listen-disconnect and default-music are already resolved to absolute file paths.
   */
  options(): TServerOptions;
  dn(number: string): DnConfig | undefined;
  /** Every Trunk DN, for prefix routing of dialled numbers. */
  trunks(): readonly DnConfig[];
  /** Resolves a music option value (request Extensions `music`, DN `music-on-hold`) to a file path. */
  resolveMusic(value: string): string;
  ids: IdSource;
  /** Milliseconds since the epoch, stamped on events as Time. */
  clock(): number;
}

/** Who placed an incoming INVITE: a phone of one of our DNs, or a peer behind a Trunk DN. */
export type IncomingFrom =
  | { dn: string }
  | {
      trunk: string;
      /** The calling number as the trunk presents it. */
      number: string;
      /** Over an inter-trunk: the remote party's DN (its LCTParty alias on the other site). */
      alias?: string;
      /** Over an inter-trunk: the remote site's location. */
      location?: string;
      /** Over an inter-trunk: the ConnID of the call on the site where it started (see PartiesReport). */
      originConnId?: string;
    };

/** What the far end told us about itself when it answered over a trunk (inter-trunk headers). */
export interface RemoteIdentity {
  alias?: string;
  location?: string;
}

/**
 * What one of our sites tells another over an inter-trunk leg about the call that leg is in: the
 * call's LCTParty list as that site sees it, in its order, without what the receiving site itself
 * reported over the same leg (so nothing echoes back), and the call's correlation id.
 */
export interface PartiesReport {
  /** The ConnID of the call on the site where it started (the sender's own ConnID if it started there). */
  originConnId: string;
  parties: ReportedParty[];
}

export interface ReportedParty {
  alias: string;
  location: string;
  role?: DNRole;
  /** LCTParty<n>_type on the sending site (Extension, ACDPosition, Trunk, InterTrunk). */
  type?: string;
  state?: 'ListenDisconnectedHeld';
  disconnectedBy?: string;
  /** This entry is the receiving site's side of the leg (the party the sender reaches through it). */
  peer?: true;
}

export type ModelInput =
  | { kind: 'tlib.request'; request: TRequest; origin: TlibOrigin }
  /** A gateway stopped or stopped answering: the registrations of all its clients end. */
  | { kind: 'tlib.gatewayGone'; gateway: string }
  /** A new INVITE. sipRef is the adapter's handle for it until the model names its leg (sip.connect inbound); callId its SIP Call-ID (for the CDR). */
  | { kind: 'sip.incoming'; sipRef: string; from: IncomingFrom; to: string; callId?: string }
  /** 180/183 on an outbound leg. */
  | { kind: 'sip.ringing'; legId: string }
  /** 200 on an outbound leg (SDP answer already given to media by the adapter). */
  | { kind: 'sip.answered'; legId: string; remote?: RemoteIdentity; callId?: string }
  /** Final failure response on an unanswered outbound leg. */
  | { kind: 'sip.failed'; legId: string; status: number; reason?: string }
  /** The peer ended the leg: BYE on an established leg, CANCEL on an unanswered inbound one. */
  | { kind: 'sip.released'; legId: string }
  /** The phone itself put its call on hold / took it back (re-INVITE sendonly / sendrecv). */
  | { kind: 'sip.hold'; legId: string }
  | { kind: 'sip.retrieve'; legId: string }
  /** The site at the other end of an inter-trunk leg reported its view of the call (SIP INFO). */
  | { kind: 'sip.remoteParties'; legId: string; report: PartiesReport }
  | { kind: 'media.event'; event: MediaEvent }
  /** The media-controller holding a bridge died, restarted or stopped answering: the bridge and its legs' media are gone. */
  | { kind: 'media.bridgeLost'; bridgeId: string; instance: string; reason: string }
  /** Another media-controller adopted the bridge (new sockets, rtpengine re-pointed): its legs start from fresh flags, no music. */
  | { kind: 'media.bridgeRebuilt'; bridgeId: string; instance: string };

/** The caller identity to present on an outbound INVITE (and over an inter-trunk, to the other site). */
export interface Presented {
  alias: string;
  location: string;
}

export type SipConnect =
  | { kind: 'sip.connect'; direction: 'inbound'; sipRef: string; legId: string; bridgeId: string }
  | {
      kind: 'sip.connect';
      direction: 'outbound';
      legId: string;
      bridgeId: string;
      target: { dn: string } | { trunk: string; number: string };
      caller: Presented;
      /** Ask the phone to answer by itself (3pcc MakeCall on a DN with remote-answer true). */
      autoAnswer: boolean;
      /** The call's correlation id (PartiesReport.originConnId), presented over an inter-trunk only. */
      originConnId: string;
    };

/** RFC 4575 endpoint status of a conference member. */
export type EndpointStatus = 'dialing-out' | 'dialing-in' | 'alerting' | 'connected' | 'on-hold';

export interface ConferenceMember {
  alias: string;
  location: string;
  role: DNRole;
  status: EndpointStatus;
  /** RFC 4575 media status: inactive while the member neither hears nor is heard. */
  media: 'sendrecv' | 'inactive';
  /** Set while the member is listen-disconnected (same value as LCTParty<n>_state). */
  lctState?: 'ListenDisconnectedHeld';
  dn?: string;
  trunk?: string;
}

export type ModelOutput =
  /** A T-Library event for the clients registered on `to`; `origin` marks the client whose request it answers. */
  | { kind: 'tlib.event'; to: string; event: TEvent; origin?: TlibOrigin }
  /** An event only for the client that sent the request (EventError, EventRegistered, EventPartyInfo, EventACK). */
  | { kind: 'tlib.reply'; origin: TlibOrigin; event: TEvent }
  /** A media-controller command, exactly as the NATS media contract defines it. */
  | { kind: 'media'; command: MediaCommand; colocateWith?: string }
  | SipConnect
  /** 180 to the caller on an inbound leg. */
  | { kind: 'sip.ringing'; legId: string }
  /** 200 to the caller on an inbound leg (answer SDP from the leg.offer reply). */
  | { kind: 'sip.answer'; legId: string }
  /** An incoming INVITE refused before any leg was made for it. */
  | { kind: 'sip.reject'; sipRef: string; status: number; reason?: string }
  /** End a leg: BYE when established, CANCEL for an unanswered outbound, a final response (status) for an unanswered inbound. */
  | { kind: 'sip.release'; legId: string; status?: number }
  /** Ask a ringing phone to answer (TAnswerCall on a DN with remote-answer true). */
  | { kind: 'sip.remoteAnswer'; legId: string }
  /** Tell the site at the other end of an inter-trunk leg how this site sees the call (SIP INFO). */
  | { kind: 'sip.partiesReport'; legId: string; report: PartiesReport }
  /** RFC 4575 conference state for NOTIFY to subscribers: full member list, or the conference is gone. */
  | { kind: 'conference.state'; connId: string; version: number; state: 'full' | 'deleted'; members: ConferenceMember[] }
  /** A call (ConnID) ended: its detail record, to be published (the model's clock gives its times). */
  | { kind: 'cdr'; record: CallDetail }
  /** Something the adapters should log/count; no effect on calls. */
  | { kind: 'report'; level: 'info' | 'warn'; code: string; message: string; connId?: string; legId?: string };

/** A read-only picture of a call, for QueryCall-like views, metrics and tests. */
export interface CallView {
  connId: string;
  bridgeId: string;
  type: CallType;
  conference: boolean;
  established: boolean;
  consultOf?: string;
  /** The ConnID of the call on the site where it started, when that is another site. */
  originConnId?: string;
  parties: PartyView[];
}

export interface PartyView {
  alias: string;
  location: string;
  role: DNRole;
  state: PartyState;
  legId: string;
  dn?: string;
  trunk?: string;
  held: boolean;
  listenDisconnectedBy?: string;
}

export type PartyState = 'Dialing' | 'Ringing' | 'Established';
