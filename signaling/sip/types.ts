/** The public shapes of the SIP stack facade (see README.md). Everything else in signaling/sip is internal. */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from './clock.js';
import type { Credentials } from './digest.js';
import type { SipRequest, SipResponse } from './message.js';
import type { ParseLimits } from './parser.js';
import type { ConnectionLimits } from './transport/connection-limits.js';
import type { RateLimitOptions } from './rate-limit.js';
import type { Endpoint, Transport, TransportProtocol } from './transport/transport.js';

export interface ListenAddress {
  transport: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  host: string;
  /** 0 picks a free port; read the bound one from SipStack.addresses. */
  port: number;
}

export interface SipStackOptions {
  listen: ListenAddress[];
  /** Host written into Via and Contact when it differs from the listen host (NAT, Kubernetes Service). */
  advertisedHost?: string;
  /**
   * Behind a SIP edge (a proxy such as Kamailio in front of several replicas): our Contact names
   * the edge, so that peers reach the dialog through it whichever replica handles it. Via keeps
   * our own address: responses come back to us.
   */
  contactAddress?: { host: string; port: number };
  /** Next hop of requests that have neither a destination nor a route set (the edge, RFC 3261 §8.1.2 outbound proxy). */
  outboundProxy?: Endpoint;
  /** Behind the SIP edge: the token its source header must carry to be believed (common/edge). */
  edgeSourceToken?: string;
  /** UDP SO_RCVBUF in bytes (default 4 MiB). */
  recvBufferSize?: number;
  /** RFC 3261 T1/T2/T4 (defaults 500/4000/5000 ms), as in SipCluster spec.sip.timers. */
  timers?: { t1Ms?: number; t2Ms?: number; t4Ms?: number };
  /** Metrics go here (a private registry when absent). */
  registry?: Registry;
  logger?: Logger;
  clock?: Clock;
  /** User-Agent / Server header value; none when absent. */
  userAgent?: string;
  limits?: Partial<ParseLimits>;
  /** Idle timeout of TCP/TLS connections, counted from the last complete message (default 10 min). */
  tcpIdleTimeoutMs?: number;
  /** Caps and deadlines of accepted TCP/TLS/WebSocket connections (defaults in DEFAULT_CONNECTION_LIMITS). */
  connections?: Partial<Omit<ConnectionLimits, 'idleTimeoutMs'>>;
  /** Our certificate for `tls` and `wss` listen addresses, and the CAs we trust when we open TLS connections. */
  tls?: TlsOptions;
  /** Per-source request rate limit (pike); none when absent. */
  rateLimit?: RateLimitOptions;
  /** Wraps each transport after creation (tests use it to drop packets). */
  wrapTransport?: (t: Transport) => Transport;
}

export interface TlsOptions {
  /** PEM certificate (chain) and key files, e.g. a Kubernetes TLS Secret's tls.crt and tls.key. */
  certFile: string;
  keyFile: string;
  /** How often the files are checked for a rotation (default 10 s). */
  reloadMs?: number;
  /** PEM CAs trusted for connections we open, besides the system's. */
  ca?: string | Buffer;
}

/** Extra headers: a record (array value = several header lines) or ordered pairs. */
export type HeaderInit = Record<string, string | string[]> | [string, string][];

export interface BodyOptions {
  headers?: HeaderInit;
  body?: Buffer | string;
  /** Content-Type of the body (default application/sdp when a body is given). */
  contentType?: string;
}

export interface ResponseOptions extends BodyOptions {
  reason?: string;
  /** Contact URI for dialog-creating responses (default: the stack's own contact on the receiving transport). */
  contact?: string;
}

export type TerminationCause = 'local-bye' | 'remote-bye' | 'no-ack' | 'timeout' | 'subscription-terminated' | 'closed';

export interface DialogTermination {
  cause: TerminationCause;
  /** The BYE (or final NOTIFY) that ended it, when it came from the peer. */
  request?: SipRequest;
}

export interface DialogRequestOptions extends BodyOptions {
  /** Send somewhere other than the route set / remote target (e.g. the flow a NATed phone registered from). */
  destination?: Endpoint;
  auth?: Credentials;
}

/**
 * What another process needs to carry a confirmed dialog on (SipStack.restoreDialog): its
 * identifiers, URIs, CSeq both ways, route set, remote target, transport and our Contact.
 */
export interface DialogState {
  role: 'uac' | 'uas';
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  routeSet: string[];
  localSeq: number;
  remoteSeq?: number;
  protocol: TransportProtocol;
  /** Where the dialog-creating request came from (the connection id is not kept: it dies with the process). */
  flow?: { protocol: TransportProtocol; host: string; port: number };
  contact: string;
}

/** An RFC 3261 dialog (INVITE or SUBSCRIBE usage), confirmed. */
export interface Dialog {
  readonly id: string;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** From/To name-addr text of this side and of the peer. */
  readonly localUri: string;
  readonly remoteUri: string;
  readonly remoteTarget: string;
  readonly routeSet: readonly string[];
  readonly role: 'uac' | 'uas';
  readonly state: 'confirmed' | 'terminated';
  /** The request that created the dialog (INVITE or SUBSCRIBE). */
  readonly initialRequest: SipRequest;
  /** Where the dialog-creating request came from (UAS side). */
  readonly flow?: Endpoint;
  /**
   * Sends an in-dialog request and resolves with its final response (a synthesized 408/503 on
   * timeout or transport failure). For INVITE (re-INVITE) the ACK is sent by the stack.
   * A re-INVITE while another INVITE is pending in this dialog resolves with a local 491.
   */
  request(method: string, opts?: DialogRequestOptions): Promise<SipResponse>;
  /** Sends BYE, ends the dialog. */
  bye(opts?: DialogRequestOptions): Promise<SipResponse>;
  /**
   * In-dialog requests other than BYE and ACK (re-INVITE, UPDATE, INFO, REFER, NOTIFY, OPTIONS, SUBSCRIBE).
   * Without a handler: OPTIONS/INFO/NOTIFY get 200, INVITE/UPDATE get 488, others 501.
   */
  onRequest(handler: (req: ServerRequest) => void): void;
  /** The ACK to our 2xx (UAS side): carries the answer when the offer was in the 2xx. */
  onAck(handler: (ack: SipRequest) => void): void;
  onTerminated(handler: (t: DialogTermination) => void): void;
  readonly terminated: Promise<DialogTermination>;
  /** Its state, for SipStack.restoreDialog in this or another process. */
  exportState(): DialogState;
  /** Ends the dialog here without sending anything (another process carries it on); onTerminated runs with cause 'closed'. */
  forget(): void;
}

/** A request received in a server transaction, out of dialog (SipStack.onRequest) or in a dialog (Dialog.onRequest). */
export interface ServerRequest {
  readonly message: SipRequest;
  readonly method: string;
  readonly source: Endpoint;
  /**
   * The phone's or trunk's own address: the source, or behind a SIP edge (outboundProxy set) the
   * address the edge received the request from, as the edge's EDGE_SOURCE_HEADER says.
   */
  readonly origin: Endpoint;
  /** Set for in-dialog requests. */
  readonly dialog?: Dialog;
  /** True once a CANCEL matched this INVITE (the stack has answered 487 already). */
  readonly canceled: boolean;
  /** Whether a final response was sent. */
  readonly answered: boolean;
  /** INVITE only: called when a CANCEL arrives before the final response; the stack answers 487. */
  onCancel(handler: (cancel: SipRequest) => void): void;
  /** Sends a response. A 2xx to INVITE/SUBSCRIBE creates the dialog (see accept). Ignored after the final response. */
  respond(status: number, opts?: ResponseOptions): void;
  /**
   * Sends 200 and returns the dialog. For INVITE the stack retransmits the 200 until the ACK
   * (§13.3.1.4) and sends BYE if none arrives within 64*T1.
   */
  accept(opts?: ResponseOptions): Dialog;
}

export interface RequestOptions extends BodyOptions {
  /** From name-addr or URI (default sip:huddle@<advertised host>); a tag is added. */
  from?: string;
  /** To name-addr or URI (default: the target). */
  to?: string;
  callId?: string;
  /** Next hop instead of resolving the target URI (outbound proxy, registered flow). */
  destination?: Endpoint;
  /** Pre-loaded Route set (e.g. an outbound proxy with ;lr). */
  route?: string[];
  /** Answers one 401/407 challenge with these credentials. */
  auth?: Credentials;
  /** User part of our Contact (default "huddle"). */
  contactUser?: string;
}

export interface InviteOptions extends RequestOptions {
  /** Body and headers of the ACK to the 2xx (delayed offer: the answer goes here). */
  ack?: (response: SipResponse) => BodyOptions | Promise<BodyOptions>;
}

export type InviteResult =
  | { ok: true; response: SipResponse; dialog: Dialog }
  | { ok: false; status: number; reason: string; response?: SipResponse };

/** An outgoing INVITE. Extra 2xx from other forks are ACKed and sent BYE automatically. */
export interface OutgoingInvite {
  /** The INVITE, once sent (or once the call ended without sending it). */
  readonly request: Promise<SipRequest>;
  onProvisional(handler: (res: SipResponse) => void): void;
  /** Never rejects: failures (non-2xx, timeout, CANCEL) resolve with ok: false. */
  readonly result: Promise<InviteResult>;
  /** Sends CANCEL (after the first provisional response, §9.1); the result becomes 487. */
  cancel(): void;
}

export interface SubscribeOptions extends RequestOptions {
  event: string;
  expires?: number;
  accept?: string;
  /** Each NOTIFY in the subscription; the stack answers 200 after this returns. */
  onNotify: (notify: SipRequest) => void;
}

export interface SipStack {
  /** Bound addresses (ports resolved when 0 was asked). */
  readonly addresses: readonly ListenAddress[];
  /** Our Contact URI on a transport (default the first listen address). */
  contact(user?: string, transport?: TransportProtocol): string;
  /** Out-of-dialog requests. Without a handler OPTIONS gets 200 and everything else 501. */
  onRequest(handler: (req: ServerRequest) => void): void;
  /**
   * In-dialog requests that match no dialog here (another process may be handing it over).
   * Without a handler they get 481; a handler answers them, or hands them to `deliver` once the
   * dialog exists.
   */
  onUnknownDialog(handler: (req: ServerRequest) => void): void;
  /**
   * A flow only the peer can open again closed (a browser's WebSocket, RFC 7118 §5): requests to
   * bindings made over it cannot be delivered any more.
   */
  onFlowClosed(handler: (flow: Endpoint) => void): void;
  /** Hands an in-dialog request to its dialog if that exists now; false when it does not. */
  deliver(req: ServerRequest): boolean;
  /**
   * Sends an in-dialog request on, unchanged, to the process that holds its dialog (another
   * signaling replica behind the SIP edge), which answers the top Via itself: this stack forgets
   * the request. False when it cannot (the request did not arrive over the address's transport).
   */
  relay(req: ServerRequest, to: Endpoint): boolean;
  /** Starts a call; throws at once for a malformed target. */
  invite(target: string, opts?: InviteOptions): OutgoingInvite;
  /** Out-of-dialog non-INVITE request (REGISTER, OPTIONS, MESSAGE, NOTIFY...): the final response. */
  request(method: string, target: string, opts?: RequestOptions): Promise<SipResponse>;
  /** SUBSCRIBE (RFC 6665): resolves with the final response and, on 2xx, the subscription dialog. */
  subscribe(target: string, opts: SubscribeOptions): Promise<{ response: SipResponse; dialog?: Dialog }>;
  /**
   * A confirmed dialog from its exported state (another process, or this one before a restart,
   * created it): in-dialog requests that match it reach it from now on.
   */
  restoreDialog(state: DialogState): Dialog;
  /** Stops taking new requests (503), waits up to drainMs for open transactions, then closes sockets. */
  close(drainMs?: number): Promise<void>;
}
