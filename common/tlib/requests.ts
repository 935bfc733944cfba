/**
 * One schema per T-Library request: exactly the attributes it needs and may carry. A frame is
 * checked against the schema of the request it names where it enters (the gateway), so the call
 * model only checks what needs the world: options, DNs, registrations, calls.
 *
 *   {"request":"HoldCall","ReferenceID":7,"ThisDN":"7001","ConnID":"00a1b2c3d4e5f607","Extensions":{"music":"jazz"}}
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import type { RequestName } from './enums.js';

const DN = Type.String({ minLength: 1 });
/**
 * Any non-empty string: a ConnID that is not 16 hexadecimal digits names no call, which signaling
 * answers with EventError 56 (InvalidConnID) like any other unknown ConnID (see connid.ts).
 */
const ConnID = Type.String({ minLength: 1 });
const KeyValue = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]));

/** `request` and `ReferenceID` first, then the request's own attributes; Extensions, UserData and Reasons go with every request. */
function request<N extends RequestName, A extends TProperties>(name: N, attributes: A) {
  return Type.Object(
    {
      request: Type.Literal(name),
      ReferenceID: Type.Integer({ minimum: 0 }),
      ...attributes,
      Extensions: Type.Optional(KeyValue),
      UserData: Type.Optional(KeyValue),
      Reasons: Type.Optional(KeyValue),
    },
    { additionalProperties: false },
  );
}

export const RequestSchemas = {
  RegisterAddress: request('RegisterAddress', { ThisDN: DN }),
  UnregisterAddress: request('UnregisterAddress', { ThisDN: DN }),
  MakeCall: request('MakeCall', { ThisDN: DN, OtherDN: DN }),
  AnswerCall: request('AnswerCall', { ThisDN: DN, ConnID }),
  ReleaseCall: request('ReleaseCall', { ThisDN: DN, ConnID }),
  HoldCall: request('HoldCall', { ThisDN: DN, ConnID }),
  RetrieveCall: request('RetrieveCall', { ThisDN: DN, ConnID }),
  InitiateConference: request('InitiateConference', { ThisDN: DN, ConnID, OtherDN: DN }),
  CompleteConference: request('CompleteConference', { ThisDN: DN, ConnID }),
  DeleteFromConference: request('DeleteFromConference', { ThisDN: DN, ConnID, OtherDN: DN }),
  SingleStepConference: request('SingleStepConference', { ThisDN: DN, ConnID, OtherDN: DN }),
  /** Without ThisDN the answer names no DN; the gateway still needs one to route and authorize. */
  QueryCall: request('QueryCall', { ThisDN: Type.Optional(DN), ConnID }),
  /** With ConnID the event goes to the other parties of that call, without it to ThisDN only. */
  SendUserEvent: request('SendUserEvent', { ThisDN: DN, ConnID: Type.Optional(ConnID) }),
  /** OtherDN is the LCTParty alias of the party taken out of (or back into) the conversation. */
  ListenDisconnect: request('ListenDisconnect', { ThisDN: DN, OtherDN: DN, ConnID }),
  ListenReconnect: request('ListenReconnect', { ThisDN: DN, OtherDN: DN, ConnID }),
} satisfies { [N in RequestName]: { static: { request: N } } };

/** Any T-Library request, discriminated on `request`. */
export const TRequest = Type.Union(Object.values(RequestSchemas));
export type TRequest = Static<typeof TRequest>;
