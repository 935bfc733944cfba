/** Span attributes of a T-Library request and its answer, the same in the gateway and signaling. */
import type { Attributes, Span } from '@opentelemetry/api';
import type { TEvent, TRequest } from './messages.js';

export function requestAttributes(request: TRequest): Attributes {
  const r = request as { request: string; ReferenceID?: number; ThisDN?: string; OtherDN?: string; ConnID?: string };
  const attributes: Attributes = { 'tlib.request': r.request };
  if (r.ReferenceID !== undefined) attributes['tlib.reference_id'] = r.ReferenceID;
  if (r.ThisDN !== undefined) attributes['tlib.this_dn'] = r.ThisDN;
  if (r.OtherDN !== undefined) attributes['tlib.other_dn'] = r.OtherDN;
  if (r.ConnID !== undefined) attributes['tlib.conn_id'] = r.ConnID;
  return attributes;
}

/**
 * The answer: its first event, the error code when it is EventError, the ConnID it names, and for a
 * call that came from another of our sites the ConnID it has there (traces of both sites join on it).
 */
export function recordAnswer(span: Span, events: readonly TEvent[]): void {
  if (!span.isRecording()) return;
  const error = events.find((e) => e.event === 'EventError');
  const connId = events.find((e) => e.ConnID)?.ConnID;
  const originConnId = events.find((e) => e.OriginConnID)?.OriginConnID;
  span.setAttributes({
    'tlib.result': error ? 'error' : 'ok',
    ...(events[0] ? { 'tlib.event': events[0].event } : {}),
    ...(error?.ErrorCode !== undefined ? { 'tlib.error_code': error.ErrorCode } : {}),
    ...(connId ? { 'tlib.conn_id': connId } : {}),
    ...(originConnId ? { 'tlib.origin_conn_id': originConnId } : {}),
  });
}
