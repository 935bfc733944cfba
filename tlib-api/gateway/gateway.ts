/**
 * The T-Library WebSocket gateway. Stateless apart from its own clients: any number of replicas
 * can run, each subscribing on NATS only to the event subjects of the DNs its clients registered.
 *
 *   client --ws--> gateway --NATS request tlib.req.<ThisDN>--> signaling  (reply: events at once)
 *   signaling --NATS tlib.evt.<dn>--> every gateway with a client on <dn> --ws--> those clients
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { errors as natsErrors, type Msg, type Subscription } from '@nats-io/transport-node';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { decodeJson, encodeJson } from '../../common/nats/codec.js';
import { Subjects } from '../../common/nats/subjects.js';
import { injectTrace } from '../../common/nats/trace.js';
import type { TlibEventMessage, TlibGatewayAlive, TlibOrigin, TlibReplyMessage, TlibRequestMessage } from '../../common/nats/tlib-contract.js';
import type { ComponentContext } from '../../common/process/component.js';
import type { Component } from '../../common/process/lifecycle.js';
import { parseHostPort } from '../../common/process/http.js';
import { ErrorCodes, errorEvent } from '../../common/tlib/errors.js';
import type { TEvent, TRequest } from '../../common/tlib/messages.js';
import { pageHandler, staticDir } from '../page/serve.js';
import { TokenFile } from './token-file.js';
import { authenticate, bearerToken, mayUse, type JwtKeys, type Principal } from './auth.js';
import { ClientConnection, CloseCodes } from './client-connection.js';
import { gatewayMetrics } from './metrics.js';
import { parseFrame } from './protocol.js';

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
  /** Largest frame accepted from a client. */
  maxFrameBytes?: number;
  /** How often the gateway tells signaling it is alive (signaling forgets a gateway silent for three). */
  aliveIntervalMs?: number;
  /** A YAML file of agent tokens (the Secret of spec.gateway.tokensSecret), besides spec.gateway.tokens. */
  tokenFile?: string;
}

export interface Gateway extends Component {
  /** http://host:port (the agent page); the WebSocket endpoint is `${url}/tlib` with ws:. */
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

export async function createGateway(ctx: ComponentContext, options: GatewayOptions = {}): Promise<Gateway> {
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const jwtKeys = options.jwtKeys ?? {};
  const log = ctx.log;
  const tokenFile = options.tokenFile ? new TokenFile(options.tokenFile, log) : undefined;
  const clients = new Set<ClientConnection>();
  const dns = new Map<string, DnEntry>();
  const metrics = gatewayMetrics(ctx.registry, { clients: () => clients.size, registeredDns: () => dns.size });
  let stopping = false;

  const origin = (client: ClientConnection): TlibOrigin => ({ gateway: ctx.instance, client: client.id });

  const deliver = (dn: string, msg: Msg) => {
    const entry = dns.get(dn);
    if (!entry) return;
    let message: TlibEventMessage;
    try {
      message = decodeJson(msg.data) as TlibEventMessage;
      if (typeof message?.event?.event !== 'string') throw new Error('no event');
    } catch (err) {
      log.warn({ dn, err: (err as Error).message }, 'malformed T-Library event on NATS ignored');
      return;
    }
    const { event } = message;
    const originClient = message.origin?.gateway === ctx.instance ? message.origin.client : undefined;
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
    if (delivered) metrics.events.inc({ result: 'delivered' }, delivered);
    if (dropped) metrics.events.inc({ result: 'dropped' }, dropped);
  };

  const addRegistration = (client: ClientConnection, dn: string) => {
    client.registered.add(dn);
    let entry = dns.get(dn);
    if (!entry) {
      const sub = ctx.nc.subscribe(Subjects.tlibEvent(ctx.config.cluster.spec.location, dn), {
        callback: (err, msg) => {
          if (err) log.warn({ dn, err: err.message }, 'event subscription failed');
          else deliver(dn, msg);
        },
      });
      entry = { sub, clients: new Set() };
      dns.set(dn, entry);
    }
    entry.clients.add(client);
  };

  const removeRegistration = (client: ClientConnection, dn: string) => {
    client.registered.delete(dn);
    const entry = dns.get(dn);
    if (!entry) return;
    entry.clients.delete(client);
    if (entry.clients.size === 0) {
      entry.sub.unsubscribe();
      dns.delete(dn);
    }
  };

  /**
   * Signaling keeps the registrations of every connection; a closed connection's end there by
   * an UnregisterAddress in its name (fire and forget: nobody is left to read the answer).
   */
  const forgetRegistration = (client: ClientConnection, dn: string) => {
    const body: TlibRequestMessage = { request: { request: 'UnregisterAddress', ReferenceID: 0, ThisDN: dn }, origin: origin(client) };
    try {
      ctx.nc.publish(Subjects.tlibRequest(ctx.config.cluster.spec.location, dn), encodeJson(body), { headers: injectTrace() });
    } catch (err) {
      log.debug({ dn, err: (err as Error).message }, 'could not tell signaling a client is gone');
    }
  };

  const answer = (client: ClientConnection, request: string, result: string, events: TEvent[], started?: number) => {
    for (const event of events) {
      if (client.sendEvent(event)) metrics.events.inc({ result: 'delivered' });
      else metrics.events.inc({ result: 'dropped' });
    }
    metrics.requests.inc({ request, result });
    if (started !== undefined) metrics.requestDuration.observe({ request }, (performance.now() - started) / 1000);
  };

  /** NATS round trip to signaling; failures become the EventError the client gets. */
  const forward = async (client: ClientConnection, request: TRequest): Promise<{ result: string; events: TEvent[] }> => {
    const thisDN = request.ThisDN!;
    const subject = Subjects.tlibRequest(ctx.config.cluster.spec.location, thisDN);
    const body: TlibRequestMessage = { request, origin: origin(client) };
    let reply: Msg;
    try {
      reply = await ctx.nc.request(subject, encodeJson(body), { timeout: requestTimeoutMs, headers: injectTrace() });
    } catch (err) {
      if (err instanceof natsErrors.RequestError && err.isNoResponders()) {
        return { result: 'unavailable', events: [errorEvent(ErrorCodes.OutOfService, 'Out of service: no signaling service answers for this site', { ReferenceID: request.ReferenceID, ThisDN: thisDN })] };
      }
      if (err instanceof natsErrors.TimeoutError) {
        return { result: 'timeout', events: [errorEvent(ErrorCodes.Timeout, `Timeout: signaling did not answer ${request.request} within ${requestTimeoutMs} ms`, { ReferenceID: request.ReferenceID, ThisDN: thisDN })] };
      }
      log.warn({ request: request.request, err: (err as Error).message }, 'T-Library request over NATS failed');
      return { result: 'unavailable', events: [errorEvent(ErrorCodes.OutOfService, `Out of service: ${(err as Error).message}`, { ReferenceID: request.ReferenceID, ThisDN: thisDN })] };
    }
    let message: TlibReplyMessage;
    try {
      message = decodeJson(reply.data) as TlibReplyMessage;
      if (!Array.isArray(message?.events) || !message.events.every((e) => typeof e?.event === 'string')) throw new Error('no events array');
    } catch (err) {
      log.error({ request: request.request, err: (err as Error).message }, 'malformed reply from signaling');
      return { result: 'error', events: [errorEvent(ErrorCodes.UnknownError, 'Unknown error: malformed reply from signaling', { ReferenceID: request.ReferenceID, ThisDN: thisDN })] };
    }
    const failed = message.events.some((e) => e.event === 'EventError');
    return { result: failed ? 'error' : 'ok', events: message.events };
  };

  const handleRequest = async (client: ClientConnection, request: TRequest) => {
    const started = performance.now();
    const thisDN = request.ThisDN!;
    const name = request.request;
    if (!mayUse(client.principal, thisDN)) {
      answer(client, name, 'forbidden', [errorEvent(ErrorCodes.InvalidAttribute, `ThisDN ${thisDN} is not allowed for this client's token`, { ReferenceID: request.ReferenceID, ThisDN: thisDN })]);
      return;
    }
    if (name === 'RegisterAddress') {
      const wasRegistered = client.registered.has(thisDN);
      // Subscribe before asking signaling, so no event between its answer and our subscription is lost.
      addRegistration(client, thisDN);
      const { result, events } = await forward(client, request);
      if (result !== 'ok' && !wasRegistered && client.registered.has(thisDN)) removeRegistration(client, thisDN);
      answer(client, name, result, events, started);
      return;
    }
    if (!client.registered.has(thisDN)) {
      answer(client, name, 'error', [errorEvent(ErrorCodes.NotRegistered, `DN ${thisDN} is not registered by this client: send RegisterAddress first`, { ReferenceID: request.ReferenceID, ThisDN: thisDN })]);
      return;
    }
    if (name === 'UnregisterAddress') removeRegistration(client, thisDN);
    const { result, events } = await forward(client, request);
    answer(client, name, result, events, started);
  };

  const onFrame = (client: ClientConnection, data: RawData, isBinary: boolean) => {
    if (isBinary) {
      answer(client, 'invalid', 'invalid', [errorEvent(ErrorCodes.InvalidAttribute, 'malformed frame: binary frames are not accepted, send JSON text')]);
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const parsed = parseFrame(text);
    if (!parsed.ok) {
      answer(client, 'invalid', 'invalid', [parsed.error]);
      return;
    }
    handleRequest(client, parsed.request).catch((err: Error) => {
      log.error({ err: err.stack }, 'request handling failed');
      answer(client, parsed.request.request, 'error', [errorEvent(ErrorCodes.UnknownError, `Unknown error: ${err.message}`, { ReferenceID: parsed.request.ReferenceID })]);
    });
  };

  const onDrop = (client: ClientConnection, reason: string) => {
    log.warn({ client: client.id, name: client.principal.name, reason }, 'client dropped');
  };

  const onConnection = (ws: WebSocket, principal: Principal) => {
    const client = new ClientConnection(ws, principal, maxQueuedBytes, onDrop);
    clients.add(client);
    log.debug({ client: client.id, name: principal.name }, 'client connected');
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data, isBinary) => onFrame(client, data, isBinary));
    ws.on('error', (err) => log.debug({ client: client.id, err: err.message }, 'client socket error'));
    ws.on('close', () => {
      clients.delete(client);
      for (const dn of [...client.registered]) {
        removeRegistration(client, dn);
        forgetRegistration(client, dn);
      }
      log.debug({ client: client.id }, 'client disconnected');
    });
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes ?? 64 * 1024 });
  const pageDir = staticDir();
  if (!pageDir) log.warn('agent page files not found (set HUDDLE_PAGE_DIR); / answers 404');
  const page = pageHandler(pageDir);
  const server = http.createServer(page);

  const refuse = (socket: Duplex, status: number, text: string, reason: string) => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\nconnection: close\r\n${status === 401 ? 'www-authenticate: Bearer\r\n' : ''}\r\n${reason}\n`);
  };

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const pathname = new URL(req.url ?? '/', 'http://gateway').pathname;
    if (pathname !== '/tlib') return refuse(socket, 404, 'Not Found', 'the T-Library endpoint is /tlib');
    if (stopping) return refuse(socket, 503, 'Service Unavailable', 'gateway stopping');
    authenticate(bearerToken(req), ctx.config.cluster.spec.gateway, jwtKeys, tokenFile?.tokens())
      .then((auth) => {
        if (!auth.ok) {
          log.info({ reason: auth.reason, from: req.socket.remoteAddress }, 'client refused');
          return refuse(socket, 401, 'Unauthorized', auth.reason);
        }
        wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, auth.principal));
      })
      .catch((err: Error) => refuse(socket, 500, 'Internal Server Error', err.message));
  });

  const heartbeat = setInterval(() => {
    for (const client of clients) {
      if (!client.alive) {
        log.info({ client: client.id }, 'client missed a heartbeat; cut off');
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  const aliveSubject = Subjects.tlibGatewayAlive(ctx.config.cluster.spec.location, ctx.instance);
  const announce = (gone: boolean) => {
    const message: TlibGatewayAlive = { gateway: ctx.instance, intervalMs: options.aliveIntervalMs ?? 5000, ...(gone ? { gone } : {}) };
    try {
      ctx.nc.publish(aliveSubject, encodeJson(message));
    } catch (err) {
      // A closed connection: signaling forgets this gateway after three missed announcements.
      log.warn({ err: (err as Error).message }, 'gateway liveness not announced');
    }
  };
  announce(false);
  const alive = setInterval(() => announce(false), options.aliveIntervalMs ?? 5000);
  alive.unref();

  const { host, port } = parseHostPort(options.listen ?? ctx.config.cluster.spec.gateway.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostPort = `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  ctx.addReadiness('listening', () => (stopping ? 'stopping' : server.listening));
  log.info({ listen: hostPort }, 'T-Library gateway listening');

  return {
    name: 'tlib-gateway',
    url: `http://${hostPort}`,
    wsUrl: `ws://${hostPort}/tlib`,
    endpoints: [`T-Library  ws://${hostPort}/tlib`, `Agent page http://${hostPort}/`],
    clientCount: () => clients.size,
    stop: async () => {
      stopping = true;
      clearInterval(heartbeat);
      clearInterval(alive);
      const closed = [...clients].map((c) => new Promise<void>((resolve) => (c.ws.readyState === c.ws.CLOSED ? resolve() : c.ws.once('close', () => resolve()))));
      for (const client of clients) client.close(CloseCodes.stopping, 'gateway stopping');
      await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 2000).unref())]);
      for (const client of clients) client.ws.terminate();
      for (const entry of dns.values()) entry.sub.unsubscribe();
      dns.clear();
      announce(true);
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
