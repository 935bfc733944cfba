/**
 * T-Library over NATS: how gateways hand requests to signaling and how events come back.
 *
 * A request goes to Subjects.tlibRequest(site, dn) where dn is the request's ThisDN, as a NATS
 * request; the reply carries the events that answer it at once (EventError, EventRegistered ...).
 * Events that follow later (EventEstablished, EventListenDisconnected ...) are published on
 * Subjects.tlibEvent(site, dn) for every DN concerned; an event that answers a request carries
 * `origin` so the gateway gives the ReferenceID only to the client that asked.
 *
 * Current state on (re-)registration: the reply to RegisterAddress holds EventRegistered followed
 * by one EventPartyInfo per call the DN is in (ConnID, CallState, Parties, and the LCTParty keys in
 * Extensions when call info is enabled), each with the request's ReferenceID. A desktop that
 * reconnects and registers again so learns everything it may have missed.
 *
 * Gateways subscribe to tlibEvent(site, dn) only while a client of theirs has the DN registered,
 * and deliver the reply events only to the client that asked. When a client's connection closes,
 * its gateway publishes an UnregisterAddress (ReferenceID 0, the client's origin) per DN it had
 * registered, without awaiting a reply, so signaling's registrations end with the connection.
 * A request that signaling does not answer within the gateway's timeout (5 s) becomes
 * EventError 57 for the client. Within that time the gateway sends an unanswered request again
 * (every TlibAttemptMs) with the same `id`; signaling answers every attempt with the one outcome.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { TEvent, TRequest } from '../tlib/messages.js';
import type { RpcContract } from './rpc.js';

/**
 * Who sent a request: the gateway and its client. `supervisor` is set by the gateway from the
 * client's authenticated token (never from the client's frame): such a client may query any call
 * of its site. Signaling trusts it because only gateways may publish T-Library requests.
 */
export const TlibOrigin = Type.Object({ gateway: Type.String(), client: Type.String(), supervisor: Type.Optional(Type.Boolean()) });
export type TlibOrigin = Static<typeof TlibOrigin>;

/**
 * A request on NATS as signaling checks it: the envelope only. The gateway checked the request
 * itself against its T-Library schema before sending it, so it is not checked twice.
 */
export const TlibRequestEnvelope = Type.Object({
  request: Type.Object({ request: Type.String(), ReferenceID: Type.Integer({ minimum: 0 }) }, { additionalProperties: true }),
  origin: TlibOrigin,
  /**
   * The gateway's id of this request, the same on every attempt: a request or its reply lost while
   * a NATS server fails over is sent again, and signaling carries it out once (the later attempts
   * get the first one's answer).
   */
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
});

/** The reply as the gateway checks it: events, each named; signaling built them from the model. */
export const TlibReplyEnvelope = Type.Object({
  events: Type.Array(Type.Object({ event: Type.String() }, { additionalProperties: true })),
});

/** How long the gateway waits for one attempt of a request before it sends it again (same id). */
export const TlibAttemptMs = 1500;

export const TlibRpc = { request: TlibRequestEnvelope, reply: TlibReplyEnvelope } satisfies RpcContract;

/** What the gateway sends: a request it checked. */
export interface TlibRequestMessage {
  request: TRequest;
  origin: TlibOrigin;
  id?: string;
}

export interface TlibReplyMessage {
  events: TEvent[];
}

export const TlibEventEnvelope = Type.Object({
  event: Type.Object({ event: Type.String() }, { additionalProperties: true }),
  origin: Type.Optional(TlibOrigin),
});

export interface TlibEventMessage {
  event: TEvent;
  origin?: TlibOrigin;
}

/**
 * Published by every gateway on Subjects.tlibGatewayAlive(site, instance) every `intervalMs`, and
 * once with `gone: true` when it stops. Signaling ends the registrations of a gateway that says it
 * is gone or misses three announcements (a crashed replica).
 */
export const TlibGatewayAlive = Type.Object({
  gateway: Type.String(),
  intervalMs: Type.Number(),
  gone: Type.Optional(Type.Boolean()),
  /**
   * How many times the gateway's NATS connection was established. A change tells signaling that
   * events for the gateway's DNs may have been lost meanwhile (a NATS server failover): it resyncs them.
   */
  links: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type TlibGatewayAlive = Static<typeof TlibGatewayAlive>;

/**
 * A request one signaling replica hands to another (Subjects.tlibReplica): the other answers
 * with `owned: false` when it does not own the call the request names, else with its events.
 */
export const TlibForwardRpc = {
  request: TlibRequestEnvelope,
  reply: Type.Object({ owned: Type.Boolean(), events: TlibReplyEnvelope.properties.events }),
} satisfies RpcContract;
