/**
 * Transport interface (RFC 3261 §18), implemented by UDP, TCP, TLS and WebSocket (RFC 7118). A
 * connection-oriented transport reports the connection a message arrived on, so responses and
 * in-dialog requests reuse it.
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
  /** A flow the peer opened and that only it can open again (a WebSocket from a browser) closed. */
  onFlowClosed?(flow: Endpoint, transport: Transport): void;
}

export interface Transport {
  readonly protocol: TransportProtocol;
  /** Reliable transports get no retransmissions and zero-length wait timers (§17). */
  readonly reliable: boolean;
  /**
   * Reliable, yet each message arrives whole in a frame of its own (WebSocket, RFC 7118): as in a
   * datagram, Content-Length may be absent and the body is the rest of the frame.
   */
  readonly framesMessages?: boolean;
  /** Bound address (after listen()). */
  readonly host: string;
  readonly port: number;
  setHandler(handler: TransportHandler): void;
  listen(): Promise<void>;
  /** Sends one message; failures (e.g. TCP connect refused) are reported through onError. */
  send(data: Buffer, dest: Endpoint, onError?: (err: Error) => void): void;
  /**
   * `source` sent a message that could not be parsed. A transport whose messages are framed for
   * it (WebSocket) closes that connection: the peer does not speak SIP.
   */
  discard?(source: Endpoint): void;
  close(): Promise<void>;
}

export function endpointKey(e: { host: string; port: number }): string {
  return e.host + ':' + e.port;
}
