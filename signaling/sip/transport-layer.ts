/**
 * The transport layer (RFC 3261 §18): binds the UDP/TCP/TLS/WebSocket transports, parses what they receive and
 * hands it up, answers what cannot be parsed, stamps where a request really came from, and puts
 * messages on the wire. It also names us (Via, Contact) and picks the next hop of a request.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import type { Logger } from 'pino';
import { splitList } from './grammar.js';
import { formatVia, parseNameAddr } from './headers.js';
import { localResponse, SipRequest, type SipResponse } from './message.js';
import type { SipMetrics } from './metrics.js';
import { DEFAULT_LIMITS, parseMessage, type ParseLimits, type ParseResult } from './parser.js';
import { ConnectionMetrics } from './transport/connection-limits.js';
import { SourceRateLimiter } from './rate-limit.js';
import { TcpTransport } from './transport/tcp.js';
import { TlsTransport } from './transport/tls.js';
import type { Endpoint, Transport, TransportHandler, TransportProtocol } from './transport/transport.js';
import { UdpTransport } from './transport/udp.js';
import { WsTransport } from './transport/ws.js';
import type { ListenAddress, SipStackOptions } from './types.js';
import { parseUri, socketHost } from './uri.js';
import { newBranch } from './util.js';

/** Where the transport layer delivers parsed messages (the transaction layer). */
export interface TransportUser {
  receiveRequest(req: SipRequest, source: Endpoint, transport: Transport): void;
  receiveResponse(res: SipResponse): void;
}

export interface Routing {
  /** Request-URI (the hop when there is no route set). */
  uri: string;
  routeSet: readonly string[];
  destination?: Endpoint | undefined;
  /** Transport to prefer when the URI names none (a dialog's own). */
  transport?: Transport;
}

/** The next hop of a request and the transport that reaches it. */
export interface Hop {
  dest: Endpoint;
  transport: Transport;
}

export class TransportLayer implements TransportHandler {
  private readonly transports: Transport[] = [];
  private readonly limits: ParseLimits;
  private readonly advertisedHosts = new Map<Transport, string>();
  private bound: ListenAddress[] = [];
  private readonly rateLimiter: SourceRateLimiter | undefined;
  /** Set by listen(), before any transport can deliver a message. */
  private user!: TransportUser;
  private readonly flowClosedHandlers: ((flow: Endpoint) => void)[] = [];
  /** Every SIP message logged (debug level): decided once, so the hot path pays one test. */
  private readonly logMessages: boolean;

  constructor(
    private readonly opts: SipStackOptions,
    private readonly metrics: SipMetrics,
    private readonly log: Logger | undefined,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.logMessages = log?.isLevelEnabled('debug') ?? false;
    if (opts.rateLimit) {
      this.rateLimiter = new SourceRateLimiter(opts.rateLimit);
      metrics.watchRateLimiter(this.rateLimiter);
    }
  }

  /** Binds every listen address; from then on messages go to `user`. */
  async listen(user: TransportUser): Promise<void> {
    this.user = user;
    const connectionMetrics = new ConnectionMetrics(this.metrics.registry);
    for (const l of this.opts.listen) {
      let t = this.createTransport(l, connectionMetrics);
      if (this.opts.wrapTransport) t = this.opts.wrapTransport(t);
      t.setHandler(this);
      await t.listen();
      this.transports.push(t);
    }
    this.bound = this.transports.map((t) => ({ transport: t.protocol as ListenAddress['transport'], host: t.host, port: t.port }));
  }

  private createTransport(l: ListenAddress, metrics: ConnectionMetrics): Transport {
    if (l.transport === 'udp') return new UdpTransport({ host: l.host, port: l.port, ...(this.opts.recvBufferSize ? { recvBufferSize: this.opts.recvBufferSize } : {}) });
    const stream = {
      host: l.host,
      port: l.port,
      limits: this.limits,
      metrics,
      connectionLimits: { ...this.opts.connections, ...(this.opts.tcpIdleTimeoutMs ? { idleTimeoutMs: this.opts.tcpIdleTimeoutMs } : {}) },
    };
    if (l.transport === 'tcp') return new TcpTransport(stream);
    const tls = this.opts.tls;
    const onCertificateError = (err: Error) => this.log?.error({ err: err.message }, 'rotated TLS certificate not loaded; the previous one stays in use');
    if (l.transport === 'ws') return new WsTransport('ws', stream);
    // wss uses the certificate of SIP over TLS: one name, one Secret, for both.
    if (l.transport === 'wss') return new WsTransport('wss', { ...stream, ...(tls ? { tls: { ...tls, onCertificateError } } : {}) });
    if (!tls) throw new Error(`listen ${l.host}:${l.port} is tls but no certificate is configured (tls.certFile, tls.keyFile)`);
    return new TlsTransport({ ...stream, ...tls, onCertificateError });
  }

  get addresses(): readonly ListenAddress[] {
    return this.bound;
  }

  /** `handler` hears of each flow a peer opened and that closed (TransportHandler.onFlowClosed). */
  watchFlows(handler: (flow: Endpoint) => void): void {
    this.flowClosedHandlers.push(handler);
  }

  /** The first listen address: our default Contact, From and Call-ID host. */
  get primary(): Transport {
    return this.transports[0]!;
  }

  has(protocol: TransportProtocol): boolean {
    return this.transports.some((x) => x.protocol === protocol);
  }

  transportFor(protocol: TransportProtocol): Transport {
    const t = this.transports.find((x) => x.protocol === protocol);
    if (!t) throw new Error(`no ${protocol} transport is listening`);
    return t;
  }

  /** The host peers reach us at through `t`, as written in Via and Contact. */
  advertised(t: Transport): string {
    let cached = this.advertisedHosts.get(t);
    if (cached === undefined) {
      cached = this.computeAdvertised(t);
      this.advertisedHosts.set(t, cached);
    }
    return cached;
  }

  private computeAdvertised(t: Transport): string {
    let h = this.opts.advertisedHost ?? t.host;
    // A wildcard bind says nothing a peer can reach: use the first external address instead.
    if (h === '0.0.0.0' || h === '::') h = firstExternalAddress(h === '::' ? 'IPv6' : 'IPv4') ?? (h === '::' ? '::1' : '127.0.0.1');
    return net.isIPv6(h) ? '[' + h + ']' : h;
  }

  contact(user = 'huddle', transport?: TransportProtocol): string {
    const t = transport ? this.transportFor(transport) : this.primary;
    const edge = this.opts.contactAddress;
    const hostPort = edge ? (net.isIPv6(edge.host) ? '[' + edge.host + ']' : edge.host) + ':' + edge.port : this.advertised(t) + ':' + t.port;
    return 'sip:' + user + '@' + hostPort + (t.protocol === 'udp' ? '' : ';transport=' + t.protocol);
  }

  /** Our Via, asking for rport (RFC 3581) so NAT in front of us still gets responses back. */
  addVia(req: SipRequest, transport: Transport, branch = newBranch()): void {
    req.prepend('Via', 'SIP/2.0/' + transport.protocol.toUpperCase() + ' ' + this.advertised(transport) + ':' + transport.port + ';branch=' + branch + ';rport');
  }

  /** The next hop: the explicit destination, else the first Route, else the outbound proxy, else the Request-URI (§8.1.2). */
  async resolve(routing: Routing): Promise<Hop> {
    if (routing.destination) return { dest: routing.destination, transport: this.transportFor(routing.destination.protocol) };
    const proxy = this.opts.outboundProxy;
    if (proxy && routing.routeSet.length === 0) return { dest: proxy, transport: this.transportFor(proxy.protocol) };
    const hop = routing.routeSet.length > 0 ? parseNameAddr(routing.routeSet[0]!).uri : routing.uri;
    const uri = parseUri(hop);
    if (uri.scheme === 'tel') throw new Error('a tel: URI needs an explicit destination');
    // RFC 3261 §26.2.2: a sips: URI is reached over TLS (RFC 5630: hop by hop, as every proxy does).
    const protocol = (uri.params.transport?.toLowerCase() ?? (uri.scheme === 'sips' ? 'tls' : undefined) ?? routing.transport?.protocol ?? 'udp') as TransportProtocol;
    const transport = this.transportFor(protocol);
    const host = socketHost(uri.host);
    // dns.lookup follows /etc/hosts and the system resolver; SRV/NAPTR (RFC 3263) is not done.
    const ip = net.isIP(host) ? host : (await lookup(host)).address;
    return { dest: { protocol, host: ip, port: uri.port ?? (uri.scheme === 'sips' ? 5061 : 5060) }, transport };
  }

  // ---- sending -------------------------------------------------------------------------------

  /** Serializes and sends `msg` (`retransmission` is counted in metrics); returns the bytes sent. */
  send(msg: SipRequest | SipResponse, dest: Endpoint, transport: Transport, retransmission: boolean, onError?: (err: Error) => void): Buffer {
    if (retransmission) this.metrics.retransmission('out', msg instanceof SipRequest ? msg.method : msg.cseq.method);
    else if (msg instanceof SipRequest) this.metrics.request('out', msg.method);
    else this.metrics.response('out', msg.cseq.method, msg.status);
    const bytes = msg.toBuffer();
    transport.send(bytes, dest, onError);
    if (this.logMessages) this.log!.debug({ ...sipSummary(msg), to: `${dest.host}:${dest.port}`, transport: transport.protocol, retransmission }, 'SIP sent');
    return bytes;
  }

  /** Sends a response again from its wire form kept as a latin1 string. */
  resend(wire: string, method: string, dest: Endpoint, transport: Transport): void {
    this.metrics.retransmission('out', method);
    transport.send(Buffer.from(wire, 'latin1'), dest);
  }

  // ---- receiving -----------------------------------------------------------------------------

  onMessage(data: Buffer, source: Endpoint, transport: Transport): void {
    if (this.rateLimiter && this.refusedByRate(this.rateLimiter, data, source, transport)) return;
    const r = parseMessage(data, this.limits, transport.reliable && !transport.framesMessages);
    if (!r.ok) {
      this.metrics.parseError(transport.protocol);
      this.log?.debug({ status: r.status, reason: r.reason, source }, 'rejected malformed SIP message');
      if (!r.isResponse) this.answerMalformed(r, source, transport);
      transport.discard?.(source);
      return;
    }
    const msg = r.message;
    if (this.logMessages) this.log!.debug({ ...sipSummary(msg), from: `${source.host}:${source.port}`, transport: transport.protocol }, 'SIP received');
    try {
      if (msg instanceof SipRequest) {
        stampVia(msg, source);
        this.user.receiveRequest(msg, source, transport);
      } else this.user.receiveResponse(msg);
    } catch (err) {
      // A TU bug must not take the socket loop down; the peer sees a 500 when it was a request.
      this.log?.error({ err }, 'error handling SIP message');
      if (msg instanceof SipRequest && msg.method !== 'ACK') transport.send(localResponse(500, 'Server Internal Error', msg).toBuffer(), source);
    }
  }

  /** The pike check, before any parsing: a blocked source costs a table lookup. */
  private refusedByRate(limiter: SourceRateLimiter, data: Buffer, source: Endpoint, transport: Transport): boolean {
    // A response starts with "SIP/" (RFC 3261 §7.2); anything else is counted as a request.
    const isRequest = !(data[0] === 0x53 && data[1] === 0x49 && data[2] === 0x50 && data[3] === 0x2f);
    const verdict = limiter.admit(source.host, isRequest, Date.now());
    if (!verdict.blocked) return false;
    if (verdict.banStarted) this.log?.warn({ source: source.host, banMs: verdict.retryAfterMs }, 'SIP source over its request rate: blocked');
    if (this.opts.rateLimit?.action === 'reject' && isRequest) this.answerRateLimited(data, verdict.retryAfterMs, source, transport);
    return true;
  }

  /** 503 with Retry-After (RFC 3261 §21.5.4) and a Reason (RFC 3326) saying why; never to an ACK. */
  private answerRateLimited(data: Buffer, retryAfterMs: number, source: Endpoint, transport: Transport): void {
    const r = parseMessage(data, this.limits, transport.reliable && !transport.framesMessages);
    const req = r.ok ? (r.message instanceof SipRequest ? r.message : undefined) : r.request;
    if (!req || req.method === 'ACK') return;
    const res = localResponse(503, 'Service Unavailable', req);
    res.set('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
    res.set('Reason', 'SIP;cause=503;text="request rate of this source over the limit"');
    this.metrics.response('out', req.method, 503);
    transport.send(res.toBuffer(), source);
  }

  onFlowClosed(flow: Endpoint): void {
    for (const h of this.flowClosedHandlers) h(flow);
  }

  onFramingError(status: number, reason: string, head: Buffer, source: Endpoint, transport: Transport): void {
    this.metrics.parseError(transport.protocol);
    const r = parseMessage(head, { ...this.limits, maxMessageBytes: Number.MAX_SAFE_INTEGER }, true);
    const partial = r.ok ? (r.message instanceof SipRequest ? r.message : undefined) : r.request;
    if (r.ok && !partial) return;
    this.answerMalformed({ ok: false, status, reason, isResponse: false, ...(partial ? { request: partial } : {}) }, source, transport);
  }

  private answerMalformed(r: Extract<ParseResult, { ok: false }>, source: Endpoint, transport: Transport): void {
    if (r.request?.method === 'ACK') return;
    const res = localResponse(r.status, r.reason, r.request);
    this.metrics.response('out', r.request?.method ?? 'UNKNOWN', r.status);
    transport.send(res.toBuffer(), source);
  }

  async close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

/** §18.2.1 and RFC 3581: record where the request really came from in the top Via. */
function stampVia(req: SipRequest, source: Endpoint): void {
  const via = req.via;
  const rport = via.params.rport !== undefined;
  if (!rport && via.host === source.host) return;
  via.params.received = source.host;
  if (rport) via.params.rport = String(source.port);
  const idx = req.headers.findIndex((h) => h.key === 'via');
  const h = req.headers[idx]!;
  if (h.value.indexOf(',') < 0) h.value = formatVia(via);
  else h.value = [formatVia(via), ...splitList(h.value).slice(1)].join(', ');
}

/** §18.2.2: where responses to this request go. */
export function responseDestination(req: SipRequest, source: Endpoint, transport: Transport): Endpoint {
  if (transport.reliable) return source;
  const via = req.via;
  if (via.params.rport) return source;
  const host = via.params.received ?? (net.isIP(socketHost(via.host)) ? socketHost(via.host) : source.host);
  const port = via.port ?? 5060;
  // The usual case (sent-by is where it came from): share the source rather than keep a copy for 64*T1.
  return host === source.host && port === source.port ? source : { protocol: source.protocol, host, port };
}

function firstExternalAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === family && !a.internal) return a.address;
  }
  return undefined;
}

/** What a SIP log line says of a message: method or status, CSeq, Call-ID. */
function sipSummary(msg: SipRequest | SipResponse): Record<string, string | number> {
  return msg instanceof SipRequest
    ? { method: msg.method, cseq: msg.cseq.seq, callId: msg.callId }
    : { status: msg.status, method: msg.cseq.method, cseq: msg.cseq.seq, callId: msg.callId };
}
