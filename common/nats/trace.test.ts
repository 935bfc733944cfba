import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startTestNats, type TestNats } from '../../test/support/infra.js';
import { extractTrace, injectTrace } from './trace.js';

describe('trace context over NATS', () => {
  let nats: TestNats;
  let nc: NatsConnection;
  const exporter = new InMemorySpanExporter();
  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('continues the sender trace in the receiver', async () => {
    const tracer = trace.getTracer('test');
    const sub = nc.subscribe('trace.test', { max: 1 });
    const received = (async () => {
      for await (const msg of sub) {
        const span = tracer.startSpan('receive', {}, extractTrace(msg.headers));
        span.end();
        return span.spanContext();
      }
      throw new Error('no message');
    })();
    const sent = tracer.startSpan('send');
    nc.publish('trace.test', 'x', { headers: injectTrace(trace.setSpan(context.active(), sent)) });
    sent.end();
    const child = await received;
    expect(child.traceId).toBe(sent.spanContext().traceId);
    const receiveSpan = exporter.getFinishedSpans().find((s) => s.name === 'receive');
    expect(receiveSpan?.parentSpanContext?.spanId).toBe(sent.spanContext().spanId);
  });

  it('starts a new trace when the message carries none', () => {
    const ctx = extractTrace(undefined);
    expect(trace.getSpanContext(ctx)).toBeUndefined();
  });
});
