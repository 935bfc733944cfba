/**
 * What TCP and TLS share (RFC 3261 §18): connections reused both ways, StreamFramer framing, and the
 * caps and deadlines that keep a stranger from holding connections (issue 15). Subclasses only say
 * how an accepted socket becomes a message stream (TLS: the server side of a handshake) and how an
 * outbound connection is opened.
 */
import net from 'node:net';
import { StreamFramer, type ParseLimits, DEFAULT_LIMITS } from '../parser.js';
import { AcceptedConnections, DEFAULT_CONNECTION_LIMITS, listenStream, type ConnectionLimits, type ConnectionMetrics, type TimeoutPhase } from './connection-limits.js';
import { endpointKey, type Endpoint, type Transport, type TransportHandler } from './transport.js';

export interface StreamTransportOptions {
  host: string;
  port: number;
  limits?: ParseLimits;
  connectionLimits?: Partial<ConnectionLimits>;
  metrics?: ConnectionMetrics;
}

interface Connection {
  id: string;
  /** The socket messages travel on (TLS: the TLSSocket over `raw`). */
  socket: net.Socket;
  raw: net.Socket;
  framer: StreamFramer;
  /** False until a TLS handshake completed (always true for TCP). */
  secured: boolean;
  /** Armed while a message is under way, and on a new inbound connection until its first message. */
  deadline: NodeJS.Timeout | undefined;
  idle: NodeJS.Timeout;
  /** Where this connection's messages come from: made once, when the first one arrives (an outbound socket has no remote address before it connects). */
  source?: Endpoint;
}

export abstract class StreamTransport implements Transport {
  abstract readonly protocol: 'tcp' | 'tls';
  readonly reliable = true;
  private readonly server: net.Server;
  private handler?: TransportHandler;
  private readonly connections = new Map<string, Connection>();
  /** Accepted sockets still open (TLS handshakes included), capped. */
  private readonly accepted: AcceptedConnections;
  private boundPort = 0;
  private readonly connectionLimits: ConnectionLimits;

  constructor(private readonly opts: StreamTransportOptions) {
    this.connectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connectionLimits };
    this.accepted = new AcceptedConnections(this, this.connectionLimits, opts.metrics);
    this.server = net.createServer((socket) => this.accept(socket));
    opts.metrics?.track(this);
  }

  /** The stream an accepted socket carries messages on, and whether it is ready at once. */
  protected abstract inbound(raw: net.Socket): { socket: net.Socket; secured: boolean };
  /** Opens a connection to `dest`; writes before it is up are queued by the socket. */
  protected abstract outbound(dest: Endpoint): { socket: net.Socket; readyEvent: string };

  get host(): string {
    return this.opts.host;
  }

  get port(): number {
    return this.boundPort;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  async listen(): Promise<void> {
    this.boundPort = await listenStream(this.server, this.opts.host, this.opts.port);
  }

  private accept(raw: net.Socket): void {
    if (!this.accepted.admit(raw)) return;
    const source = raw.remoteAddress ?? '';
    const { socket, secured } = this.inbound(raw);
    const conn = this.adopt(socket, raw, endpointKey({ host: source, port: raw.remotePort ?? 0 }), secured);
    if (!secured) socket.once('secure', () => (conn.secured = true));
    this.arm(conn);
  }

  private adopt(socket: net.Socket, raw: net.Socket, id: string, secured: boolean): Connection {
    const conn: Connection = {
      id,
      socket,
      raw,
      framer: new StreamFramer(this.opts.limits ?? DEFAULT_LIMITS),
      secured,
      deadline: undefined,
      idle: setTimeout(() => this.expire(conn, 'idle'), this.connectionLimits.idleTimeoutMs),
    };
    this.connections.set(id, conn);
    raw.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', () => socket.destroy());
    const closed = () => {
      clearTimeout(conn.idle);
      clearTimeout(conn.deadline);
      raw.destroy();
      if (this.connections.get(id) === conn) this.connections.delete(id);
    };
    socket.once('close', closed);
    if (raw !== socket) raw.once('close', () => socket.destroy());
    return conn;
  }

  /** Starts the message deadline unless it runs already. */
  private arm(conn: Connection): void {
    conn.deadline ??= setTimeout(() => this.expire(conn, conn.secured ? 'head' : 'handshake'), this.connectionLimits.headTimeoutMs);
  }

  private expire(conn: Connection, phase: TimeoutPhase): void {
    this.opts.metrics?.timedOut(this.protocol, phase);
    conn.socket.destroy(new Error(`SIP ${this.protocol} connection closed: ${phase} timeout`));
  }

  private onData(conn: Connection, chunk: Buffer): void {
    let complete = false;
    for (const ev of conn.framer.push(chunk)) {
      if (ev.kind === 'message') {
        complete = true;
        this.handler?.onMessage(ev.data, this.sourceOf(conn), this);
      } else if (ev.kind === 'ping') {
        // RFC 5626 §4.4.1 keep-alive: it keeps the flow, like a message.
        complete = true;
        conn.socket.write('\r\n');
      } else {
        this.handler?.onFramingError(ev.status, ev.reason, ev.head, this.sourceOf(conn), this);
        conn.socket.end();
      }
    }
    if (complete) {
      conn.idle.refresh();
      clearTimeout(conn.deadline);
      conn.deadline = undefined;
    }
    // What is left is the start of the next message: it gets the whole deadline, not what remains.
    if (conn.framer.buffered > 0) this.arm(conn);
  }

  private sourceOf(conn: Connection): Endpoint {
    return (conn.source ??= { protocol: this.protocol, host: conn.raw.remoteAddress ?? '', port: conn.raw.remotePort ?? 0, connectionId: conn.id });
  }

  send(data: Buffer, dest: Endpoint, onError?: (err: Error) => void): void {
    let conn = (dest.connectionId && this.connections.get(dest.connectionId)) || this.connections.get(endpointKey(dest));
    if (!conn || conn.socket.destroyed) {
      const { socket, readyEvent } = this.outbound(dest);
      conn = this.adopt(socket, socket, endpointKey(dest), false);
      const opened = conn;
      // Connecting (and a TLS handshake) must finish within the message deadline too.
      this.arm(opened);
      socket.once(readyEvent, () => {
        opened.secured = true;
        if (opened.framer.buffered === 0) {
          clearTimeout(opened.deadline);
          opened.deadline = undefined;
        }
      });
      if (onError) {
        socket.once('error', onError);
        socket.once(readyEvent, () => socket.off('error', onError));
      }
    }
    conn.idle.refresh();
    conn.socket.write(data);
  }

  close(): Promise<void> {
    for (const c of this.connections.values()) c.socket.destroy();
    this.connections.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
