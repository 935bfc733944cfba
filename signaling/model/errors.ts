/** A refused T-Library request: becomes an EventError to the requester and changes nothing. */
import { ErrorCodes, type ErrorCodeName } from '../../common/tlib/errors.js';

export class RequestError extends Error {
  readonly code: number;

  constructor(code: ErrorCodeName, message: string) {
    super(message);
    this.name = 'RequestError';
    this.code = ErrorCodes[code];
  }
}

export function refuse(code: ErrorCodeName, message: string): never {
  throw new RequestError(code, message);
}
