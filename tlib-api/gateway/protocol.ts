/**
 * Frames from clients: JSON text holding one T-Library request. Anything else is answered with
 * EventError 53 whose ErrorMessage names the problem (and the request's ReferenceID when it has one).
 */
import { checker } from '../../common/config/check.js';
import { ErrorCodes, errorEvent } from '../../common/tlib/errors.js';
import { TRequest, type TEvent } from '../../common/tlib/messages.js';

const checkRequest = checker(TRequest);

export type ParsedFrame = { ok: true; request: TRequest } | { ok: false; error: TEvent };

export function parseFrame(data: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return invalid('malformed frame: not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return invalid('malformed frame: not a JSON object');
  const frame = value as Record<string, unknown>;
  const ref = Number.isSafeInteger(frame.ReferenceID) && (frame.ReferenceID as number) >= 0 ? (frame.ReferenceID as number) : undefined;
  if (typeof frame.request !== 'string') return invalid('malformed frame: "request" (the request name) is missing', ref);
  if (!checkRequest(value)) {
    const first = checkRequest.error();
    const where = first?.instancePath.replace(/^\//, '') ?? '';
    let problem: string;
    if (where === 'request') problem = `unknown request "${frame.request}"`;
    else if (first?.keyword === 'additionalProperties') problem = `unknown attribute "${(first.params as { additionalProperty: string }).additionalProperty}"`;
    else if (first?.keyword === 'required') problem = `${(first.params as { missingProperty: string }).missingProperty} is required`;
    else problem = `${where || 'frame'}: ${first?.message ?? 'invalid'}`;
    return invalid(`invalid request ${frame.request}: ${problem}`, ref);
  }
  const request = value;
  if (request.ThisDN === undefined) return invalid(`invalid request ${request.request}: ThisDN is required`, request.ReferenceID);
  return { ok: true, request };
}

function invalid(message: string, referenceID?: number): ParsedFrame {
  return { ok: false, error: errorEvent(ErrorCodes.InvalidAttribute, message, { ReferenceID: referenceID }) };
}
