/**
 * Signaling's T-Library endpoint on NATS: takes requests from gateways (tlib-contract.ts),
 * validates them, hands them to the call model's adapter, replies with the events that answer at
 * once, and publishes later events to the DNs concerned.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { context } from '@opentelemetry/api';
import { checker } from '../common/config/check.js';
import { decodeJson, encodeJson } from '../common/nats/codec.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import type { TlibEventMessage, TlibGatewayAlive, TlibOrigin, TlibReplyMessage } from '../common/nats/tlib-contract.js';
import { extractTrace, injectTrace } from '../common/nats/trace.js';
import { ErrorCodes, errorEvent } from '../common/tlib/errors.js';
import { TRequest, type TEvent } from '../common/tlib/messages.js';

const isRequest = checker(TRequest);

export type TlibRequestHandler = (request: TRequest, origin: TlibOrigin) => Promise<TEvent[]> | TEvent[];

export class TlibService {
  private sub: Subscription | undefined;
  private aliveSub: Subscription | undefined;
  private aliveCheck: NodeJS.Timeout | undefined;
  /** Gateways heard from: when last, and how often they promised to speak. */
  private readonly gateways = new Map<string, { lastSeen: number; intervalMs: number }>();
  private readonly requests: Counter<'request' | 'result'>;
  private readonly duration: Histogram<'request'>;
  private inFlight = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly location: string,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.requests = new Counter({
      name: 'huddle_signaling_tlib_requests_total',
      help: 'T-Library requests handled by signaling, by request and result (ok or the EventError code)',
      labelNames: ['request', 'result'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'huddle_signaling_tlib_request_duration_seconds',
      help: 'Time signaling takes to answer a T-Library request',
      labelNames: ['request'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    });
  }

  start(handler: TlibRequestHandler): void {
    this.sub = this.nc.subscribe(Subjects.tlibRequestAll(this.location), {
      queue: QueueGroups.signaling,
      callback: (err, msg) => {
        if (err) return;
        this.inFlight++;
        const ctx = extractTrace(msg.headers);
        context
          .with(ctx, () => this.handle(msg.data, handler))
          .then((reply) => msg.respond(encodeJson(reply)))
          .catch((e: Error) => this.log.error({ err: e.stack }, 'T-Library request failed'))
          .finally(() => this.inFlight--);
      },
    });
  }

  /**
   * Calls `onGone` for a gateway that says it stopped or missed three announcements, so the
   * registrations of its clients do not outlive it.
   */
  watchGateways(onGone: (gateway: string) => void): void {
    this.aliveSub = this.nc.subscribe(Subjects.tlibGatewayAliveAll(this.location), {
      callback: (err, msg) => {
        if (err) return;
        let alive: TlibGatewayAlive;
        try {
          alive = decodeJson(msg.data) as TlibGatewayAlive;
        } catch {
          return;
        }
        if (typeof alive.gateway !== 'string' || typeof alive.intervalMs !== 'number') return;
        if (alive.gone) {
          this.gateways.delete(alive.gateway);
          onGone(alive.gateway);
          return;
        }
        this.gateways.set(alive.gateway, { lastSeen: Date.now(), intervalMs: alive.intervalMs });
      },
    });
    this.aliveCheck = setInterval(() => {
      const now = Date.now();
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
    const message: TlibEventMessage = origin ? { event, origin } : { event };
    this.nc.publish(Subjects.tlibEvent(this.location, dn), encodeJson(message), { headers: injectTrace() });
  }

  /** Stops taking requests and waits (bounded) for those in flight. */
  async drain(timeoutMs = 2000): Promise<void> {
    this.sub?.unsubscribe();
    this.aliveSub?.unsubscribe();
    clearInterval(this.aliveCheck);
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  private async handle(data: Uint8Array, handler: TlibRequestHandler): Promise<TlibReplyMessage> {
    let raw: unknown;
    try {
      raw = decodeJson(data);
    } catch (err) {
      return { events: [invalid(undefined, (err as Error).message)] };
    }
    const message = raw as { request?: unknown; origin?: unknown };
    const origin = message.origin as TlibOrigin | undefined;
    if (!origin || typeof origin.gateway !== 'string' || typeof origin.client !== 'string') {
      return { events: [invalid(referenceOf(message.request), 'origin {gateway, client} is required')] };
    }
    if (!isRequest(message.request)) {
      const name = (message.request as { request?: unknown } | undefined)?.request;
      this.requests.inc({ request: typeof name === 'string' ? name : 'unknown', result: String(ErrorCodes.InvalidAttribute) });
      return { events: [invalid(referenceOf(message.request), isRequest.problem())] };
    }
    const request = message.request;
    const end = this.duration.startTimer({ request: request.request });
    try {
      const events = await handler(request, origin);
      const error = events.find((e) => e.event === 'EventError');
      this.requests.inc({ request: request.request, result: error ? String(error.ErrorCode) : 'ok' });
      return { events };
    } catch (err) {
      this.log.error({ err: (err as Error).stack, request: request.request }, 'T-Library handler threw');
      this.requests.inc({ request: request.request, result: String(ErrorCodes.UnknownError) });
      return {
        events: [errorEvent(ErrorCodes.UnknownError, (err as Error).message, { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN })],
      };
    } finally {
      end();
    }
  }
}

function referenceOf(request: unknown): number | undefined {
  const id = (request as { ReferenceID?: unknown } | undefined)?.ReferenceID;
  return typeof id === 'number' ? id : undefined;
}

function invalid(referenceId: number | undefined, message: string): TEvent {
  return errorEvent(ErrorCodes.InvalidAttribute, message, { ReferenceID: referenceId });
}
