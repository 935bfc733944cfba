/** OpenTelemetry trace context across NATS: W3C traceparent in message headers. */
import { context, propagation, type Context } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

export function injectTrace(ctx: Context = context.active(), hdrs: MsgHdrs = natsHeaders()): MsgHdrs {
  propagation.inject(ctx, hdrs, {
    set: (carrier, key, value) => carrier.set(key, value),
  });
  return hdrs;
}

export function extractTrace(hdrs: MsgHdrs | undefined): Context {
  if (!hdrs) return context.active();
  return propagation.extract(context.active(), hdrs, {
    // NATS answers "" for a missing header; the propagator expects undefined.
    get: (carrier, key) => carrier.get(key) || undefined,
    keys: (carrier) => carrier.keys(),
  });
}
