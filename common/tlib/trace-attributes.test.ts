/** The span attributes of a T-Library answer name the call, and for a call from another site its ConnID there. */
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { expect, it } from 'vitest';
import { recordAnswer } from './trace-attributes.js';

it("records the ConnID and, for a call from another site, the ConnID it has there", () => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
  const here = tracer.startSpan('tlib ListenReconnect');
  recordAnswer(here, [{ event: 'EventListenReconnected', ConnID: '00000000000000b1' }]);
  here.end();
  const fromA = tracer.startSpan('tlib QueryCall');
  recordAnswer(fromA, [{ event: 'EventPartyInfo', ConnID: '00000000000000b2', OriginConnID: '00000000000000a1' }]);
  fromA.end();
  const [first, second] = exporter.getFinishedSpans();
  expect(first!.attributes).toEqual({ 'tlib.result': 'ok', 'tlib.event': 'EventListenReconnected', 'tlib.conn_id': '00000000000000b1' });
  expect(second!.attributes).toMatchObject({ 'tlib.conn_id': '00000000000000b2', 'tlib.origin_conn_id': '00000000000000a1' });
});
