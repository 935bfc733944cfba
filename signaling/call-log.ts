/**
 * The call log: one info line per call lifecycle step, read from the model's outputs for one input
 * (the events it sends each DN), so nothing in the model or the shell logs steps by hand. The
 * same step reaches every DN of the call: it is told once, naming the DNs told.
 *
 *   {"connId":"…","step":"listen-disconnect","by":"7001","whom":"7003","dns":["7001","7002","7003"],"msg":"call listen-disconnect"}
 *
 * A call that came over an inter-trunk from another of our sites also names the ConnID it has on
 * the site where it started (`originConnId`): the two sites' lines join on it.
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
  /** The call's ConnID on the site where it started, when that is another site (OriginConnID). */
  originConnId?: string;
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
  /** The SIP Call-IDs of the call's legs (known once their dialogs are confirmed). */
  callIds?: string[];
}

/**
 * The lines with the Call-IDs of each call's legs: `callIdsOf` asks the call's present legs; a
 * call's last known Call-IDs are kept until its release, when the model no longer holds it.
 */
const MaxKnownCalls = 100_000;

export class CallLog {
  private readonly known = new Map<string, string[]>();

  constructor(private readonly callIdsOf: (connId: string) => string[]) {}

  lines(outputs: readonly ModelOutput[]): CallLogLine[] {
    const lines = callLogLines(outputs);
    for (const line of lines) {
      const now = this.callIdsOf(line.connId);
      const callIds = [...new Set([...(this.known.get(line.connId) ?? []), ...now])];
      if (callIds.length > 0) line.callIds = callIds;
      // Gone from the model: released for good, nothing more to remember.
      if (line.step === 'released' && now.length === 0) this.known.delete(line.connId);
      else if (callIds.length > 0) this.known.set(line.connId, callIds);
    }
    // Calls handed to another replica end there: the oldest are forgotten, so memory stays bounded.
    while (this.known.size > MaxKnownCalls) this.known.delete(this.known.keys().next().value!);
    return lines;
  }
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
      if (event.OriginConnID) line.originConnId = event.OriginConnID;
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
