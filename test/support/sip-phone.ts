/**
 * A scriptable SIP phone for end-to-end tests, built on our own stack (signaling/sip).
 * SDP is opaque here: callers supply offers/answers (e.g. from an RTP tone endpoint).
 *
 *   const phone = await SipPhone.start({ user: '7001' });
 *   await phone.register('sip:127.0.0.1:5060', 'sip:7001@SiteA', { password: 'pw' });
 *   phone.onIncoming(async (offer) => answerSdp);
 *   const call = await phone.call('sip:7002@127.0.0.1:5060', offerSdp);
 *   await phone.hangup();
 */
import type { Registry } from 'prom-client';
import {
  createSipStack,
  type Dialog,
  type DialogTermination,
  type ServerRequest,
  type SipRequest,
  type SipResponse,
  type SipStack,
  type TlsOptions,
} from '../../signaling/sip/index.js';

export interface SipPhoneOptions {
  /** User part of the phone's Contact and default From. */
  user: string;
  /** Preferred transport (Contact, outgoing requests); default udp. */
  transport?: 'udp' | 'tcp' | 'tls';
  /** For tls: the phone's certificate and the CA it trusts (the test CA). */
  tls?: TlsOptions;
  host?: string;
  /** Port of the preferred transport; 0 (default) picks a free one. The other transport always gets a free port. */
  port?: number;
  registry?: Registry;
  timers?: { t1Ms?: number; t2Ms?: number; t4Ms?: number };
  /** Password used for every digest challenge (register/call/subscribe can override). */
  password?: string;
  /** Display/From URI for outgoing requests (default sip:<user>@<host>). */
  from?: string;
}

export type CallOutcome =
  | { answered: true; answerSdp: string; dialog: Dialog; response: SipResponse }
  | { answered: false; status: number; reason: string; retryAfter?: string };

export interface IncomingCall {
  request: SipRequest;
  dialog: Dialog;
  offerSdp: string;
  answerSdp: string;
}

export interface Subscription {
  dialog?: Dialog;
  response: SipResponse;
  /** Every NOTIFY body received, in order. */
  notifies: string[];
  /** Resolves once `count` NOTIFYs arrived. */
  waitForNotifies(count: number, timeoutMs?: number): Promise<string[]>;
}

export class SipPhone {
  /** Confirmed calls (both directions), oldest first; ended calls are removed. */
  readonly calls: Dialog[] = [];
  readonly incoming: IncomingCall[] = [];
  readonly ended: DialogTermination[] = [];
  /** The method of every request received within a call, in order. */
  readonly inDialogMethods: string[] = [];
  private answerer?: (offer: string, req: ServerRequest) => string | Promise<string>;
  private reinviteHandler?: (offer: string, req: ServerRequest) => string | Promise<string>;
  private ringMs = 0;

  private constructor(
    readonly stack: SipStack,
    private readonly opts: SipPhoneOptions,
  ) {
    stack.onRequest((req) => this.onRequest(req));
  }

  static async start(opts: SipPhoneOptions): Promise<SipPhone> {
    const transport = opts.transport ?? 'udp';
    const stack = await createSipStack({
      // Both transports, so any peer can reach the phone; `transport` picks the one it prefers.
      listen: [
        { transport, host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 },
        { transport: transport === 'udp' ? 'tcp' : 'udp', host: opts.host ?? '127.0.0.1', port: 0 },
      ],
      ...(opts.tls ? { tls: opts.tls } : {}),
      userAgent: `huddle-test-phone/${opts.user}`,
      ...(opts.registry ? { registry: opts.registry } : {}),
      ...(opts.timers ? { timers: opts.timers } : {}),
    });
    return new SipPhone(stack, opts);
  }

  get transport(): 'udp' | 'tcp' | 'tls' {
    return this.opts.transport ?? 'udp';
  }

  get port(): number {
    return this.stack.addresses[0]!.port;
  }

  /** The phone's Contact URI. */
  get contact(): string {
    return this.stack.contact(this.opts.user, this.transport);
  }

  private get from(): string {
    return this.opts.from ?? `sip:${this.opts.user}@${this.opts.host ?? '127.0.0.1'}`;
  }

  private withTransport(uri: string): string {
    return this.transport !== 'udp' && !/;transport=/i.test(uri) ? uri + ';transport=' + this.transport : uri;
  }

  /** REGISTER `aor` at `registrar` with `contact` (default the phone's own); answers a digest challenge with the password. */
  register(registrar: string, aor: string, contact: string = this.contact, o: { password?: string; username?: string; expires?: number } = {}): Promise<SipResponse> {
    const password = o.password ?? this.opts.password;
    return this.stack.request('REGISTER', this.withTransport(registrar), {
      from: aor,
      to: aor,
      contactUser: this.opts.user,
      headers: { Contact: `<${contact}>`, Expires: String(o.expires ?? 3600) },
      ...(password !== undefined ? { auth: { username: o.username ?? this.opts.user, password } } : {}),
    });
  }

  /** Calls `uri` with an SDP offer; resolves once answered or failed. */
  async call(uri: string, sdpOffer: string, o: { headers?: Record<string, string>; password?: string; onProvisional?: (res: SipResponse) => void } = {}): Promise<CallOutcome> {
    const password = o.password ?? this.opts.password;
    const call = this.stack.invite(this.withTransport(uri), {
      from: this.from,
      contactUser: this.opts.user,
      body: sdpOffer,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(password !== undefined ? { auth: { username: this.opts.user, password } } : {}),
    });
    if (o.onProvisional) call.onProvisional(o.onProvisional);
    const res = await call.result;
    if (!res.ok) {
      const retryAfter = res.response?.get('retry-after');
      return { answered: false, status: res.status, reason: res.reason, ...(retryAfter ? { retryAfter } : {}) };
    }
    this.track(res.dialog);
    return { answered: true, answerSdp: res.response.body.toString(), dialog: res.dialog, response: res.response };
  }

  /** Auto-answers incoming calls with the SDP the callback returns for the offer (after `ringMs` of 180). */
  onIncoming(answer: (offer: string, req: ServerRequest) => string | Promise<string>, o: { ringMs?: number } = {}): void {
    this.answerer = answer;
    this.ringMs = o.ringMs ?? 0;
  }

  /** Answers re-INVITEs (hold/resume, media changes) with the SDP the callback returns. */
  onReinvite(answer: (offer: string, req: ServerRequest) => string | Promise<string>): void {
    this.reinviteHandler = answer;
  }

  /** Sends BYE on the given call (default: the most recent one). */
  async hangup(dialog: Dialog | undefined = this.calls.at(-1)): Promise<SipResponse | undefined> {
    if (!dialog) return undefined;
    return dialog.bye();
  }

  /** SUBSCRIBEs to `event` at `uri` and collects NOTIFY bodies. */
  async subscribe(uri: string, event: string, o: { expires?: number; accept?: string; password?: string } = {}): Promise<Subscription> {
    const notifies: string[] = [];
    const waiters: (() => void)[] = [];
    const password = o.password ?? this.opts.password;
    const res = await this.stack.subscribe(this.withTransport(uri), {
      event,
      from: this.from,
      contactUser: this.opts.user,
      ...(o.expires !== undefined ? { expires: o.expires } : {}),
      ...(o.accept ? { accept: o.accept } : {}),
      ...(password !== undefined ? { auth: { username: this.opts.user, password } } : {}),
      onNotify: (n) => {
        notifies.push(n.body.toString());
        for (const w of waiters.splice(0)) w();
      },
    });
    const waitForNotifies = async (count: number, timeoutMs = 10_000): Promise<string[]> => {
      const deadline = Date.now() + timeoutMs;
      while (notifies.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} NOTIFYs for ${event}, got ${notifies.length}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return notifies.slice();
    };
    return { ...(res.dialog ? { dialog: res.dialog } : {}), response: res.response, notifies, waitForNotifies };
  }

  /** Resolves with the next incoming call (or one already answered and not yet taken). */
  async waitForIncoming(timeoutMs = 10_000): Promise<IncomingCall> {
    const deadline = Date.now() + timeoutMs;
    while (this.incoming.length === 0) {
      if (Date.now() > deadline) throw new Error(`no incoming call for ${this.opts.user} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.incoming.shift()!;
  }

  async close(): Promise<void> {
    await this.stack.close(500);
  }

  private track(dialog: Dialog): void {
    this.calls.push(dialog);
    dialog.onRequest((req) => void this.onInDialog(req));
    dialog.onTerminated((t) => {
      const i = this.calls.indexOf(dialog);
      if (i >= 0) this.calls.splice(i, 1);
      this.ended.push(t);
    });
  }

  private async onInDialog(req: ServerRequest): Promise<void> {
    this.inDialogMethods.push(req.method);
    if (req.method !== 'INVITE') {
      req.respond(200);
      return;
    }
    if (!this.reinviteHandler) {
      req.respond(488);
      return;
    }
    try {
      req.respond(200, { body: await this.reinviteHandler(req.message.body.toString(), req) });
    } catch {
      req.respond(488);
    }
  }

  private onRequest(req: ServerRequest): void {
    if (req.method === 'OPTIONS') return req.respond(200);
    if (req.method !== 'INVITE') return req.respond(405);
    if (!this.answerer) return req.respond(480);
    void this.answerIncoming(req, this.answerer);
  }

  private async answerIncoming(req: ServerRequest, answerer: (offer: string, req: ServerRequest) => string | Promise<string>): Promise<void> {
    req.respond(180);
    if (this.ringMs > 0) await new Promise((r) => setTimeout(r, this.ringMs));
    if (req.canceled || req.answered) return;
    const offerSdp = req.message.body.toString();
    let answerSdp: string;
    try {
      answerSdp = await answerer(offerSdp, req);
    } catch {
      req.respond(488);
      return;
    }
    if (req.canceled || req.answered) return;
    const dialog = req.accept({ body: answerSdp, contact: this.contact });
    this.track(dialog);
    this.incoming.push({ request: req.message, dialog, offerSdp, answerSdp });
  }
}
