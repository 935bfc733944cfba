/**
 * SIP over WebSocket (RFC 7118): `ws` and `wss` listeners for browsers (JsSIP, SIP.js). Each
 * WebSocket message carries exactly one SIP message, so there is no framing of our own; the
 * `sip` subprotocol is required. A browser is reachable only over the connection it opened (RFC
 * 7118 §5, RFC 5626 flows): we never open one, and when it closes the flow is reported gone so
 * that the registrar forgets the bindings made over it.
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { CertificateFiles } from '../../../common/tls/certificate-files.js';
import { DEFAULT_LIMITS } from '../parser.js';
import { AcceptedConnections, DEFAULT_CONNECTION_LIMITS, listenStream, type ConnectionLimits, type TimeoutPhase } from './connection-limits.js';
import type { StreamTransportOptions } from './stream.js';
import { endpointKey, type Endpoint, type Transport, type TransportHandler } from './transport.js';

export const SIP_WS_SUBPROTOCOL = 'sip';

export interface WsTransportOptions extends StreamTransportOptions {
  /** For `wss`: the PEM files of our certificate and key, read again when they change (as for TLS). */
  tls?: { certFile: string; keyFile: string; reloadMs?: number; onCertificateError?: (err: Error) => void };
}

interface Connection {
  ws: WebSocket;
  source: Endpoint;
  /** From accept until the first SIP message, then while a frame is under way. */
  deadline: NodeJS.Timeout | undefined;
  idle: NodeJS.Timeout;
}

/** A frame of CRLFs only: the RFC 5626 §3.5.1 keep-alive SIP.js sends, answered with one CRLF. */
function isKeepAlive(data: Buffer): boolean {
  if (data.length === 0 || data.length > 4) return false;
  for (const b of data) if (b !== 0x0d && b !== 0x0a) return false;
  return true;
}

export class WsTransport implements Transport {
  readonly reliable = true;
  readonly framesMessages = true;
  private readonly server: net.Server;
  /** Takes the HTTP upgrade on sockets we accepted (and unwrapped from TLS) ourselves. */
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly certificate: CertificateFiles | undefined;
  private readonly connections = new Map<string, Connection>();
  private readonly accepted: AcceptedConnections;
  /** Until the upgrade: the deadline of each accepted socket, by the socket HTTP sees. */
  private readonly handshakes = new WeakMap<Duplex, NodeJS.Timeout>();
  private readonly connectionLimits: ConnectionLimits;
  private handler?: TransportHandler;
  private boundPort = 0;

  constructor(
    readonly protocol: 'ws' | 'wss',
    private readonly opts: WsTransportOptions,
  ) {
    if (protocol === 'wss' && !opts.tls) throw new Error(`listen ${opts.host}:${opts.port} is wss but no certificate is configured (tls.certFile, tls.keyFile)`);
    this.connectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connectionLimits };
    this.accepted = new AcceptedConnections(this, this.connectionLimits, opts.metrics);
    if (protocol === 'wss' && opts.tls) {
      this.certificate = new CertificateFiles({
        certFile: opts.tls.certFile,
        keyFile: opts.tls.keyFile,
        ...(opts.tls.reloadMs ? { pollMs: opts.tls.reloadMs } : {}),
        ...(opts.tls.onCertificateError ? { onError: opts.tls.onCertificateError } : {}),
      });
    }
    this.server = net.createServer((raw) => this.accept(raw));
    // Anything but a WebSocket upgrade is refused: this port speaks SIP only.
    this.http = http.createServer((_req, res) => {
      res.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Content-Length': '0' });
      res.end();
    });
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: opts.limits?.maxMessageBytes ?? DEFAULT_LIMITS.maxMessageBytes,
      handleProtocols: () => SIP_WS_SUBPROTOCOL,
    });
    opts.metrics?.track(this);
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

  async listen(): Promise<void> {
    this.boundPort = await listenStream(this.server, this.opts.host, this.opts.port);
  }

  private accept(raw: net.Socket): void {
    if (!this.accepted.admit(raw)) return;
    raw.setNoDelay(true);
    const socket = this.certificate ? new tls.TLSSocket(raw, { isServer: true, secureContext: this.certificate.context }) : raw;
    // The TLS handshake, the HTTP upgrade and the first SIP message must all come within the deadline.
    const deadline = setTimeout(() => this.expire(socket, 'handshake'), this.connectionLimits.headTimeoutMs);
    this.handshakes.set(socket, deadline);
    socket.once('close', () => clearTimeout(deadline));
    socket.on('error', () => socket.destroy());
    if (raw !== socket) raw.once('close', () => socket.destroy());
    this.http.emit('connection', socket);
  }

  private expire(socket: Duplex, phase: TimeoutPhase): void {
    this.opts.metrics?.timedOut(this.protocol, phase);
    socket.destroy();
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim().toLowerCase());
    // RFC 7118 §4.1: the client MUST offer "sip"; a server talking SIP to anything else would be guessing.
    if (!offered.includes(SIP_WS_SUBPROTOCOL)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.adopt(ws, socket));
  }

  private adopt(ws: WebSocket, socket: Duplex): void {
    const raw = socket instanceof tls.TLSSocket ? (socket as tls.TLSSocket & { _parent?: net.Socket })._parent ?? socket : (socket as net.Socket);
    const host = raw.remoteAddress ?? '';
    const port = raw.remotePort ?? 0;
    const id = endpointKey({ host, port });
    const conn: Connection = {
      ws,
      source: { protocol: this.protocol, host, port, connectionId: id },
      // The upgrade is done: the first SIP message gets a deadline of its own.
      deadline: setTimeout(() => this.expireConnection(conn, 'head'), this.connectionLimits.headTimeoutMs),
      idle: setTimeout(() => this.expireConnection(conn, 'idle'), this.connectionLimits.idleTimeoutMs),
    };
    clearTimeout(this.handshakes.get(socket));
    this.handshakes.delete(socket);
    this.connections.set(id, conn);
    // Before ws reads the chunk: a frame that starts now must end within the deadline.
    socket.prependListener('data', () => {
      conn.deadline ??= setTimeout(() => this.expireConnection(conn, 'head'), this.connectionLimits.headTimeoutMs);
    });
    ws.on('message', (data: Buffer) => this.onFrame(conn, data));
    ws.on('pong', () => this.settled(conn));
    ws.on('error', () => ws.terminate());
    ws.once('close', () => {
      clearTimeout(conn.deadline);
      clearTimeout(conn.idle);
      if (this.connections.get(id) === conn) this.connections.delete(id);
      this.handler?.onFlowClosed?.(conn.source, this);
    });
  }

  private expireConnection(conn: Connection, phase: TimeoutPhase): void {
    this.opts.metrics?.timedOut(this.protocol, phase);
    conn.ws.terminate();
  }

  /** A whole frame arrived: nothing is under way any more. */
  private settled(conn: Connection): void {
    clearTimeout(conn.deadline);
    conn.deadline = undefined;
    conn.idle.refresh();
  }

  private onFrame(conn: Connection, data: Buffer): void {
    this.settled(conn);
    if (isKeepAlive(data)) {
      conn.ws.send('\r\n');
      return;
    }
    this.handler?.onMessage(data, conn.source, this);
  }

  /** A message from `source` could not be parsed: the peer's stream is not SIP, so its connection is closed. */
  discard(source: Endpoint): void {
    const conn = source.connectionId ? this.connections.get(source.connectionId) : undefined;
    // 1002: protocol error (RFC 6455 §7.4.1); the 400 already queued goes out before the close frame.
    conn?.ws.close(1002, 'malformed SIP message');
  }

  send(data: Buffer, dest: Endpoint, onError?: (err: Error) => void): void {
    const conn = (dest.connectionId && this.connections.get(dest.connectionId)) || this.connections.get(endpointKey(dest));
    if (!conn || conn.ws.readyState !== WebSocket.OPEN) {
      // A browser cannot be called back on a new connection: its flow is gone.
      if (onError) process.nextTick(onError, new Error(`no ${this.protocol} connection to ${dest.host}:${dest.port}`));
      return;
    }
    conn.idle.refresh();
    // Text frames (RFC 7118 §5.1): SIP messages are UTF-8 text, and browsers' SIP stacks expect them.
    conn.ws.send(data, { binary: false });
  }

  close(): Promise<void> {
    // Our own shutdown ends no browser's registration: the flows die with the process anyway.
    this.handler = undefined;
    for (const c of this.connections.values()) c.ws.terminate();
    this.connections.clear();
    this.certificate?.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
