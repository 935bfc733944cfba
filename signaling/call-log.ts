/**
 * The call log: one info line per call lifecycle step, read from the model's outputs for one input
 * (the events it sends each DN), so nothing in the model or the shell logs steps by hand. The
 * same step reaches every DN of the call: it is told once, naming the DNs told.
 *
 *   {"connId":"…","step":"listen-disconnect","by":"7001","whom":"7003","dns":["7001","7002","7003"],"msg":"call listen-disconnect"}
 */
import type { TEvent } from '../common/tlib/messages.js';
import type { ModelOutput } from './model/index.js';

/** The events that are a step of a call's life, and the step's name. */
const Steps: Partial<Record<TEvent['event'], string>> = {
  EventDialing: 'created',
  EventRinging: 'ringing',
  EventEstablished: 'established',
  EventPartyAdded: 'party-added',
  EventPartyChanged: 'party-changed',
  EventPartyDeleted: 'party-removed',
  EventListenDisconnected: 'listen-disconnect',
  EventListenReconnected: 'listen-reconnect',
  EventHeld: 'held',
  EventRetrieved: 'retrieved',
  EventReleased: 'released',
};

export interface CallLogLine {
  connId: string;
  step: string;
  /** The DNs told of the step. */
  dns: string[];
  /** Who asked for it (the requesting DN), when a desktop did. */
  by?: string;
  /** Whom it is about (the party added, removed or listen-disconnected). */
  whom?: string;
  /** The ConnID the call had before (a transfer, the leaving rule's new call). */
  previousConnId?: string;
  /** A released party's final CallState and who removed it. */
  cause?: string;
  /** For released: the DNs that left (each its own EventReleased). */
  released?: string[];
}

export function callLogLines(outputs: readonly ModelOutput[]): CallLogLine[] {
  const lines = new Map<string, CallLogLine>();
  for (const out of outputs) {
    if (out.kind !== 'tlib.event') continue;
    const { event } = out;
    const step = Steps[event.event];
    if (!step || !event.ConnID) continue;
    const key = `${event.ConnID} ${step}`;
    let line = lines.get(key);
    if (!line) {
      line = { connId: event.ConnID, step, dns: [] };
      if (event.PreviousConnID) line.previousConnId = event.PreviousConnID;
      lines.set(key, line);
    }
    if (!line.dns.includes(out.to)) line.dns.push(out.to);
    if (out.origin) line.by = out.to;
    if (step === 'released') {
      (line.released ??= []).push(out.to);
      line.cause = `${event.CallState ?? 'Ok'}${event.ThirdPartyDNRole === 'DeletedBy' && event.ThirdPartyDN ? ` deleted by ${event.ThirdPartyDN}` : ''}`;
    } else if (event.OtherDN && out.origin) line.whom = event.OtherDN;
    else if (event.ThirdPartyDN && !line.whom && step !== 'listen-disconnect' && step !== 'listen-reconnect') line.whom = event.ThirdPartyDN;
  }
  return [...lines.values()];
}
