/**
 * The SIP stack's one public entry point. Signaling code imports from here only, so that
 * another implementation (e.g. a drachtio adapter) can stand behind the same types.
 */
import { SipStackImpl } from './stack.js';
import type { SipStack, SipStackOptions } from './types.js';

/** Creates the stack and binds every listen address (ports 0 resolve to free ones: see `addresses`). */
export async function createSipStack(options: SipStackOptions): Promise<SipStack> {
  const stack = new SipStackImpl(options);
  try {
    await stack.listen();
  } catch (err) {
    await stack.close(0);
    throw err;
  }
  return stack;
}

export type * from './types.js';
export { ALLOWED_METHODS } from './user-agent-core.js';
export type { Endpoint, Transport, TransportHandler, TransportProtocol } from './transport/transport.js';
export { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './transport/connection-limits.js';
export type { Clock, TimerHandle } from './clock.js';
export { DEFAULT_RATE_LIMIT, SourceRateLimiter, type RateLimitAction, type RateLimitOptions } from './rate-limit.js';
export { FakeClock, systemClock } from './clock.js';
export { SipMessage, SipRequest, SipResponse, reasonPhrase, type RawHeader } from './message.js';
export { parseMessage, StreamFramer, DEFAULT_LIMITS, type ParseLimits, type ParseResult } from './parser.js';
export { parseNameAddr, formatNameAddr, parseVia, formatVia, parseCSeq, type NameAddr, type Via, type CSeq } from './headers.js';
export { parseUri, formatUri, uriUser, type Uri, type SipUri, type TelUri } from './uri.js';
export { DigestChallenger, authorize, parseChallenge, digestResponse, type Credentials, type DigestAlgorithm, type DigestSecret, type VerifyResult } from './digest.js';
