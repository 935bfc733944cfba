/**
 * The T-Library WebSocket gateway. Stateless apart from its own clients: any number of replicas
 * can run, each subscribing on NATS only to the event subjects of the DNs its clients registered.
 *
 *   client --ws--> gateway --NATS request tlib.req.<ThisDN>--> signaling  (reply: events at once)
 *   signaling --NATS tlib.evt.<dn>--> every gateway with a client on <dn> --ws--> those clients
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { SpanKind, trace } from '@opentelemetry/api';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { checker } from '../../common/config/check.js';
import { GATEWAY_TLS_DIR, tlsFiles } from '../../common/config/schema.js';
import { decodeChecked, encodeJson } from '../../common/nats/codec.js';
import { onReconnect } from '../../common/nats/connect.js';
import { RpcBadReply, RpcNoResponders, RpcRequestFailed, RpcTimeout, call, notify } from '../../common/nats/rpc.js';
import { Subjects } from '../../common/nats/subjects.js';
import { TlibAttemptMs, TlibEventEnvelope, TlibRpc, type TlibEventMessage, type TlibGatewayAlive, type TlibOrigin, type TlibRequestMessage } from '../../common/nats/tlib-contract.js';
import type { ComponentContext } from '../../common/process/component.js';
import { componentContext, inSpan, traceAs } from '../../common/process/tracing.js';
import { recordAnswer, requestAttributes } from '../../common/tlib/trace-attributes.js';
import type { Component } from '../../common/process/lifecycle.js';
import { parseHostPort } from '../../common/process/http.js';
import { ErrorCodes, errorEvent } from '../../common/tlib/errors.js';
import { CertificateFiles } from '../../common/tls/certificate-files.js';
import type { TEvent, TRequest } from '../../common/tlib/messages.js';
import { TlibProtocolVersion, TlibSubprotocol, TlibVersionHeader } from '../../common/tlib/version.js';
import { pageHandler, staticDir } from '../page/serve.js';
import { TokenFile } from './token-file.js';
import { CdrEndpoint } from './cdr-endpoint.js';
import { authenticate, bearerToken, mayUse, type JwtKeys, type Principal } from './auth.js';
import { ClientConnection, CloseCodes, type ClientLimits } from './client-connection.js';
import { gatewayMetrics, type GatewayMetrics } from './metrics.js';
import { parseFrame, peekFrame } from './protocol.js';

const isEventMessage = checker(TlibEventEnvelope);

/** How long a request finding no signaling subscribed is asked again, and the pause between. */
const NoSignalingRetryMs = 2000;
const NoSignalingPauseMs = 200;


const tracer = trace.getTracer('huddle.gateway');

export interface GatewayOptions {
  /** host:port to listen on; default spec.gateway.listen. Port 0 picks a free one. */
  listen?: string;
  jwtKeys?: JwtKeys;
  /** How long signaling has to answer a request before the client gets EventError 57. */
  requestTimeoutMs?: number;
  /** Bytes queued towards one client before it is dropped as too slow. */
  maxQueuedBytes?: number;
  /** WebSocket ping interval; a client that missed one pong is cut off. */
  heartbeatMs?: number;
  /** Largest frame accepted from a client; default spec.gateway.clientLimits.maxFrameBytes. */
  maxFrameBytes?: number;
  /** Per-client request limits; default spec.gateway.clientLimits. */
  clientLimits?: Partial<ClientLimits>;
  /** How often the gateway tells signaling it is alive (signaling forgets a gateway silent for three). */
  aliveIntervalMs?: number;
  /** A YAML file of agent tokens (the Secret of spec.gateway.tokensSecret), besides spec.gateway.tokens. */
  tokenFile?: string;
  /** Serve https and wss only, with this certificate (re-read when the files change); default spec.gateway.tls. */
  tls?: { certFile: string; keyFile: string; reloadMs?: number };
}

export interface Gateway extends Component {
  /** http(s)://host:port (the agent page); the WebSocket endpoint is `${url}/tlib` with ws: (wss: with TLS). */
  readonly url: string;
  readonly wsUrl: string;
  readonly endpoints: string[];
  /** Clients connected to this replica now. */
  clientCount(): number;
}

interface DnEntry {
  sub: Subscription;
  clients: Set<ClientConnection>;
}

/** What a request forwarded to signaling came to: the metrics' result and the client's events. */
interface Outcome {
  result: string;
  events: TEvent[];
}

export async function createGateway(ctx: ComponentContext, options: GatewayOptions = {}): Promise<Gateway> {
  traceAs(ctx.nc, 'gateway');
  const tls = ctx.config.cluster.spec.gateway.tls;
  const gateway = new GatewayImpl(ctx, { ...(tls ? { tls: tlsFiles(tls, GATEWAY_TLS_DIR) } : {}), ...options });
  await gateway.listen(options.listen ?? ctx.config.cluster.spec.gateway.listen);
  return gateway;
}

class GatewayImpl implements Gateway {
  readonly name = 'tlib-gateway';
  private readonly requestTimeoutMs: number;
  private readonly maxQueuedBytes: number;
  private readonly clientLimits: ClientLimits;
  private readonly aliveIntervalMs: number;
  /** How many times our NATS connection was established (TlibGatewayAlive.links). */
  private links = 1;
  private readonly jwtKeys: JwtKeys;
  private readonly tokenFile: TokenFile | undefined;
  private readonly clients = new Set<ClientConnection>();
  private readonly dns = new Map<string, DnEntry>();
  private readonly metrics: GatewayMetrics;
  private readonly wss: WebSocketServer;
  private readonly server: http.Server | https.Server;
  /** Set when the gateway serves TLS only. */
  private readonly certificate: CertificateFiles | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly alive: NodeJS.Timeout;
  private hostPort = '';
  private stopping = false;

  constructor(
    private readonly ctx: ComponentContext,
    options: GatewayOptions,
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
    this.aliveIntervalMs = options.aliveIntervalMs ?? 5000;
    this.jwtKeys = options.jwtKeys ?? {};
    this.tokenFile = options.tokenFile ? new TokenFile(options.tokenFile, ctx.log) : undefined;
    this.metrics = gatewayMetrics(ctx.registry, { clients: () => this.clients.size, registeredDns: () => this.dns.size });

    const { maxFrameBytes, ...clientLimits } = ctx.config.cluster.spec.gateway.clientLimits;
    this.clientLimits = { ...clientLimits, ...options.clientLimits };
    // ws closes a connection whose frame is larger with 1009 (message too big), before buffering it.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxFrameBytes ?? maxFrameBytes,
      // onUpgrade refused a client offering subprotocols without ours, so here it is ours or none.
      handleProtocols: (offered) => (offered.has(TlibSubprotocol) ? TlibSubprotocol : false),
    });
    this.wss.on('headers', (headers) => headers.push(`${TlibVersionHeader}: ${TlibProtocolVersion}`));
    const pageDir = staticDir();
    if (!pageDir) ctx.log.warn('agent page files not found (set HUDDLE_PAGE_DIR); / answers 404');
    const page = pageHandler(pageDir);
    const cdr = new CdrEndpoint({
      nc: ctx.nc,
      location: () => this.location,
      log: ctx.log,
      authenticate: (req) => authenticate(bearerToken(req), ctx.config.cluster.spec.gateway, this.jwtKeys, this.tokenFile?.tokens()),
    });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      if (new URL(req.url ?? '/', 'http://gateway').pathname !== '/cdr') return void page(req, res);
      cdr.handle(req, res).catch((err: Error) => {
        ctx.log.warn({ err: err.message }, 'call detail records not read');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end();
      });
    };
    if (options.tls) {
      const certificate = new CertificateFiles({
        ...options.tls,
        ...(options.tls.reloadMs ? { pollMs: options.tls.reloadMs } : {}),
        onError: (err) => ctx.log.error({ err: err.message }, 'rotated TLS certificate not loaded; the previous one stays in use'),
      });
      // A stranger's half-open handshake must not hold a socket for Node's default 120 s.
      const server = https.createServer({ ...certificate.pem, handshakeTimeout: 10_000 }, handler);
      // Connections accepted from now on get the new certificate; open ones keep their session.
      certificate.onChange((files) => server.setSecureContext(files.pem));
      this.certificate = certificate;
      this.server = server;
    } else {
      this.server = http.createServer(handler);
    }
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));

    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
    this.announce(false);
    this.alive = setInterval(() => this.announce(false), this.aliveIntervalMs);
    this.alive.unref();
    // Events sent to us while our connection moved to another NATS server are lost: saying so at
    // once (links) makes signaling resync the DNs it sent events to meanwhile.
    onReconnect(ctx.nc, () => {
      this.links++;
      this.announce(false);
    });
  }

  get url(): string {
    return `${this.certificate ? 'https' : 'http'}://${this.hostPort}`;
  }

  get wsUrl(): string {
    return `${this.certificate ? 'wss' : 'ws'}://${this.hostPort}/tlib`;
  }

  get endpoints(): string[] {
    return [`T-Library  ${this.wsUrl}`, `Agent page ${this.url}/`];
  }

  clientCount(): number {
    return this.clients.size;
  }

  async listen(listen: string): Promise<void> {
    const { host, port } = parseHostPort(listen);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    this.hostPort = `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    this.ctx.addReadiness('listening', () => (this.stopping ? 'stopping' : this.server.listening));
    this.ctx.log.info({ listen: this.hostPort }, 'T-Library gateway listening');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeat);
    clearInterval(this.alive);
    const closed = [...this.clients].map((c) => new Promise<void>((resolve) => (c.ws.readyState === c.ws.CLOSED ? resolve() : c.ws.once('close', () => resolve()))));
    for (const client of this.clients) client.close(CloseCodes.stopping, 'gateway stopping');
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const client of this.clients) client.ws.terminate();
    for (const entry of this.dns.values()) entry.sub.unsubscribe();
    this.dns.clear();
    this.announce(true);
    this.wss.close();
    this.certificate?.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private get location(): string {
    return this.ctx.config.cluster.spec.location;
  }

  /** The envelope's origin: `supervisor` comes from the client's authenticated token only. */
  private origin(client: ClientConnection): TlibOrigin {
    return client.principal.supervisor === true ? { gateway: this.ctx.instance, client: client.id, supervisor: true } : { gateway: this.ctx.instance, client: client.id };
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const pathname = new URL(req.url ?? '/', 'http://gateway').pathname;
    if (pathname !== '/tlib') return refuse(socket, 404, 'Not Found', 'the T-Library endpoint is /tlib');
    if (this.stopping) return refuse(socket, 503, 'Service Unavailable', 'gateway stopping');
    const offered = req.headers['sec-websocket-protocol'];
    if (offered !== undefined && !offered.split(',').some((p) => p.trim() === TlibSubprotocol))
      return refuse(socket, 400, 'Bad Request', `this gateway speaks T-Library protocol ${TlibSubprotocol}; offered: ${offered}`);
    authenticate(bearerToken(req), this.ctx.config.cluster.spec.gateway, this.jwtKeys, this.tokenFile?.tokens())
      .then((auth) => {
        if (!auth.ok) {
          this.ctx.log.info({ reason: auth.reason, from: req.socket.remoteAddress }, 'client refused');
          return refuse(socket, 401, 'Unauthorized', auth.reason);
        }
        this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, auth.principal));
      })
      .catch((err: Error) => refuse(socket, 500, 'Internal Server Error', err.message));
  }

  private onConnection(ws: WebSocket, principal: Principal): void {
    const client = new ClientConnection(
      ws,
      principal,
      this.maxQueuedBytes,
      this.clientLimits,
      (c, reason) => this.ctx.log.warn({ client: c.id, name: c.principal.name, reason }, 'client dropped'),
    );
    this.clients.add(client);
    this.ctx.log.debug({ client: client.id, name: principal.name }, 'client connected');
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data, isBinary) => this.onFrame(client, data, isBinary));
    ws.on('error', (err) => this.ctx.log.debug({ client: client.id, err: err.message }, 'client socket error'));
    ws.on('close', () => this.onClose(client));
  }

  private onClose(client: ClientConnection): void {
    this.clients.delete(client);
    for (const dn of [...client.registered]) {
      this.removeRegistration(client, dn);
      this.forgetRegistration(client, dn);
    }
    this.ctx.log.debug({ client: client.id }, 'client disconnected');
  }

  private onFrame(client: ClientConnection, data: RawData, isBinary: boolean): void {
    // A client being dropped (too slow) gets nothing more; what it still sends is not worked on.
    if (client.gone) return;
    const text = isBinary ? undefined : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const now = performance.now();
    const overRate = client.spend(now);
    if (overRate !== undefined) {
      // Refused before the schema check: the excess costs a JSON parse, no more.
      const { name, ReferenceID } = peekFrame(text);
      this.answer(client, name, 'limited', [errorEvent(ErrorCodes.TooManyRequests, overRate, { ReferenceID })]);
      return;
    }
    const parsed = text === undefined ? undefined : parseFrame(text);
    if (parsed === undefined) {
      this.answer(client, 'invalid', 'invalid', [errorEvent(ErrorCodes.InvalidAttribute, 'malformed frame: binary frames are not accepted, send JSON text')]);
      return;
    }
    if (!parsed.ok) {
      this.answer(client, 'invalid', 'invalid', [parsed.error]);
      return;
    }
    const { request } = parsed;
    const overFlight = client.enter();
    if (overFlight !== undefined) {
      this.answer(client, request.request, 'limited', [errorEvent(ErrorCodes.TooManyRequests, overFlight, { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN })]);
      return;
    }
    inSpan(tracer, `tlib ${request.request}`, { kind: SpanKind.SERVER, attributes: requestAttributes(request) }, () => this.handleRequest(client, request, now), componentContext(this.ctx.nc))
      .catch((err: Error) => {
        this.ctx.log.error({ err: err.stack }, 'request handling failed');
        this.answer(client, request.request, 'error', [errorEvent(ErrorCodes.UnknownError, `Unknown error: ${err.message}`, { ReferenceID: request.ReferenceID })]);
      })
      .finally(() => client.requestDone());
  }

  /** A checked request: the client's token must allow ThisDN, and (but to register) the client must have registered it. */
  private async handleRequest(client: ClientConnection, request: TRequest, started: number): Promise<void> {
    const thisDN = request.ThisDN!;
    const name = request.request;
    if (!mayUse(client.principal, thisDN)) {
      this.answer(client, name, 'forbidden', [errorEvent(ErrorCodes.InvalidAttribute, `ThisDN ${thisDN} is not allowed for this client's token`, { ReferenceID: request.ReferenceID, ThisDN: thisDN })]);
      return;
    }
    if (name === 'RegisterAddress') {
      const wasRegistered = client.registered.has(thisDN);
      // Subscribe before asking signaling, so no event between its answer and our subscription is lost.
      this.addRegistration(client, thisDN);
      const { result, events } = await this.forward(client, request);
      if (result !== 'ok' && !wasRegistered && client.registered.has(thisDN)) this.removeRegistration(client, thisDN);
      this.answer(client, name, result, events, started);
      return;
    }
    if (!client.registered.has(thisDN)) {
      this.answer(client, name, 'error', [errorEvent(ErrorCodes.NotRegistered, `DN ${thisDN} is not registered by this client: send RegisterAddress first`, { ReferenceID: request.ReferenceID, ThisDN: thisDN })]);
      return;
    }
    if (name === 'UnregisterAddress') this.removeRegistration(client, thisDN);
    const { result, events } = await this.forward(client, request);
    this.answer(client, name, result, events, started);
  }

  /** NATS round trip to signaling; failures become the EventError the client gets. */
  private async forward(client: ClientConnection, request: TRequest): Promise<Outcome> {
    const message: TlibRequestMessage = { request, origin: this.origin(client), id: randomUUID() };
    const deadline = performance.now() + this.requestTimeoutMs;
    let unservedSince: number | undefined;
    for (;;) {
      const left = Math.ceil(deadline - performance.now());
      try {
        const reply = await call(this.ctx.nc, Subjects.tlibRequest(this.location, request.ThisDN!), TlibRpc, message, { timeoutMs: Math.min(TlibAttemptMs, left) });
        // Signaling built the events from the model; the envelope check found each one named.
        const events = reply.events as TEvent[];
        return { result: events.some((e) => e.event === 'EventError') ? 'error' : 'ok', events };
      } catch (err) {
        // The request or its reply may have been lost on a NATS server that failed: same id again.
        if (err instanceof RpcTimeout && deadline - performance.now() >= 1) continue;
        // Nobody subscribed: signaling's connection may be moving to another NATS server (a failover
        // takes it well under a second); asked again for a while, then answered 58.
        if (err instanceof RpcNoResponders) {
          unservedSince ??= performance.now();
          if (performance.now() - unservedSince < NoSignalingRetryMs && deadline - performance.now() > NoSignalingPauseMs) {
            await new Promise((r) => setTimeout(r, NoSignalingPauseMs));
            continue;
          }
        }
        return this.failed(err instanceof RpcTimeout ? new RpcTimeout(err.subject, this.requestTimeoutMs) : (err as Error), request);
      }
    }
  }

  private failed(err: Error, request: TRequest): Outcome {
    const attributes = { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN };
    if (err instanceof RpcNoResponders) {
      return { result: 'unavailable', events: [errorEvent(ErrorCodes.OutOfService, 'Out of service: no signaling service answers for this site', attributes)] };
    }
    if (err instanceof RpcTimeout) {
      return { result: 'timeout', events: [errorEvent(ErrorCodes.Timeout, `Timeout: signaling did not answer ${request.request} within ${err.timeoutMs} ms`, attributes)] };
    }
    if (err instanceof RpcBadReply) {
      this.ctx.log.error({ request: request.request, err: err.problem }, 'malformed reply from signaling');
      return { result: 'error', events: [errorEvent(ErrorCodes.UnknownError, 'Unknown error: malformed reply from signaling', attributes)] };
    }
    // The connection closed or is draining (RpcRequestFailed, said in nats.js's words), or signaling's handler threw.
    const reason = err instanceof RpcRequestFailed ? (err.cause as Error).message : err.message;
    this.ctx.log.warn({ request: request.request, err: reason }, 'T-Library request over NATS failed');
    return { result: 'unavailable', events: [errorEvent(ErrorCodes.OutOfService, `Out of service: ${reason}`, attributes)] };
  }

  private answer(client: ClientConnection, request: string, result: string, events: TEvent[], started?: number): void {
    for (const event of events) {
      if (client.sendEvent(event)) this.metrics.events.inc({ result: 'delivered' });
      else this.metrics.events.inc({ result: 'dropped' });
    }
    this.metrics.requests.inc({ request, result });
    // Inside a request's span (handleRequest): its answer.
    const span = trace.getActiveSpan();
    if (span) recordAnswer(span, events);
    if (started !== undefined) this.metrics.requestDuration.observe({ request }, (performance.now() - started) / 1000);
  }

  /** An event from signaling for `dn`, to every client of ours registered on it. */
  private deliver(dn: string, msg: Msg): void {
    const entry = this.dns.get(dn);
    if (!entry) return;
    let message: TlibEventMessage;
    try {
      // Signaling built the event from the model; the envelope check found it named.
      message = decodeChecked(msg.data, isEventMessage) as TlibEventMessage;
    } catch (err) {
      this.ctx.log.warn({ dn, err: (err as Error).message }, 'malformed T-Library event on NATS ignored');
      return;
    }
    const { event } = message;
    const originClient = message.origin?.gateway === this.ctx.instance ? message.origin.client : undefined;
    const full = Buffer.from(JSON.stringify(event));
    // The ReferenceID belongs to the client that asked; the others get the event without it
    // (encoded only when such a client is there).
    let withoutReference: Buffer | undefined = event.ReferenceID === undefined ? full : undefined;
    let delivered = 0;
    let dropped = 0;
    for (const client of entry.clients) {
      const frame = client.id === originClient ? full : (withoutReference ??= Buffer.from(JSON.stringify({ ...event, ReferenceID: undefined })));
      if (client.send(frame)) delivered++;
      else dropped++;
    }
    if (delivered) this.metrics.events.inc({ result: 'delivered' }, delivered);
    if (dropped) this.metrics.events.inc({ result: 'dropped' }, dropped);
  }

  /** The client registered `dn`: the first client on a DN subscribes this gateway to its events. */
  private addRegistration(client: ClientConnection, dn: string): void {
    client.registered.add(dn);
    let entry = this.dns.get(dn);
    if (!entry) {
      const sub = this.ctx.nc.subscribe(Subjects.tlibEvent(this.location, dn), {
        callback: (err, msg) => {
          if (err) this.ctx.log.warn({ dn, err: err.message }, 'event subscription failed');
          else this.deliver(dn, msg);
        },
      });
      entry = { sub, clients: new Set() };
      this.dns.set(dn, entry);
    }
    entry.clients.add(client);
  }

  /** The last client on a DN gone, this gateway stops taking its events. */
  private removeRegistration(client: ClientConnection, dn: string): void {
    client.registered.delete(dn);
    const entry = this.dns.get(dn);
    if (!entry) return;
    entry.clients.delete(client);
    if (entry.clients.size === 0) {
      entry.sub.unsubscribe();
      this.dns.delete(dn);
    }
  }

  /**
   * Signaling keeps the registrations of every connection; a closed connection's end there by
   * an UnregisterAddress in its name (fire and forget: nobody is left to read the answer).
   */
  private forgetRegistration(client: ClientConnection, dn: string): void {
    const message: TlibRequestMessage = { request: { request: 'UnregisterAddress', ReferenceID: 0, ThisDN: dn }, origin: this.origin(client) };
    try {
      notify(this.ctx.nc, Subjects.tlibRequest(this.location, dn), TlibRpc, message);
    } catch (err) {
      this.ctx.log.debug({ dn, err: (err as Error).message }, 'could not tell signaling a client is gone');
    }
  }

  private beat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        this.ctx.log.info({ client: client.id }, 'client missed a heartbeat; cut off');
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }

  private announce(gone: boolean): void {
    const message: TlibGatewayAlive = { gateway: this.ctx.instance, intervalMs: this.aliveIntervalMs, links: this.links, ...(gone ? { gone } : {}) };
    try {
      this.ctx.nc.publish(Subjects.tlibGatewayAlive(this.location, this.ctx.instance), encodeJson(message));
    } catch (err) {
      // A closed connection: signaling forgets this gateway after three missed announcements.
      this.ctx.log.warn({ err: (err as Error).message }, 'gateway liveness not announced');
    }
  }
}

function refuse(socket: Duplex, status: number, text: string, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\nconnection: close\r\n${status === 401 ? 'www-authenticate: Bearer\r\n' : ''}\r\n${reason}\n`);
}
