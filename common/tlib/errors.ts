import type { TEvent } from './messages.js';

/** T-Library error codes (AttributeErrorCode) from the public header, with default messages. */
export const ErrorCodes = {
  NotRegistered: 41,
  InSameState: 43,
  UnknownError: 50,
  UnsupportedOperation: 51,
  InvalidAttribute: 53,
  InvalidConnID: 56,
  Timeout: 57,
  OutOfService: 58,
  DNNotConfigured: 59,
  InvalidCalledDN: 71,
  InvalidState: 565,
  BadDeviceState: 566,
  /** huddle's own, outside the public header: a client over its request rate or in-flight cap (tlib-api/README.md). */
  TooManyRequests: 1429,
} as const;
export type ErrorCodeName = keyof typeof ErrorCodes;
export type ErrorCode = (typeof ErrorCodes)[ErrorCodeName];

export const DefaultErrorMessages: Record<ErrorCode, string> = {
  41: 'DN is not registered',
  43: 'Already in the requested state',
  50: 'Unknown error',
  51: 'Unsupported operation',
  53: 'Invalid attribute value',
  56: 'Invalid ConnID',
  57: 'Timeout',
  58: 'Out of service',
  59: 'DN is not configured',
  71: 'Invalid called DN',
  565: 'Invalid state',
  566: 'Bad device state',
  1429: 'Too many requests',
};

/** What an EventError is about: the request it answers and the call and DNs it names. */
export interface ErrorSubject {
  ReferenceID?: number | undefined;
  ThisDN?: string | undefined;
  OtherDN?: string | undefined;
  ConnID?: string | undefined;
  Time?: number | undefined;
}

/** The one way an EventError is built: attributes left undefined are not sent. */
export function errorEvent(code: ErrorCode | number, message: string, about: ErrorSubject = {}): TEvent {
  const event: TEvent = { event: 'EventError', ErrorCode: code, ErrorMessage: message };
  if (about.ReferenceID !== undefined) event.ReferenceID = about.ReferenceID;
  if (about.ThisDN !== undefined) event.ThisDN = about.ThisDN;
  if (about.OtherDN !== undefined) event.OtherDN = about.OtherDN;
  if (about.ConnID !== undefined) event.ConnID = about.ConnID;
  if (about.Time !== undefined) event.Time = about.Time;
  return event;
}
