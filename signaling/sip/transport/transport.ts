/**
 * Transport interface (RFC 3261 §18). UDP and TCP implement it; TLS and WebSocket (RFC 7118)
 * can be added behind the same shape: a stream transport frames with StreamFramer and reports
 * the connection a message arrived on, so responses and in-dialog requests reuse it.
 */

export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

export interface Endpoint {
  protocol: TransportProtocol;
  host: string;
  port: number;
  /** For stream transports: the connection a message came in on (preferred for replies). */
  connectionId?: string;
}

export interface TransportHandler {
  /** One complete message (a datagram, or a Content-Length framed stream message). */
  onMessage(data: Buffer, source: Endpoint, transport: Transport): void;
  /** A stream could not be framed; the handler may answer `head`, then the connection is closed. */
  onFramingError(status: number, reason: string, head: Buffer, source: Endpoint, transport: Transport): void;
}

export interface Transport {
  readonly protocol: TransportProtocol;
  /** Reliable transports get no retransmissions and zero-length wait timers (§17). */
  readonly reliable: boolean;
  /** Bound address (after listen()). */
  readonly host: string;
  readonly port: number;
  setHandler(handler: TransportHandler): void;
  listen(): Promise<void>;
  /** Sends one message; failures (e.g. TCP connect refused) are reported through onError. */
  send(data: Buffer, dest: Endpoint, onError?: (err: Error) => void): void;
  close(): Promise<void>;
}

export function endpointKey(e: { host: string; port: number }): string {
  return e.host + ':' + e.port;
}
