/**
 * NATS request/reply with a contract: every request and its reply are JSON checked against
 * TypeBox schemas, every failure is one typed error, and the OpenTelemetry trace goes along.
 *
 *   call(nc, subject, contract, request, { timeoutMs })  CLIENT span, trace context in the headers
 *   notify(nc, subject, contract, request)  the same request, answered by nobody
 *   serve(nc, subject, { contract, badRequest }, handler)  SERVER span, child of the caller's
 *
 * The handler runs inside the SERVER span, so calls it makes continue the same trace. Without a
 * registered tracer provider the OpenTelemetry API is a no-op and so is all of this.
 */
import { SpanKind, trace, type Span } from '@opentelemetry/api';
import { errors as natsErrors, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Static, TSchema } from '@sinclair/typebox';
import type { ErrorObject } from 'ajv';
import { checker, type Checker } from '../config/check.js';
import { componentContext, failSpan } from '../process/tracing.js';
import { decodeJson, encodeJson } from './codec.js';
import { extractTrace, injectTrace } from './trace.js';

/** What travels on one subject: the request and the reply it gets. */
export interface RpcContract<Request extends TSchema = TSchema, Reply extends TSchema = TSchema> {
  request: Request;
  reply: Reply;
}

/** Set on a reply whose handler threw: the reply has no body, the header holds the reason. */
const HandlerFailedHeader = 'Huddle-Rpc-Error';

const tracer = trace.getTracer('huddle.nats.rpc');

export class RpcError extends Error {
  constructor(
    readonly subject: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RpcError';
  }
}

/** Nobody serves the subject (NATS answered 503 at once). */
export class RpcNoResponders extends RpcError {
  constructor(subject: string, options?: ErrorOptions) {
    super(subject, `no responders on ${subject}`, options);
    this.name = 'RpcNoResponders';
  }
}

/** A server took the request (or the bus stalled) but no reply came in time. */
export class RpcTimeout extends RpcError {
  constructor(
    subject: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(subject, `no reply on ${subject} within ${timeoutMs} ms`, options);
    this.name = 'RpcTimeout';
  }
}

/** The request could not be sent: connection closed or draining, bad subject ... (see cause). */
export class RpcRequestFailed extends RpcError {
  constructor(subject: string, options: ErrorOptions & { cause: Error }) {
    super(subject, `request on ${subject} failed: ${options.cause.message}`, options);
    this.name = 'RpcRequestFailed';
  }
}

/** The reply is not JSON or does not match the contract. */
export class RpcBadReply extends RpcError {
  constructor(
    subject: string,
    readonly problem: string,
    /** The decoded reply, when it was JSON. */
    readonly body: unknown,
    options?: ErrorOptions,
  ) {
    super(subject, `malformed reply on ${subject}: ${problem}`, options);
    this.name = 'RpcBadReply';
  }
}

/** The server's handler threw instead of answering in the contract's words. */
export class RpcHandlerFailed extends RpcError {
  constructor(
    subject: string,
    readonly reason: string,
  ) {
    super(subject, `handler on ${subject} failed: ${reason}`);
    this.name = 'RpcHandlerFailed';
  }
}

/**
 * Server side: a request that is not JSON or does not match the contract. Never thrown to a
 * caller; `serve` hands it to `badRequest`, which answers in the contract's words.
 */
export class RpcBadRequest extends RpcError {
  constructor(
    subject: string,
    readonly problem: string,
    /** The decoded request, when it was JSON (so the answer can echo what it can, e.g. a ReferenceID). */
    readonly body: unknown,
    /** The first schema violation, when the request was JSON. */
    readonly schemaError?: ErrorObject,
    options?: ErrorOptions,
  ) {
    super(subject, `malformed request on ${subject}: ${problem}`, options);
    this.name = 'RpcBadRequest';
  }
}

// Ajv compiles each schema once; the checkers are kept per schema object so a call compiles nothing.
const checkers = new WeakMap<TSchema, Checker<TSchema>>();
function checkerOf<T extends TSchema>(schema: T): Checker<T> {
  let check = checkers.get(schema);
  if (!check) checkers.set(schema, (check = checker(schema)));
  return check as Checker<T>;
}

export interface CallOptions {
  timeoutMs: number;
}

/**
 * Sends `request` and resolves with the reply checked against the contract; rejects with
 * RpcNoResponders, RpcTimeout, RpcRequestFailed, RpcBadReply or RpcHandlerFailed.
 */
export function call<C extends RpcContract>(nc: NatsConnection, subject: string, contract: C, request: Static<C['request']>, options: CallOptions): Promise<Static<C['reply']>> {
  return tracer.startActiveSpan(`${subject} call`, { kind: SpanKind.CLIENT }, componentContext(nc), (span) => {
    if (span.isRecording()) span.setAttributes({ 'messaging.system': 'nats', 'messaging.destination.name': subject });
    return roundTrip(nc, subject, contract, request, options).then(
      (reply) => {
        span.end();
        return reply;
      },
      (err: RpcError) => {
        failSpan(span, err);
        span.end();
        throw err;
      },
    );
  });
}

async function roundTrip<C extends RpcContract>(nc: NatsConnection, subject: string, contract: C, request: Static<C['request']>, options: CallOptions): Promise<Static<C['reply']>> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, encodeJson(request), { timeout: options.timeoutMs, headers: injectTrace() });
  } catch (err) {
    if (err instanceof natsErrors.RequestError && err.isNoResponders()) throw new RpcNoResponders(subject, { cause: err });
    if (err instanceof natsErrors.TimeoutError) throw new RpcTimeout(subject, options.timeoutMs, { cause: err });
    throw new RpcRequestFailed(subject, { cause: err as Error });
  }
  const failure = msg.headers?.get(HandlerFailedHeader);
  if (failure) throw new RpcHandlerFailed(subject, failure);
  let body: unknown;
  try {
    body = decodeJson(msg.data);
  } catch (err) {
    throw new RpcBadReply(subject, (err as Error).message, undefined, { cause: err });
  }
  const check = checkerOf(contract.reply);
  if (!check(body)) throw new RpcBadReply(subject, check.problem(), body);
  return body;
}

/**
 * Sends `request` to the servers of `subject` without waiting for a reply (fire and forget: the
 * server handles it and answers nobody). Throws what publishing throws (connection closed).
 */
export function notify<C extends RpcContract>(nc: NatsConnection, subject: string, contract: C, request: Static<C['request']>): void {
  nc.publish(subject, encodeJson(request), { headers: injectTrace() });
}

export interface ServeOptions<C extends RpcContract> {
  contract: C;
  /** Servers in one queue group share the requests; without it every server gets each request. */
  queue?: string;
  /** The answer to a request that is not JSON or breaks the contract, in the contract's words. */
  badRequest: (error: RpcBadRequest) => Static<C['reply']>;
  /**
   * A handler that threw (a bug: handlers answer failures in the contract's words; the caller
   * gets RpcHandlerFailed) or a reply that could not be sent (connection closed).
   */
  onError?: (err: Error) => void;
}

export type RpcHandler<C extends RpcContract> = (request: Static<C['request']>) => Promise<Static<C['reply']>> | Static<C['reply']>;

/** A served subject. */
export interface Served {
  /** Takes no more requests and resolves once every request taken has been answered (again: the same promise). */
  drain(): Promise<void>;
}

/** Answers requests on `subject` (wildcards allowed) with `handler`, checked against the contract. */
export function serve<C extends RpcContract>(nc: NatsConnection, subject: string, options: ServeOptions<C>, handler: RpcHandler<C>): Served {
  return new Server(nc, subject, options, handler);
}

class Server<C extends RpcContract> implements Served {
  private readonly sub: Subscription;
  private readonly check: Checker<C['request']>;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private drained: Promise<void> | undefined;
  /** Named by the served subject (a wildcard: low cardinality), built once, not per request. */
  private readonly spanName: string;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly options: ServeOptions<C>,
    private readonly handler: RpcHandler<C>,
  ) {
    this.check = checkerOf(options.contract.request);
    this.spanName = `${subject} serve`;
    this.sub = nc.subscribe(subject, {
      ...(options.queue ? { queue: options.queue } : {}),
      callback: (err, msg) => {
        if (!err) this.take(msg);
      },
    });
  }

  drain(): Promise<void> {
    return (this.drained ??= this.drainOnce());
  }

  private async drainOnce(): Promise<void> {
    await this.sub.drain();
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  private take(msg: Msg): void {
    this.inFlight++;
    tracer.startActiveSpan(this.spanName, { kind: SpanKind.SERVER }, componentContext(this.nc, extractTrace(msg.headers)), (span) => {
      if (span.isRecording()) span.setAttributes({ 'messaging.system': 'nats', 'messaging.destination.name': msg.subject });
      this.answer(msg, span)
        .catch((err: Error) => {
          failSpan(span, err);
          this.options.onError?.(err);
        })
        .finally(() => {
          span.end();
          if (--this.inFlight === 0) this.idle?.();
        });
    });
  }

  private async answer(msg: Msg, span: Span): Promise<void> {
    const request = this.decode(msg);
    if (request instanceof RpcBadRequest) {
      failSpan(span, request);
      this.respond(msg, this.options.badRequest(request));
      return;
    }
    let reply: Static<C['reply']>;
    try {
      reply = await this.handler(request);
    } catch (err) {
      failSpan(span, err as Error);
      this.options.onError?.(err as Error);
      if (msg.reply) msg.respond(undefined, { headers: handlerFailed(err as Error) });
      return;
    }
    this.respond(msg, reply);
  }

  private decode(msg: Msg): Static<C['request']> | RpcBadRequest {
    let body: unknown;
    try {
      body = decodeJson(msg.data);
    } catch (err) {
      return new RpcBadRequest(msg.subject, (err as Error).message, undefined, undefined, { cause: err });
    }
    if (!this.check(body)) return new RpcBadRequest(msg.subject, this.check.problem(), body, this.check.error());
    return body;
  }

  private respond(msg: Msg, reply: Static<C['reply']>): void {
    // A published request (fire and forget) has no reply subject: handled, not answered.
    if (msg.reply) msg.respond(encodeJson(reply));
  }
}

function handlerFailed(err: Error) {
  const hdrs = natsHeaders();
  hdrs.set(HandlerFailedHeader, err.message || err.name);
  return hdrs;
}
