/**
 * T-Library requests and events as they travel on the wire (WebSocket JSON frames and NATS).
 * Attribute names are the T-Library ones without the "Attribute" prefix; enumerations are names.
 *
 *   request: {"request":"ListenDisconnect","ReferenceID":7,"ThisDN":"7001","OtherDN":"7003","ConnID":"..."}
 *   event:   {"event":"EventListenDisconnected","ReferenceID":7,"ThisDN":"7001",...,"CallState":"Held"}
 */
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../config/schema.js';
import { CallStates, RequestNames, type AddressTypes, type CallState, type CallTypes, type DNRoles, type EventIds } from './enums.js';

/** 16 hexadecimal digits, as SIP Server prints a ConnID. */
export const ConnIDPattern = '^[0-9a-f]{16}$';

const KeyValue = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]));

export const TRequest = Type.Object(
  {
    request: StringEnum(RequestNames as unknown as readonly string[] as readonly [string, ...string[]]),
    ReferenceID: Type.Integer({ minimum: 0 }),
    ThisDN: Type.Optional(Type.String({ minLength: 1 })),
    OtherDN: Type.Optional(Type.String({ minLength: 1 })),
    ThirdPartyDN: Type.Optional(Type.String({ minLength: 1 })),
    ConnID: Type.Optional(Type.String()),
    Extensions: Type.Optional(KeyValue),
    UserData: Type.Optional(KeyValue),
    Reasons: Type.Optional(KeyValue),
  },
  { additionalProperties: false },
);
export type TRequest = Static<typeof TRequest>;

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

export function isCallState(value: string): value is CallState {
  return Object.hasOwn(CallStates, value);
}
