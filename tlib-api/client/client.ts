/**
 * T-Library client SDK for Node: one WebSocket to a gateway, one method per request, each
 * resolving with the event that answers it (the first event echoing its ReferenceID) or
 * rejecting with a TlibError carrying ErrorCode/ErrorMessage. Every event also goes to the
 * 'event' listeners. After a lost connection it reconnects and registers its DNs again; the
 * gateway then replays their current calls (EventPartyInfo), so nothing is missed.
 */
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { ErrorCodes } from '../../common/tlib/errors.js';
import type { RequestName } from '../../common/tlib/enums.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { TlibSubprotocol } from '../../common/tlib/version.js';

export type KeyValue = Record<string, string | number | boolean>;

export interface TlibClientOptions {
  /** wss://host:port/tlib (ws:// where the gateway has no certificate, e.g. npm start on loopback) */
  url: string;
  /** PEM CAs trusted for wss://, besides the system's (a private CA, tests). */
  ca?: string | Buffer;
  /** Bearer token (a configured agent token or a JWT). */
  token?: string;
  /** How long to wait for the answer to a request (the gateway answers EventError 57 after 5 s). */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Reconnect after a lost connection (default true), with backoff between these delays. */
  reconnect?: boolean;
  reconnectDelayMs?: { min: number; max: number };
  /** Silence (no ping, no event) after which the connection counts as dead; the gateway pings every 15 s. */
  heartbeatTimeoutMs?: number;
}

export class TlibError extends Error {
  readonly ErrorCode: number;
  readonly ErrorMessage: string;
  constructor(
    code: number,
    message: string,
    /** The EventError that answered the request, when there was one. */
    readonly event?: TEvent,
  ) {
    super(`T-Library error ${code}: ${message}`);
    this.name = 'TlibError';
    this.ErrorCode = code;
    this.ErrorMessage = message;
  }
}

/** The gateway refused the WebSocket upgrade (401: bad token). */
export class TlibConnectError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`gateway refused the connection: HTTP ${status} ${body.trim()}`);
    this.name = 'TlibConnectError';
  }
}

export interface TlibClientEvents {
  /** Every event from the gateway, answers included. */
  event: [TEvent];
  /** Connection lost; the client reconnects unless closed or refused. */
  disconnected: [{ code: number; reason: string }];
  /** Connected again and every DN registered again. */
  reconnected: [];
  /** Gave up: closed by the application or the gateway refused to reconnect it. */
  closed: [{ reason: string }];
}

export interface DNParams {
  thisDN: string;
  extensions?: KeyValue;
  userData?: KeyValue;
  reasons?: KeyValue;
}
export interface CallParams extends DNParams {
  connID: string;
}
export interface DialParams extends DNParams {
  otherDN: string;
}
export interface PartyParams extends CallParams {
  otherDN: string;
}
export interface QueryParams extends DNParams {
  connID?: string;
}

interface Pending {
  resolve: (event: TEvent) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** The attributes any request may carry; the gateway refuses (53) those the named request does not take. */
interface RequestAttributes {
  ThisDN?: string;
  OtherDN?: string;
  ConnID?: string;
  Extensions?: KeyValue;
  UserData?: KeyValue;
  Reasons?: KeyValue;
}

export class TlibClient extends EventEmitter<TlibClientEvents> {
  private ws: WebSocket | undefined;
  private nextReference = 1;
  private readonly pending = new Map<number, Pending>();
  /** DNs to register again after a reconnection. */
  private readonly wanted = new Set<string>();
  private closedByUser = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly options: Required<Omit<TlibClientOptions, 'ca'>> & Pick<TlibClientOptions, 'ca'>;

  constructor(options: TlibClientOptions) {
    super();
    this.options = {
      token: '',
      requestTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      reconnect: true,
      reconnectDelayMs: { min: 250, max: 5000 },
      heartbeatTimeoutMs: 45_000,
      ...options,
    };
  }

  /** Connects a new client; rejects with TlibConnectError when the gateway refuses the token. */
  static async connect(options: TlibClientOptions): Promise<TlibClient> {
    const client = new TlibClient(options);
    await client.open();
    return client;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  get registeredDNs(): string[] {
    return [...this.wanted];
  }

  /** Opens the connection (once; reconnections are automatic). */
  async open(): Promise<void> {
    this.closedByUser = false;
    this.ws = await this.dial();
  }

  async close(): Promise<void> {
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000);
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(1000, 'client closing');
      });
    }
    this.failPending(ErrorCodes.OutOfService, 'client closed');
    this.emit('closed', { reason: 'closed by the application' });
  }

  /** Sends any request; resolves with the event echoing its ReferenceID (EventError rejects). */
  request(name: RequestName, attributes: RequestAttributes): Promise<TEvent> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new TlibError(ErrorCodes.OutOfService, 'not connected to the gateway'));
    const ReferenceID = this.nextReference++;
    return new Promise<TEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ReferenceID);
        reject(new TlibError(ErrorCodes.Timeout, `no answer to ${name} within ${this.options.requestTimeoutMs} ms`));
      }, this.options.requestTimeoutMs);
      this.pending.set(ReferenceID, { resolve, reject, timer });
      ws.send(JSON.stringify({ request: name, ReferenceID, ...attributes }));
    });
  }

  /** Waits for the next event matching `match` (rejects after `timeoutMs`). */
  waitForEvent(match: (event: TEvent) => boolean, timeoutMs = 10_000): Promise<TEvent> {
    return new Promise<TEvent>((resolve, reject) => {
      const onEvent = (event: TEvent) => {
        if (!match(event)) return;
        clearTimeout(timer);
        this.off('event', onEvent);
        resolve(event);
      };
      const timer = setTimeout(() => {
        this.off('event', onEvent);
        reject(new Error(`no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('event', onEvent);
    });
  }

  /**
   * Resolves once everything the gateway sent before it got this call has arrived (a WebSocket
   * ping/pong round trip), e.g. the EventPartyInfo events that follow EventRegistered.
   */
  sync(timeoutMs = 10_000): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new TlibError(ErrorCodes.OutOfService, 'not connected to the gateway'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.off('pong', onPong);
        reject(new TlibError(ErrorCodes.Timeout, `gateway did not answer a ping within ${timeoutMs} ms`));
      }, timeoutMs);
      const onPong = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.once('pong', onPong);
      ws.ping();
    });
  }

  async registerAddress(p: DNParams): Promise<TEvent> {
    const answer = await this.request('RegisterAddress', wire(p));
    this.wanted.add(p.thisDN);
    return answer;
  }
  async unregisterAddress(p: DNParams): Promise<TEvent> {
    this.wanted.delete(p.thisDN);
    return this.request('UnregisterAddress', wire(p));
  }
  makeCall(p: DialParams): Promise<TEvent> {
    return this.request('MakeCall', wire(p));
  }
  answerCall(p: CallParams): Promise<TEvent> {
    return this.request('AnswerCall', wire(p));
  }
  releaseCall(p: CallParams): Promise<TEvent> {
    return this.request('ReleaseCall', wire(p));
  }
  holdCall(p: CallParams): Promise<TEvent> {
    return this.request('HoldCall', wire(p));
  }
  retrieveCall(p: CallParams): Promise<TEvent> {
    return this.request('RetrieveCall', wire(p));
  }
  /** Consultation call from the call `connID` to `otherDN`. */
  initiateConference(p: PartyParams): Promise<TEvent> {
    return this.request('InitiateConference', wire(p));
  }
  /** Merges the consultation call into the call `connID`. */
  completeConference(p: CallParams & { otherDN?: string }): Promise<TEvent> {
    return this.request('CompleteConference', wire(p));
  }
  singleStepConference(p: PartyParams): Promise<TEvent> {
    return this.request('SingleStepConference', wire(p));
  }
  deleteFromConference(p: PartyParams): Promise<TEvent> {
    return this.request('DeleteFromConference', wire(p));
  }
  queryCall(p: QueryParams): Promise<TEvent> {
    return this.request('QueryCall', wire(p));
  }
  sendUserEvent(p: QueryParams): Promise<TEvent> {
    return this.request('SendUserEvent', wire(p));
  }
  /** Takes `otherDN` (its LCTParty alias) out of the conversation of the conference `connID`; it hears music. */
  listenDisconnect(p: PartyParams): Promise<TEvent> {
    return this.request('ListenDisconnect', wire(p));
  }
  listenReconnect(p: PartyParams): Promise<TEvent> {
    return this.request('ListenReconnect', wire(p));
  }

  private dial(): Promise<WebSocket> {
    const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
    // Offering the subprotocol makes the handshake fail against a gateway of another protocol version.
    const ws = new WebSocket(this.options.url, [TlibSubprotocol], { headers, handshakeTimeout: this.options.connectTimeoutMs, ...(this.options.ca ? { ca: this.options.ca } : {}) });
    return new Promise<WebSocket>((resolve, reject) => {
      const fail = (err: Error) => {
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(err);
      };
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk.slice(0, 500)));
        res.on('end', () => fail(new TlibConnectError(res.statusCode ?? 0, body)));
        res.on('error', () => fail(new TlibConnectError(res.statusCode ?? 0, body)));
      });
      ws.once('error', fail);
      ws.once('open', () => {
        ws.removeAllListeners();
        // A half-open TCP connection never closes by itself: silence past the timeout ends it.
        let silence: NodeJS.Timeout | undefined;
        const alive = () => {
          clearTimeout(silence);
          silence = setTimeout(() => ws.terminate(), this.options.heartbeatTimeoutMs);
          silence.unref();
        };
        alive();
        ws.on('ping', alive);
        ws.on('message', (data, isBinary) => {
          alive();
          if (!isBinary) this.onFrame(String(data as Buffer));
        });
        ws.on('error', () => undefined);
        ws.on('close', (code, reason) => {
          clearTimeout(silence);
          this.onClose(ws, code, reason.toString());
        });
        resolve(ws);
      });
    });
  }

  private onFrame(text: string): void {
    let event: TEvent;
    try {
      event = JSON.parse(text) as TEvent;
    } catch {
      return;
    }
    if (typeof event?.event !== 'string') return;
    const ref = event.ReferenceID;
    const pending = ref === undefined ? undefined : this.pending.get(ref);
    if (pending && ref !== undefined) {
      this.pending.delete(ref);
      clearTimeout(pending.timer);
      if (event.event === 'EventError') {
        pending.reject(new TlibError(event.ErrorCode ?? ErrorCodes.UnknownError, event.ErrorMessage ?? 'Unknown error', event));
      } else {
        pending.resolve(event);
      }
    }
    this.emit('event', event);
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    this.failPending(ErrorCodes.OutOfService, `connection lost (${code}${reason ? ` ${reason}` : ''})`);
    if (this.closedByUser) return;
    this.emit('disconnected', { code, reason });
    if (!this.options.reconnect) {
      this.emit('closed', { reason: `connection lost (${code} ${reason})` });
      return;
    }
    this.scheduleReconnect(this.options.reconnectDelayMs.min);
  }

  private scheduleReconnect(delay: number): void {
    this.reconnectTimer = setTimeout(() => {
      this.dial()
        .then(async (ws) => {
          if (this.closedByUser) {
            ws.close(1000, 'client closing');
            return;
          }
          this.ws = ws;
          for (const dn of this.wanted) {
            await this.request('RegisterAddress', { ThisDN: dn }).catch(() => undefined);
          }
          this.emit('reconnected');
        })
        .catch((err: Error) => {
          if (this.closedByUser) return;
          if (err instanceof TlibConnectError && err.status === 401) {
            this.emit('closed', { reason: err.message });
            return;
          }
          this.scheduleReconnect(Math.min(delay * 2, this.options.reconnectDelayMs.max));
        });
    }, delay);
  }

  private failPending(code: number, message: string): void {
    for (const [ref, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new TlibError(code, message));
      this.pending.delete(ref);
    }
  }
}

function wire(p: DNParams & { connID?: string; otherDN?: string }): RequestAttributes {
  const attributes: RequestAttributes = { ThisDN: p.thisDN };
  if (p.otherDN !== undefined) attributes.OtherDN = p.otherDN;
  if (p.connID !== undefined) attributes.ConnID = p.connID;
  if (p.extensions !== undefined) attributes.Extensions = p.extensions;
  if (p.userData !== undefined) attributes.UserData = p.userData;
  if (p.reasons !== undefined) attributes.Reasons = p.reasons;
  return attributes;
}
