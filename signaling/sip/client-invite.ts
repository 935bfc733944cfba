/** An outgoing INVITE (§13.2): provisional responses, forks, ACK for 2xx, CANCEL (§9.1), one auth retry. */
import type { TimerHandle } from './clock.js';
import type { InviteCore } from './core.js';
import { authorize } from './digest.js';
import { DialogImpl } from './dialog.js';
import { parseNameAddr } from './headers.js';
import { SipRequest, type SipResponse } from './message.js';
import { sixtyFourT1 } from './timers.js';
import { sameTransactionRequest, type ClientTransaction } from './transaction.js';
import type { Hop } from './transport-layer.js';
import type { Endpoint } from './transport/transport.js';
import type { InviteOptions, InviteResult, OutgoingInvite } from './types.js';
import { asNameAddr } from './util.js';

export class OutgoingInviteImpl implements OutgoingInvite {
  readonly request: Promise<SipRequest>;
  readonly result: Promise<InviteResult>;
  private resolveRequest!: (r: SipRequest) => void;
  private resolveResult!: (r: InviteResult) => void;
  private readonly provisionalHandlers: ((res: SipResponse) => void)[] = [];
  private settled = false;
  private cancelWanted = false;
  private cancelSent = false;
  private gotProvisional = false;
  private authTried = false;
  private tx?: ClientTransaction;
  private current?: SipRequest;
  private hop?: Hop;
  private cancelGuard?: TimerHandle;
  private readonly dialogs = new Map<string, DialogImpl>();

  constructor(
    private readonly core: InviteCore<DialogImpl>,
    private readonly target: string,
    private readonly opts: InviteOptions,
  ) {
    this.request = new Promise((r) => (this.resolveRequest = r));
    this.result = new Promise((r) => (this.resolveResult = r));
    // Built here so a malformed target throws from invite() itself.
    this.current = this.core.buildOutOfDialog('INVITE', this.target, this.opts);
    this.start(this.current).catch((err: unknown) => this.finish({ ok: false, status: 503, reason: 'Service Unavailable (' + (err instanceof Error ? err.message : String(err)) + ')' }));
  }

  onProvisional(handler: (res: SipResponse) => void): void {
    this.provisionalHandlers.push(handler);
  }

  private async start(req: SipRequest): Promise<void> {
    const uri = this.target.startsWith('<') ? parseNameAddr(this.target).uri : this.target;
    this.hop = await this.core.resolve({ uri, routeSet: (this.opts.route ?? []).map(asNameAddr), destination: this.opts.destination });
    if (this.cancelWanted) {
      this.finish({ ok: false, status: 487, reason: 'Request Terminated' });
      return;
    }
    this.send(req);
    this.resolveRequest(req);
  }

  private send(req: SipRequest): void {
    const { dest, transport } = this.hop!;
    this.current = req;
    this.tx = this.core.startClientTransaction(req, dest, transport, {
      onResponse: (res, tx) => this.onResponse(res, tx, req),
      onFailure: (status, reason, tx) => {
        if (tx === this.tx) this.finish({ ok: false, status, reason });
      },
    });
  }

  private onResponse(res: SipResponse, tx: ClientTransaction, req: SipRequest): void {
    if (tx !== this.tx) return;
    if (res.status < 200) {
      this.gotProvisional = true;
      if (this.cancelWanted && !this.cancelSent) this.sendCancel();
      if (!this.settled) for (const h of this.provisionalHandlers) h(res);
      return;
    }
    if (res.status >= 300) {
      if ((res.status === 401 || res.status === 407) && this.opts.auth && !this.authTried && !this.cancelWanted) {
        this.authTried = true;
        const credential = authorize(req, res, this.opts.auth);
        if (credential) {
          // §22.2: same Call-ID, From tag and To; CSeq + 1; new branch.
          const again = new SipRequest('INVITE', req.uri, req.headers.filter((h) => h.key !== 'via').map((h) => ({ ...h })), req.body);
          again.set('CSeq', req.cseq.seq + 1 + ' INVITE');
          again.append(credential.name, credential.value);
          this.send(again);
          return;
        }
      }
      this.finish({ ok: false, status: res.status, reason: res.reason, response: res });
      return;
    }
    this.on2xx(res, req).catch((err: unknown) => this.core.log?.error({ err }, 'ACK for 2xx failed'));
  }

  private async on2xx(res: SipResponse, req: SipRequest): Promise<void> {
    const tag = res.toTag ?? '';
    const known = this.dialogs.get(tag);
    if (known) {
      known.resendAck(res);
      return;
    }
    const { dest, transport } = this.hop!;
    const dialog = DialogImpl.uac(this.core, req, res, transport, this.opts.destination);
    this.dialogs.set(tag, dialog);
    const extra = this.opts.ack && !this.settled ? await this.opts.ack(res) : {};
    const ack = dialog.buildAck(req, extra);
    const ackDest = await this.ackDestination(dialog, dest);
    dialog.sendAck(ack, ackDest, transport);
    if (this.settled || this.cancelWanted) {
      // A second fork answered, or the callee answered while we cancelled: §13.2.2.4 / §9.1 say ACK, then BYE.
      dialog.bye().catch(() => undefined);
      if (!this.settled) this.finish({ ok: false, status: 487, reason: 'Request Terminated (answered while cancelling)', response: res });
      return;
    }
    this.finish({ ok: true, response: res, dialog });
  }

  /** The ACK goes to the dialog's route set / remote target, unless an explicit destination was forced. */
  private async ackDestination(dialog: DialogImpl, fallback: Endpoint): Promise<Endpoint> {
    if (this.opts.destination) return this.opts.destination;
    try {
      return (await this.core.resolve({ uri: dialog.remoteTarget, routeSet: dialog.routeSet, transport: dialog.transport })).dest;
    } catch {
      return fallback;
    }
  }

  cancel(): void {
    if (this.settled || this.cancelWanted) return;
    this.cancelWanted = true;
    if (this.gotProvisional) this.sendCancel();
  }

  /** §9.1: CANCEL copies the INVITE's Request-URI, top Via (same branch), Call-ID, From, To, Route and CSeq number. */
  private sendCancel(): void {
    const inv = this.current;
    const tx = this.tx;
    if (!inv || !tx || this.cancelSent) return;
    this.cancelSent = true;
    const c = sameTransactionRequest(inv, 'CANCEL');
    this.core.addUserAgent(c);
    this.core.startPrepared(c, tx.dest, tx.transport, { onResponse: () => undefined, onFailure: () => undefined }, tx.branch);
    // §9.1: without a final response 64*T1 after the CANCEL, the INVITE transaction is given up.
    this.cancelGuard = this.core.clock.setTimer(sixtyFourT1(this.core.timers), () => {
      tx.terminate();
      this.finish({ ok: false, status: 408, reason: 'No final response after CANCEL' });
    });
  }

  private finish(r: InviteResult): void {
    if (this.settled) return;
    this.settled = true;
    this.cancelGuard?.cancel();
    if (this.current) this.resolveRequest(this.current);
    this.resolveResult(r);
  }
}
