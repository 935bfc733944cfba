/**
 * The bench's side of NATS behind the gateway: answers RegisterAddress (EventRegistered) for any
 * DN and publishes events as signaling does, so the figures measured are the gateway's own.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { encodeJson } from '../../common/nats/codec.js';
import { serve, type Served } from '../../common/nats/rpc.js';
import { QueueGroups, Subjects } from '../../common/nats/subjects.js';
import { TlibRpc, type TlibEventMessage, type TlibReplyMessage } from '../../common/nats/tlib-contract.js';
import type { TEvent, TRequest } from '../../common/tlib/messages.js';

export class BenchResponder {
  private readonly served: Served;

  constructor(
    private readonly nc: NatsConnection,
    private readonly location: string,
  ) {
    this.served = serve(
      nc,
      Subjects.tlibRequestAll(location),
      {
        contract: TlibRpc,
        queue: QueueGroups.signaling,
        badRequest: (error) => ({ events: [{ event: 'EventError', ErrorCode: 53, ErrorMessage: error.problem }] }),
      },
      // The gateway checked the request, as it does for signaling.
      (message): TlibReplyMessage => {
        const request = message.request as TRequest;
        const events: TEvent[] =
          request.request === 'RegisterAddress'
            ? [{ event: 'EventRegistered', ReferenceID: request.ReferenceID, ThisDN: request.ThisDN }]
            : [{ event: 'EventError', ReferenceID: request.ReferenceID, ThisDN: request.ThisDN, ErrorCode: 51, ErrorMessage: `${request.request} is not part of the bench` }];
        return { events };
      },
    );
  }

  publish(dn: string, event: TEvent): void {
    const message: TlibEventMessage = { event };
    this.nc.publish(Subjects.tlibEvent(this.location, dn), encodeJson(message));
  }

  async drain(): Promise<void> {
    await this.served.drain();
  }
}
