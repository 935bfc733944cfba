/**
 * T-Library enumerations. Values travel on the wire by name ("CallState":"Held"); the numbers are
 * the enum positions of the public header, kept as stable ids (see reference/tlibrary-model.md).
 */

export const RequestIds = {
  RegisterAddress: 3,
  UnregisterAddress: 4,
  MakeCall: 14,
  AnswerCall: 16,
  ReleaseCall: 17,
  HoldCall: 18,
  RetrieveCall: 19,
  InitiateConference: 20,
  CompleteConference: 21,
  DeleteFromConference: 22,
  SendUserEvent: 48,
  ListenDisconnect: 104,
  ListenReconnect: 105,
  QueryCall: 108,
  SingleStepConference: 120,
} as const;
export type RequestName = keyof typeof RequestIds;
export const RequestNames = Object.keys(RequestIds) as RequestName[];

export const EventIds = {
  EventError: 52,
  EventRegistered: 53,
  EventUnregistered: 54,
  EventRinging: 60,
  EventDialing: 61,
  EventEstablished: 64,
  EventReleased: 65,
  EventHeld: 66,
  EventRetrieved: 67,
  EventPartyChanged: 68,
  EventPartyAdded: 69,
  EventPartyDeleted: 70,
  EventUserEvent: 96,
  EventListenDisconnected: 106,
  EventListenReconnected: 107,
  EventPartyInfo: 109,
  EventACK: 138,
} as const;
export type EventName = keyof typeof EventIds;

export const CallStates = {
  Ok: 0,
  Transferred: 1,
  Conferenced: 2,
  GeneralError: 3,
  SystemError: 4,
  RemoteRelease: 5,
  Busy: 6,
  NoAnswer: 7,
  Cleared: 19,
  Dropped: 26,
  Deafened: 49,
  Held: 50,
} as const;
export type CallState = keyof typeof CallStates;

export const DNRoles = [
  'Unknown',
  'Origination',
  'Destination',
  'ConferenceMember',
  'NewParty',
  'AddedBy',
  'DeletedBy',
  'TransferredBy',
  'DeletedParty',
  'ConferencedBy',
  'Observer',
] as const;
export type DNRole = (typeof DNRoles)[number];

export const AddressTypes = ['Unknown', 'DN', 'Position', 'Queue', 'RouteDN', 'Trunk', 'VoiceChannel', 'Other'] as const;
export type AddressType = (typeof AddressTypes)[number];

export const CallTypes = ['Unknown', 'Internal', 'Inbound', 'Outbound', 'Consult'] as const;
export type CallType = (typeof CallTypes)[number];
