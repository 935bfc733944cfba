/**
 * T-Library over NATS: how gateways hand requests to signaling and how events come back.
 *
 * A request goes to Subjects.tlibRequest(site, dn) where dn is the request's ThisDN, as a NATS
 * request; the reply carries the events that answer it at once (EventError, EventRegistered ...).
 * Events that follow later (EventEstablished, EventListenDisconnected ...) are published on
 * Subjects.tlibEvent(site, dn) for every DN concerned; an event that answers a request carries
 * `origin` so the gateway gives the ReferenceID only to the client that asked.
 */
import type { TEvent, TRequest } from '../../tlib-api/model/messages.js';

export interface TlibOrigin {
  gateway: string;
  client: string;
}

export interface TlibRequestMessage {
  request: TRequest;
  origin: TlibOrigin;
}

export interface TlibReplyMessage {
  events: TEvent[];
}

export interface TlibEventMessage {
  event: TEvent;
  origin?: TlibOrigin;
}
