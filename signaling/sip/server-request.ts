/** The server-side request object handed to the TU (§8.2): responses, CANCEL (§9.2), accept() creating the dialog. */
import type { ServerRequestCore } from './core.js';
import { createsDialog, DialogImpl } from './dialog.js';
import type { SipRequest, SipResponse } from './message.js';
import type { ServerTransaction } from './transaction.js';
import type { Endpoint } from './transport/transport.js';
import type { ResponseOptions, ServerRequest } from './types.js';
import { newTag } from './util.js';

export class ServerRequestImpl implements ServerRequest {
  canceled = false;
  localTag?: string;
  private readonly cancelHandlers: ((c: SipRequest) => void)[] = [];

  constructor(
    private readonly core: ServerRequestCore<DialogImpl>,
    readonly tx: ServerTransaction,
    readonly message: SipRequest,
    readonly source: Endpoint,
    readonly dialog?: DialogImpl,
    readonly origin: Endpoint = source,
  ) {}

  get method(): string {
    return this.message.method;
  }

  /** Sends through the transaction; a final response to INVITE ends CANCEL's reach. */
  private send(res: SipResponse): void {
    this.tx.respond(res);
    if (res.status >= 200 && this.message.method === 'INVITE') this.core.inviteAnswered(this.tx.key);
  }

  get answered(): boolean {
    return this.tx.finalSent;
  }

  onCancel(handler: (cancel: SipRequest) => void): void {
    this.cancelHandlers.push(handler);
  }

  /** CANCEL matched (§9.2): tell the TU, then end the INVITE with 487. */
  cancel(cancel: SipRequest): void {
    if (this.answered) return;
    this.canceled = true;
    for (const h of this.cancelHandlers) {
      try {
        h(cancel);
      } catch (err) {
        this.core.log?.error({ err }, 'cancel handler threw');
      }
    }
    if (!this.answered) this.respond(487);
  }

  respond(status: number, opts: ResponseOptions = {}): void {
    if (this.answered || this.tx.state === 'terminated') return;
    if (status >= 200 && status < 300 && createsDialog(this.method)) {
      this.accept({ ...opts, status });
      return;
    }
    if (status > 100) this.localTag ??= this.dialog ? this.dialog.localTag : newTag();
    const res = this.core.buildResponse(this.message, this.localTag, this.tx.transport, status, opts, false);
    this.send(res);
    if (status >= 200 && this.dialog && this.method === 'INVITE') this.dialog.incomingInviteAnswered();
  }

  accept(opts: ResponseOptions & { status?: number } = {}): DialogImpl {
    const status = opts.status ?? 200;
    if (this.dialog) {
      if (this.answered) return this.dialog;
      const res = this.core.buildResponse(this.message, this.localTag, this.tx.transport, status, opts, this.method === 'INVITE');
      this.send(res);
      if (this.method === 'INVITE') {
        this.dialog.incomingInviteAnswered();
        this.dialog.startAnswerRetransmit(res, this.tx);
      }
      return this.dialog;
    }
    if (!createsDialog(this.method)) throw new Error(`accept() needs INVITE or SUBSCRIBE, not ${this.method}`);
    if (this.answered) throw new Error('request already answered');
    this.localTag ??= newTag();
    const res = this.core.buildResponse(this.message, this.localTag, this.tx.transport, status, opts, true);
    const dialog = DialogImpl.uas(this.core, this.message, this.localTag, res, this.tx.transport, this.source);
    this.send(res);
    if (this.method === 'INVITE') dialog.startAnswerRetransmit(res, this.tx);
    return dialog;
  }
}
