/**
 * A stand-in for the signaling service that answers T-Library requests on a real NATS server
 * exactly as common/nats/tlib-contract.ts says: reply {events} at once, later events published on
 * tlib.evt.<dn> with `origin`. It keeps a tiny call table so gateway, SDK, CLI and page tests can
 * exercise the contract; calls themselves (SIP, media) are signaling's business, tested there.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeJson, encodeJson } from '../../common/nats/codec.js';
import { QueueGroups, Subjects } from '../../common/nats/subjects.js';
import type { TlibEventMessage, TlibOrigin, TlibReplyMessage, TlibRequestMessage } from '../../common/nats/tlib-contract.js';
import type { TEvent, TRequest } from '../../tlib-api/model/messages.js';

export interface FakeParty {
  DN: string;
  location: string;
  listenDisconnected?: boolean;
}

export interface FakeCall {
  connID: string;
  parties: FakeParty[];
}

export class ContractSignaling {
  readonly requests: TlibRequestMessage[] = [];
  readonly calls = new Map<string, FakeCall>();
  /** DNs whose requests get no answer (to exercise the gateway's timeout). */
  readonly silentDNs = new Set<string>();
  private sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly location: string,
    private readonly configured: (dn: string) => boolean,
  ) {
    this.start();
  }

  /** Answers requests (again, after stop). */
  start(): void {
    this.sub = this.nc.subscribe(Subjects.tlibRequestAll(this.location), {
      queue: QueueGroups.signaling,
      callback: (err, msg) => {
        if (err) return;
        const message = decodeJson(msg.data) as TlibRequestMessage;
        this.requests.push(message);
        if (this.silentDNs.has(message.request.ThisDN ?? '')) return;
        const reply: TlibReplyMessage = { events: this.handle(message.request, message.origin) };
        msg.respond(encodeJson(reply));
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  addCall(parties: FakeParty[]): FakeCall {
    const call = { connID: randomBytes(8).toString('hex'), parties };
    this.calls.set(call.connID, call);
    return call;
  }

  /** Publishes an event for `dn` as signaling does for later events. */
  publish(dn: string, event: TEvent, origin?: TlibOrigin): void {
    const message: TlibEventMessage = origin ? { event, origin } : { event };
    this.nc.publish(Subjects.tlibEvent(this.location, dn), encodeJson(message));
  }

  lctParty(call: FakeCall, thisDN: string): TEvent {
    const ext: Record<string, string | number> = { LCTPartiesLength: call.parties.length };
    call.parties.forEach((p, n) => {
      ext[`LCTParty${n}`] = p.DN;
      ext[`LCTParty${n}_location`] = p.location;
      if (p.listenDisconnected) ext[`LCTParty${n}_state`] = 'ListenDisconnectedHeld';
    });
    return { event: 'EventUserEvent', ThisDN: thisDN, ConnID: call.connID, Extensions: ext };
  }

  /** The LCTParty EventUserEvent to every party of the call. */
  publishParties(call: FakeCall): void {
    for (const p of call.parties) this.publish(p.DN, this.lctParty(call, p.DN));
  }

  private handle(req: TRequest, origin: TlibOrigin): TEvent[] {
    const ref = req.ReferenceID;
    const thisDN = req.ThisDN ?? '';
    const error = (code: number, message: string): TEvent[] => [{ event: 'EventError', ReferenceID: ref, ThisDN: thisDN, ErrorCode: code, ErrorMessage: message }];
    if (!this.configured(thisDN)) return error(59, `DN ${thisDN} is not configured`);
    const call = req.ConnID ? this.calls.get(req.ConnID) : undefined;
    switch (req.request) {
      case 'RegisterAddress': {
        const state: TEvent[] = [...this.calls.values()]
          .filter((c) => c.parties.some((p) => p.DN === thisDN))
          .flatMap((c) => [
            {
              event: 'EventPartyInfo' as const,
              ReferenceID: ref,
              ThisDN: thisDN,
              ConnID: c.connID,
              CallState: 'Ok' as const,
              Parties: c.parties.map((p) => ({ DN: p.DN, Role: 'ConferenceMember' as const, State: p.listenDisconnected ? 'ListenDisconnectedHeld' : 'Established', Location: p.location })),
            },
            { ...this.lctParty(c, thisDN), ReferenceID: ref },
          ]);
        return [{ event: 'EventRegistered', ReferenceID: ref, ThisDN: thisDN }, ...state];
      }
      case 'UnregisterAddress':
        return [{ event: 'EventUnregistered', ReferenceID: ref, ThisDN: thisDN }];
      case 'MakeCall': {
        if (!req.OtherDN) return error(53, 'OtherDN is required');
        const made = this.addCall([
          { DN: thisDN, location: this.location },
          { DN: req.OtherDN, location: this.location },
        ]);
        this.publish(thisDN, { event: 'EventDialing', ReferenceID: ref, ThisDN: thisDN, OtherDN: req.OtherDN, ConnID: made.connID }, origin);
        this.publish(req.OtherDN, { event: 'EventRinging', ThisDN: req.OtherDN, OtherDN: thisDN, ConnID: made.connID });
        return [];
      }
      case 'ReleaseCall': {
        if (!call) return error(56, 'Invalid ConnID');
        this.calls.delete(call.connID);
        for (const p of call.parties) {
          this.publish(p.DN, { event: 'EventReleased', ReferenceID: p.DN === thisDN ? ref : undefined, ThisDN: p.DN, ConnID: call.connID }, p.DN === thisDN ? origin : undefined);
        }
        return [];
      }
      case 'ListenDisconnect':
      case 'ListenReconnect': {
        if (!call) return error(56, 'Invalid ConnID');
        const party = call.parties.find((p) => p.DN === req.OtherDN);
        if (!party) return error(53, `OtherDN ${req.OtherDN ?? ''} is not a party of the call`);
        const disconnect = req.request === 'ListenDisconnect';
        if (Boolean(party.listenDisconnected) === disconnect) return error(43, 'Already in the requested state');
        party.listenDisconnected = disconnect;
        this.publish(
          thisDN,
          {
            event: disconnect ? 'EventListenDisconnected' : 'EventListenReconnected',
            ReferenceID: ref,
            ThisDN: thisDN,
            OtherDN: party.DN,
            ConnID: call.connID,
            CallState: disconnect ? 'Held' : 'Ok',
          },
          origin,
        );
        this.publishParties(call);
        return [];
      }
      default:
        return error(51, `${req.request} is not supported by the contract test responder`);
    }
  }
}
