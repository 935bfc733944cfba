/**
 * Signaling's T-Library endpoint on NATS: takes requests from gateways (tlib-contract.ts), hands
 * them to the call model's adapter, replies with the events that answer at once, and publishes
 * later events to the DNs concerned. Only the envelope is checked here: the gateway checked the
 * request itself.
 */
import { trace } from '@opentelemetry/api';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { checker } from '../common/config/check.js';
import { encodeJson, subscribeChecked } from '../common/nats/codec.js';
import { serve, type RpcBadRequest, type Served } from '../common/nats/rpc.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import { TlibGatewayAlive, TlibRpc, type TlibEventMessage, type TlibOrigin, type TlibReplyMessage } from '../common/nats/tlib-contract.js';
import { injectTrace } from '../common/nats/trace.js';
import { ErrorCodes, errorEvent } from '../common/tlib/errors.js';
import type { TEvent, TRequest } from '../common/tlib/messages.js';
import { tlibRequestLabel, type SignalingMetrics } from './metrics.js';
import { within } from '../common/process/lifecycle.js';
import { inSpan } from '../common/process/tracing.js';
import { recordAnswer, requestAttributes } from '../common/tlib/trace-attributes.js';

const tracer = trace.getTracer('huddle.signaling');

const isGatewayAlive = checker(TlibGatewayAlive);

/**
 * How far back a NATS failover may have lost events: the time a client takes to notice a dead
 * server and reconnect (seconds, with the client's ping and reconnect waits) with a margin.
 */
const ResyncWindowMs = 10_000;

export type TlibRequestHandler = (request: TRequest, origin: TlibOrigin, id?: string) => Promise<TEvent[]> | TEvent[];

export class TlibService {
  private served: Served | undefined;
  private aliveSub: Subscription | undefined;
  private aliveCheck: NodeJS.Timeout | undefined;
  /** Gateways heard from: when last, how often they promised to speak, their NATS connection count. */
  private readonly gateways = new Map<string, { lastSeen: number; intervalMs: number; links?: number }>();
  /** When each DN was last sent an event, for ResyncWindowMs: the DNs that may have lost one in a NATS failover. */
  private readonly lastEventAt = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly location: string,
    private readonly log: Logger,
    private readonly metrics: Pick<SignalingMetrics, 'tlibRequests' | 'tlibRequestDuration'>,
  ) {}

  start(handler: TlibRequestHandler): void {
    this.served = serve(
      this.nc,
      Subjects.tlibRequestAll(this.location),
      {
        contract: TlibRpc,
        queue: QueueGroups.signaling,
        badRequest: (error) => this.refuse(error),
        onError: (err) => this.log.error({ err: err.stack }, 'T-Library request failed'),
      },
      // The gateway checked the request against its T-Library schema before sending it.
      (message) => this.handle(message.request as TRequest, message.origin, message.id, handler),
    );
  }

  /**
   * Calls `onGone` for a gateway that says it stopped or missed three announcements, so the
   * registrations of its clients do not outlive it; `onRelinked` for one whose NATS connection was
   * established again (events sent to it meanwhile may be lost).
   */
  watchGateways(onGone: (gateway: string) => void, onRelinked: (gateway: string) => void): void {
    this.aliveSub = subscribeChecked(this.nc, Subjects.tlibGatewayAliveAll(this.location), isGatewayAlive, (alive) => {
      if (alive.gone) {
        this.gateways.delete(alive.gateway);
        onGone(alive.gateway);
        return;
      }
      const before = this.gateways.get(alive.gateway);
      this.gateways.set(alive.gateway, { lastSeen: Date.now(), intervalMs: alive.intervalMs, ...(alive.links !== undefined ? { links: alive.links } : {}) });
      if (before?.links !== undefined && alive.links !== undefined && alive.links !== before.links) onRelinked(alive.gateway);
    });
    this.aliveCheck = setInterval(() => {
      const now = Date.now();
      for (const [dn, at] of this.lastEventAt) if (now - at > ResyncWindowMs) this.lastEventAt.delete(dn);
      for (const [gateway, seen] of this.gateways) {
        if (now - seen.lastSeen <= 3 * seen.intervalMs) continue;
        this.gateways.delete(gateway);
        this.log.warn({ gateway }, 'gateway silent; its clients are unregistered');
        onGone(gateway);
      }
    }, 1000);
    this.aliveCheck.unref();
  }

  /** Publishes an event to every gateway with a client registered on `dn`. */
  publish(dn: string, event: TEvent, origin?: TlibOrigin): void {
    this.lastEventAt.set(dn, Date.now());
    const message: TlibEventMessage = origin ? { event, origin } : { event };
    this.nc.publish(Subjects.tlibEvent(this.location, dn), encodeJson(message), { headers: injectTrace() });
  }

  /**
   * The DNs sent an event within ResyncWindowMs: those whose desktops may have missed one when a
   * NATS connection (ours, or a gateway's) moved to another server.
   */
  recentlyEvented(): string[] {
    const since = Date.now() - ResyncWindowMs;
    return [...this.lastEventAt].filter(([, at]) => at >= since).map(([dn]) => dn);
  }

  /** Stops taking requests and waits (at most `timeoutMs`) until those taken are answered. */
  async drain(timeoutMs = 2000): Promise<void> {
    this.aliveSub?.unsubscribe();
    clearInterval(this.aliveCheck);
    if (this.served) await within(this.served.drain(), timeoutMs);
  }

  private async handle(request: TRequest, origin: TlibOrigin, id: string | undefined, handler: TlibRequestHandler): Promise<TlibReplyMessage> {
    const label = tlibRequestLabel(request.request);
    const end = this.metrics.tlibRequestDuration.startTimer({ request: label });
    try {
      // The model step and what it causes (media commands, SIP): children of this span.
      const events = await inSpan(tracer, `tlib ${request.request}`, { attributes: requestAttributes(request) }, async (span) => {
        const answered = await handler(request, origin, id);
        recordAnswer(span, answered);
        return answered;
      });
      const error = events.find((e) => e.event === 'EventError');
      this.metrics.tlibRequests.inc({ request: label, result: error ? String(error.ErrorCode) : 'ok' });
      return { events };
    } catch (err) {
      this.log.error({ err: (err as Error).stack, request: request.request }, 'T-Library handler threw');
      this.metrics.tlibRequests.inc({ request: label, result: String(ErrorCodes.UnknownError) });
      return {
        events: [errorEvent(ErrorCodes.UnknownError, (err as Error).message, { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN })],
      };
    } finally {
      end();
    }
  }

  /** A message that is no T-Library request envelope: EventError 53 naming the problem. */
  private refuse(error: RpcBadRequest): TlibReplyMessage {
    const request = (error.body as { request?: { request?: unknown; ReferenceID?: unknown } } | undefined)?.request;
    const name = typeof request?.request === 'string' ? tlibRequestLabel(request.request) : 'invalid';
    this.metrics.tlibRequests.inc({ request: name, result: String(ErrorCodes.InvalidAttribute) });
    const referenceId = typeof request?.ReferenceID === 'number' ? request.ReferenceID : undefined;
    return { events: [errorEvent(ErrorCodes.InvalidAttribute, error.problem, { ReferenceID: referenceId })] };
  }
}
