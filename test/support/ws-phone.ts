/**
 * A browser's SIP stack in Node: SIP.js (the library WebRTC softphones use) over SIP over
 * WebSocket, with the `ws` package as its WebSocket. Its media is a tone phone (plain RTP/AVP) or
 * a real browser page (WebRTC, test/support/chromium-phone.ts): SIP.js hands it every SDP through
 * a SessionDescriptionHandler, so what is offered, answered and heard is real.
 */
import { Inviter, Registerer, RegistererState, SessionState, UserAgent, type Invitation, type Message, type Session, type SessionDescriptionHandler } from 'sip.js';
import { WebSocket as NodeWebSocket } from 'ws';

/** What offers and answers SDP for SIP.js: a tone phone, or a browser's RTCPeerConnection. */
export interface SdpPeer {
  offer(): string | Promise<string>;
  answer(remoteOffer: string): string | Promise<string>;
  accept(remoteAnswer: string): void | Promise<void>;
}

/** CAs the next WebSocket trusts (a test CA for wss); SIP.js gives the constructor only a URL. */
let trustedCa: string | undefined;

/** The WebSocket SIP.js finds as the global one (Node 20 has none): ws, trusting `trustedCa`. */
class BrowserWebSocket extends NodeWebSocket {
  static lastOpened: BrowserWebSocket | undefined;
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, trustedCa ? { ca: trustedCa } : {});
    BrowserWebSocket.lastOpened = this;
  }
}
(globalThis as { WebSocket?: unknown }).WebSocket ??= BrowserWebSocket;

/** SDP from and to the media, in SIP.js's offer/answer calls. */
class PeerDescriptionHandler implements SessionDescriptionHandler {
  private remoteOffer: string | undefined;
  private offered = false;

  constructor(private readonly media: SdpPeer) {}

  close(): void {}

  async getDescription(): Promise<{ body: string; contentType: string }> {
    if (this.remoteOffer !== undefined) {
      const offer = this.remoteOffer;
      this.remoteOffer = undefined;
      return { body: await this.media.answer(offer), contentType: 'application/sdp' };
    }
    this.offered = true;
    return { body: await this.media.offer(), contentType: 'application/sdp' };
  }

  hasDescription(contentType: string): boolean {
    return contentType === 'application/sdp';
  }

  async setDescription(sdp: string): Promise<void> {
    if (this.offered) {
      this.offered = false;
      await this.media.accept(sdp);
    } else this.remoteOffer = sdp;
  }

  sendDtmf(): boolean {
    return false;
  }
}

export interface WsPhoneOptions {
  dn: string;
  password: string;
  /** ws://host:port or wss://host:port of the site's WebSocket listener. */
  server: string;
  /** The site's SIP domain (its host). */
  domain: string;
  media: SdpPeer;
  /** PEM CA to trust for wss. */
  ca?: string;
}

export class WsPhone {
  /** INVITEs that reached this browser, answered at once. */
  readonly invitations: Invitation[] = [];
  /** Bodies of the MESSAGEs that reached this browser (answered 200). */
  readonly messages: string[] = [];
  /** The last MESSAGE that reached this browser, as received. */
  lastRequest: Message['request'] | undefined;
  private readonly sessions: Session[] = [];
  /** The WebSocket this browser opened: the only connection it has. */
  socket!: NodeWebSocket;
  /** How many WebSockets SIP.js opened for this phone. */
  socketsOpened = 0;
  /** SIP.js's own errors and warnings (the last 50), for failure messages rather than the test's stderr. */
  readonly log: string[] = [];

  private constructor(
    readonly ua: UserAgent,
    readonly opts: WsPhoneOptions,
  ) {}

  static async start(opts: WsPhoneOptions): Promise<WsPhone> {
    // The delegates run once the phone exists (after ua.start()).
    const self: { phone?: WsPhone } = {};
    const ua = new UserAgent({
      uri: UserAgent.makeURI(`sip:${opts.dn}@${opts.domain}`)!,
      transportOptions: { server: opts.server },
      authorizationUsername: opts.dn,
      authorizationPassword: opts.password,
      sessionDescriptionHandlerFactory: () => new PeerDescriptionHandler(opts.media),
      logLevel: 'warn',
      logBuiltinEnabled: false,
      logConnector: (level, category, _label, content) => {
        const log = self.phone?.log;
        log?.push(`${level} ${category}: ${content}`);
        log?.splice(0, Math.max(0, log.length - 50));
      },
      delegate: {
        onInvite: (invitation) => {
          self.phone!.invitations.push(invitation);
          self.phone!.sessions.push(invitation);
          void invitation.accept();
        },
        onMessage: (message) => {
          self.phone!.messages.push(message.request.body);
          self.phone!.lastRequest = message.request;
          void message.accept();
        },
      },
    });
    const phone = new WsPhone(ua, opts);
    self.phone = phone;
    trustedCa = opts.ca;
    await ua.start();
    phone.socket = BrowserWebSocket.lastOpened!;
    phone.socketsOpened = 1;
    ua.transport.stateChange.addListener((state) => {
      if (state === 'Connecting') phone.socketsOpened++;
    });
    return phone;
  }

  /** REGISTER (digest answered by SIP.js): the final status, 0 when SIP.js did not take a 2xx as registered. */
  register(): Promise<number> {
    // SIP.js's registration state machine, as a softphone uses it.
    const registerer = new Registerer(this.ua, { expires: 600 });
    return new Promise((resolve) => {
      registerer.stateChange.addListener((state) => {
        if (state === RegistererState.Registered) resolve(200);
        // After the rejection's own status, which SIP.js reports once the state has changed.
        else if (state === RegistererState.Unregistered) setImmediate(() => resolve(0));
      });
      void registerer.register({ requestDelegate: { onReject: (res) => resolve(res.message.statusCode ?? 0) } });
    });
  }

  /** INVITE `number` at the site: the final status (200 once established). */
  call(number: string): Promise<number> {
    const inviter = new Inviter(this.ua, UserAgent.makeURI(`sip:${number}@${this.opts.domain}`)!);
    this.sessions.push(inviter);
    return new Promise((resolve) => {
      void inviter.invite({
        requestDelegate: {
          onAccept: (res) => resolve(res.message.statusCode ?? 0),
          onReject: (res) => resolve(res.message.statusCode ?? 0),
        },
      });
    });
  }

  /** Resolves when the last session is established. */
  async established(timeoutMs = 8000): Promise<Session> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.sessions.at(-1);
      if (s?.state === SessionState.Established) return s;
      if (Date.now() > deadline) throw new Error(`${this.opts.dn}: no established session (last: ${s?.state ?? 'none'})\n${this.log.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async hangup(): Promise<void> {
    const s = await this.established(100);
    await s.bye();
  }

  /** The tab closes: the socket goes without a word (no un-REGISTER, no BYE). */
  dropConnection(): void {
    this.socket.terminate();
  }

  /** Un-registers while the socket is up (bounded: a dropped one fails at once), then closes it. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ua.stop().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.socket.terminate();
  }
}
