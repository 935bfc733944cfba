import net from 'node:net';
import { StreamFramer, type ParseLimits, DEFAULT_LIMITS } from '../parser.js';
import { socketHost } from '../uri.js';
import { endpointKey, type Endpoint, type Transport, type TransportHandler } from './transport.js';

export interface TcpTransportOptions {
  host: string;
  port: number;
  /** Connections idle this long are closed (default 10 min, above a typical registration interval). */
  idleTimeoutMs?: number;
  limits?: ParseLimits;
}

interface Connection {
  id: string;
  socket: net.Socket;
  framer: StreamFramer;
}

/**
 * TCP with connection reuse: one connection per remote address, whether we accepted or opened it
 * (§18.2.2: responses go back over the connection the request came on).
 */
export class TcpTransport implements Transport {
  readonly protocol = 'tcp' as const;
  readonly reliable = true;
  private server: net.Server;
  private handler?: TransportHandler;
  private readonly connections = new Map<string, Connection>();
  private boundPort = 0;

  constructor(private readonly opts: TcpTransportOptions) {
    this.server = net.createServer((socket) => this.adopt(socket));
  }

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

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, socketHost(this.opts.host), () => {
        this.server.off('error', reject);
        this.boundPort = (this.server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private adopt(socket: net.Socket, id = endpointKey({ host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 })): Connection {
    const conn: Connection = { id, socket, framer: new StreamFramer(this.opts.limits ?? DEFAULT_LIMITS) };
    this.connections.set(id, conn);
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.idleTimeoutMs ?? 600_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.connections.get(id) === conn) this.connections.delete(id);
    });
    return conn;
  }

  private onData(conn: Connection, chunk: Buffer): void {
    const source = (): Endpoint => ({
      protocol: 'tcp',
      host: conn.socket.remoteAddress ?? '',
      port: conn.socket.remotePort ?? 0,
      connectionId: conn.id,
    });
    for (const ev of conn.framer.push(chunk)) {
      if (ev.kind === 'message') this.handler?.onMessage(ev.data, source(), this);
      else if (ev.kind === 'ping') conn.socket.write('\r\n');
      else {
        this.handler?.onFramingError(ev.status, ev.reason, ev.head, source(), this);
        conn.socket.end();
      }
    }
  }

  send(data: Buffer, dest: Endpoint, onError?: (err: Error) => void): void {
    let conn = (dest.connectionId && this.connections.get(dest.connectionId)) || this.connections.get(endpointKey(dest));
    if (!conn || conn.socket.destroyed) {
      const socket = net.connect({ host: socketHost(dest.host), port: dest.port });
      conn = this.adopt(socket, endpointKey(dest));
      if (onError) {
        const cb = onError;
        const fail = (err: Error) => cb(err);
        socket.once('error', fail);
        socket.once('connect', () => socket.off('error', fail));
      }
    }
    conn.socket.write(data);
  }

  close(): Promise<void> {
    for (const c of this.connections.values()) c.socket.destroy();
    this.connections.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
