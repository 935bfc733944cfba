/**
 * Frames from clients: JSON text holding one T-Library request. This is where a request is
 * checked against the schema of the request it names (common/tlib/requests.ts); signaling trusts
 * what passes. Anything else is answered with EventError 53 whose ErrorMessage names the problem
 * (and the request's ReferenceID when it has a valid one).
 */
import type { ErrorObject } from 'ajv';
import { Type } from '@sinclair/typebox';
import { checker } from '../../common/config/check.js';
import { ErrorCodes, errorEvent } from '../../common/tlib/errors.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { RequestSchemas, type TRequest } from '../../common/tlib/requests.js';

/**
 * Per request, two checks: the attributes sent (none unknown, each of the right type), then that
 * none it needs is missing. So what was sent wrong is reported before what was left out.
 */
const checks = new Map(
  Object.entries(RequestSchemas).map(([name, schema]) => [name, { sent: checker(Type.Partial(schema)), complete: checker(schema) }] as const),
);

export type ParsedFrame = { ok: true; request: TRequest } | { ok: false; error: TEvent };

/** A frame's ReferenceID when it has a usable one, so that even its refusal can echo it. */
function referenceOf(frame: { ReferenceID?: unknown }): number | undefined {
  return Number.isSafeInteger(frame.ReferenceID) && (frame.ReferenceID as number) >= 0 ? (frame.ReferenceID as number) : undefined;
}

/**
 * A refused frame's request name (a known one, else `invalid`: it becomes a metric label) and
 * ReferenceID, without checking it: what a frame refused before the schema check (rate) still echoes.
 */
export function peekFrame(text: string | undefined): { name: string; ReferenceID: number | undefined } {
  let frame: unknown;
  try {
    frame = text === undefined ? undefined : JSON.parse(text);
  } catch {
    return { name: 'invalid', ReferenceID: undefined };
  }
  if (typeof frame !== 'object' || frame === null) return { name: 'invalid', ReferenceID: undefined };
  const { request } = frame as { request?: unknown };
  return { name: typeof request === 'string' && checks.has(request) ? request : 'invalid', ReferenceID: referenceOf(frame) };
}

export function parseFrame(data: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return invalid('malformed frame: not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return invalid('malformed frame: not a JSON object');
  const frame = value as Record<string, unknown>;
  const ref = referenceOf(frame);
  const name = frame.request;
  if (typeof name !== 'string') return invalid('malformed frame: "request" (the request name) is missing', ref);
  if (!Object.hasOwn(frame, 'ReferenceID')) return invalid(`invalid request ${name}: ReferenceID is required`);
  const check = checks.get(name);
  if (check === undefined) return invalid(`invalid request ${name}: unknown request "${name}"`, ref);
  for (const step of [check.sent, check.complete]) {
    if (!step(value)) return invalid(`invalid request ${name}: ${problem(step.error())}`, ref);
  }
  const request = value as TRequest;
  // Requests go to signaling, and are authorized, by the DN acting: QueryCall may leave it out, not here.
  if (request.ThisDN === undefined) return invalid(`invalid request ${name}: ThisDN is required`, ref);
  return { ok: true, request };
}

function problem(error: ErrorObject | undefined): string {
  if (error?.keyword === 'additionalProperties') return `unknown attribute "${(error.params as { additionalProperty: string }).additionalProperty}"`;
  if (error?.keyword === 'required') return `needs attribute ${(error.params as { missingProperty: string }).missingProperty}`;
  const where = error?.instancePath.slice(1).replaceAll('/', '.') ?? '';
  return `${where || 'frame'} ${error?.message ?? 'is invalid'}`;
}

function invalid(message: string, referenceID?: number): ParsedFrame {
  return { ok: false, error: errorEvent(ErrorCodes.InvalidAttribute, message, { ReferenceID: referenceID }) };
}
