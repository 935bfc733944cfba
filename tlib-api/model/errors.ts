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
};
