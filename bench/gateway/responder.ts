/**
 * The bench's side of NATS behind the gateway: answers RegisterAddress (EventRegistered) for any
 * DN and publishes events as signaling does, so the figures measured are the gateway's own.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeJson, encodeJson } from '../../common/nats/codec.js';
import { QueueGroups, Subjects } from '../../common/nats/subjects.js';
import type { TlibEventMessage, TlibReplyMessage, TlibRequestMessage } from '../../common/nats/tlib-contract.js';
import type { TEvent } from '../../common/tlib/messages.js';

export class BenchResponder {
  private readonly sub: Subscription;

  constructor(
    private readonly nc: NatsConnection,
    private readonly location: string,
  ) {
    this.sub = nc.subscribe(Subjects.tlibRequestAll(location), {
      queue: QueueGroups.signaling,
      callback: (err, msg) => {
        if (err) return;
        const { request } = decodeJson(msg.data) as TlibRequestMessage;
        const events: TEvent[] =
          request.request === 'RegisterAddress'
            ? [{ event: 'EventRegistered', ReferenceID: request.ReferenceID, ThisDN: request.ThisDN }]
            : [{ event: 'EventError', ReferenceID: request.ReferenceID, ThisDN: request.ThisDN, ErrorCode: 51, ErrorMessage: `${request.request} is not part of the bench` }];
        const reply: TlibReplyMessage = { events };
        msg.respond(encodeJson(reply));
      },
    });
  }

  publish(dn: string, event: TEvent): void {
    const message: TlibEventMessage = { event };
    this.nc.publish(Subjects.tlibEvent(this.location, dn), encodeJson(message));
  }

  stop(): void {
    this.sub.unsubscribe();
  }
}
