/**
 * Collects the outputs of one input. Whatever the order in which a transition discovers them, the
 * outputs leave in a fixed order, so that adapters can execute them one after the other:
 *   bridge.create -> SIP (connect/ringing/answer/release) -> media leg commands -> bridge.destroy
 *   -> T-Library call events -> LCTParty EventUserEvents (and the parties reports to our other sites)
 *   -> conference states -> CDRs -> reports.
 * Side effects come before the events that report them.
 */
import type { CallDetail } from '../../common/nats/cdr-contract.js';
import type { MediaCommand } from '../../common/nats/media-contract.js';
import type { TlibOrigin } from '../../common/nats/tlib-contract.js';
import type { TEvent } from '../../common/tlib/messages.js';
import type { PendingReply } from './state.js';
import type { ModelOutput } from './types.js';

type SipOutput = Extract<ModelOutput, { kind: 'sip.connect' | 'sip.ringing' | 'sip.answer' | 'sip.reject' | 'sip.release' | 'sip.remoteAnswer' }>;

export class Step {
  private readonly creates: ModelOutput[] = [];
  private readonly sip: ModelOutput[] = [];
  private readonly media: ModelOutput[] = [];
  private readonly destroys: ModelOutput[] = [];
  private readonly events: ModelOutput[] = [];
  private readonly reports: ModelOutput[] = [];
  private readonly cdrs: ModelOutput[] = [];
  /** Bridges whose legs' media must be reconciled with their parties' state. */
  readonly touched = new Set<string>();
  /** Calls whose LCTParty list must be sent (ConnIDs, in order of discovery). */
  readonly lctDirty = new Set<string>();
  /** Conference calls whose RFC 4575 state must be sent. */
  readonly confDirty = new Set<string>();
  /** Conferences that ended in this step, with the version of their final ("deleted") state. */
  readonly confDeleted = new Map<string, number>();

  /**
   * @param time the clock reading stamped on every event of this step
   * @param requester the T-Library request being handled: events to its DN answer it
   */
  constructor(
    readonly time: number,
    readonly requester?: PendingReply,
  ) {}

  bridgeCreate(bridgeId: string, colocateWith?: string): void {
    const out: ModelOutput = { kind: 'media', command: { op: 'bridge.create', bridgeId } };
    if (colocateWith !== undefined) out.colocateWith = colocateWith;
    this.creates.push(out);
  }

  bridgeDestroy(bridgeId: string): void {
    this.destroys.push({ kind: 'media', command: { op: 'bridge.destroy', bridgeId } });
  }

  sipOut(out: SipOutput): void {
    this.sip.push(out);
  }

  mediaCmd(command: MediaCommand): void {
    this.media.push({ kind: 'media', command });
  }

  /**
   * A T-Library event for the DN `to`. It answers a request (ReferenceID + origin) when `answer`
   * is given, or, by default, when it goes to the DN of the request being handled.
   */
  event(to: string, event: TEvent, answer?: PendingReply): void {
    const reply = answer ?? (this.requester !== undefined && this.requester.dn === to && event.event !== 'EventUserEvent' ? this.requester : undefined);
    const stamped: TEvent = { ...event, Time: this.time };
    if (reply === undefined) {
      this.events.push({ kind: 'tlib.event', to, event: stamped });
      return;
    }
    this.events.push({ kind: 'tlib.event', to, event: { ...stamped, ReferenceID: reply.ref }, origin: reply.origin });
  }

  reply(origin: TlibOrigin, event: TEvent): void {
    this.events.push({ kind: 'tlib.reply', origin, event: { ...event, Time: this.time } });
  }

  /** A call ended: its detail record leaves after everything else the step did to it. */
  cdr(record: CallDetail): void {
    this.cdrs.push({ kind: 'cdr', record });
  }

  report(level: 'info' | 'warn', code: string, message: string, ids: { connId?: string; legId?: string } = {}): void {
    this.reports.push({ kind: 'report', level, code, message, ...ids });
  }

  /** The outputs in execution order; the caller supplies the late parts computed from the final state. */
  finish(reconcile: readonly MediaCommand[], lct: readonly ModelOutput[], conferences: readonly ModelOutput[]): ModelOutput[] {
    return [
      ...this.creates,
      ...this.sip,
      ...this.media,
      ...reconcile.map((command): ModelOutput => ({ kind: 'media', command })),
      ...this.destroys,
      ...this.events,
      ...lct,
      ...conferences,
      ...this.cdrs,
      ...this.reports,
    ];
  }
}
