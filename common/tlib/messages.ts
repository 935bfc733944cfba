/**
 * T-Library requests and events as they travel on the wire (WebSocket JSON frames and NATS).
 * Attribute names are the T-Library ones without the "Attribute" prefix; enumerations are names.
 *
 *   request: {"request":"ListenDisconnect","ReferenceID":7,"ThisDN":"7001","OtherDN":"7003","ConnID":"..."}
 *   event:   {"event":"EventListenDisconnected","ReferenceID":7,"ThisDN":"7001",...,"CallState":"Held"}
 */
import { type AddressTypes, type CallState, type CallTypes, type DNRoles, type EventIds } from './enums.js';

export { TRequest } from './requests.js';

export interface TEventBase {
  event: keyof typeof EventIds;
  ReferenceID?: number;
  ThisDN?: string;
  OtherDN?: string;
  ThirdPartyDN?: string;
  ThirdPartyDNRole?: (typeof DNRoles)[number];
  OtherDNRole?: (typeof DNRoles)[number];
  ThisDNRole?: (typeof DNRoles)[number];
  ConnID?: string;
  PreviousConnID?: string;
  /**
   * Set on the events of a call that came over an inter-trunk from another of our sites: the ConnID
   * of the call on the site where it started, so that both sites' events, logs and records join.
   */
  OriginConnID?: string;
  CallState?: CallState;
  CallType?: (typeof CallTypes)[number];
  AddressType?: (typeof AddressTypes)[number];
  ErrorCode?: number;
  ErrorMessage?: string;
  Extensions?: Record<string, string | number | boolean>;
  UserData?: Record<string, string | number | boolean>;
  /** For EventPartyInfo / QueryCall answers: the parties of the call. */
  Parties?: { DN: string; Role: (typeof DNRoles)[number]; State: string; Location: string }[];
  /** Server time of the event, ms since the epoch. */
  Time?: number;
}
export type TEvent = TEventBase;
