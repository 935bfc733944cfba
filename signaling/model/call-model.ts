/**
 * The SIP Server call model: a pure state machine. `handle(input)` applies one input (a T-Library
 * request, a SIP fact, a media fact) and returns what the adapters must do, in order. No I/O, no
 * timers, no clock or randomness of its own: all of that comes from ModelEnv.
 */
import type { MediaCommand } from '../../common/nats/media-contract.js';
import { errorEvent } from '../../common/tlib/errors.js';
import { Engine } from './engine.js';
import { RequestError } from './errors.js';
import { applyRequest, checkRequest, connIdOf, dnState } from './requests.js';
import { dropGroup, groupOf, restoreGroup, snapshotGroup, type GroupSnapshot } from './snapshot.js';
import { applyFact } from './sip-facts.js';
import { originKey, type Call } from './state.js';
import { Step } from './step.js';
import type { CallView, ModelEnv, ModelInput, ModelOutput, PartyView } from './types.js';

export class CallModel {
  private readonly engine: Engine;

  constructor(env: ModelEnv) {
    this.engine = new Engine(env);
  }

  handle(input: ModelInput): ModelOutput[] {
    const time = this.engine.env.clock();
    switch (input.kind) {
      case 'tlib.request':
        return this.request(input, time);
      case 'tlib.gatewayGone': {
        const prefix = originKey({ gateway: input.gateway, client: '' });
        this.forgetRegistrations((origin) => origin.startsWith(prefix));
        return [];
      }
      default: {
        const step = new Step(time);
        applyFact(this.engine, step, input);
        return this.engine.finish(step);
      }
    }
  }

  private request(input: Extract<ModelInput, { kind: 'tlib.request' }>, time: number): ModelOutput[] {
    const { request, origin } = input;
    try {
      const checked = checkRequest(this.engine, request, origin);
      const step = new Step(time, { ref: checked.ref, origin, dn: checked.thisDN });
      applyRequest(this.engine, step, checked);
      return this.engine.finish(step);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      const about = { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN, ConnID: connIdOf(request), Time: time };
      return [{ kind: 'tlib.reply', origin, event: errorEvent(err.code, err.message, about) }];
    }
  }

  /**
   * Media commands a reconcile of every leg would still send. Always empty: the model keeps each
   * leg's flags and music in step with its party. Tests check it after every input; an adapter
   * may export its length as a metric.
   */
  mediaDrift(): MediaCommand[] {
    return this.engine.mediaDrift();
  }

  private forgetRegistrations(gone: (origin: string) => boolean): void {
    for (const [dn, origins] of this.engine.store.registrations) {
      for (const origin of origins) if (gone(origin)) origins.delete(origin);
      if (origins.size === 0) this.engine.store.registrations.delete(dn);
    }
  }

  /** The ConnIDs of the call group of a call (the calls sharing legs with it, transitively), or [] when it is gone. */
  groupOf(connId: string): string[] {
    const call = this.engine.store.calls.get(connId);
    return call === undefined ? [] : groupOf(this.engine.store, call).map((c) => c.connId);
  }

  /** The calls using a leg, by ConnID. */
  callsOfLeg(legId: string): string[] {
    return [...(this.engine.store.legs.get(legId)?.users ?? [])].map((c) => c.connId);
  }

  /** The call whose bridge this is, if any. */
  callOfBridge(bridgeId: string): string | undefined {
    return this.engine.store.bridgeCall(bridgeId)?.connId;
  }

  /** What another process needs to carry the calls of a group on (serialize it at once: it shares live state). */
  snapshot(connIds: readonly string[]): GroupSnapshot {
    return snapshotGroup(this.engine.store, this.liveCalls(connIds));
  }

  /** Takes over a group from its snapshot. */
  restore(snapshot: GroupSnapshot): void {
    restoreGroup(this.engine.store, snapshot);
  }

  /** Forgets a group that another process owns now; no output. */
  drop(connIds: readonly string[]): void {
    dropGroup(this.engine.store, this.liveCalls(connIds));
  }

  /** The desktops (origin keys) registered on each DN. */
  registrationsOf(dn: string): string[] {
    return [...(this.engine.store.registrations.get(dn) ?? [])];
  }

  /** Whether a client of `gateway` has `dn` registered. */
  registeredVia(dn: string, gateway: string): boolean {
    const prefix = originKey({ gateway, client: '' });
    return this.registrationsOf(dn).some((origin) => origin.startsWith(prefix));
  }

  /** Sets the desktops registered on a DN (restored, or written by another replica). */
  setRegistrations(dn: string, origins: readonly string[]): void {
    if (origins.length === 0) this.engine.store.registrations.delete(dn);
    else this.engine.store.registrations.set(dn, new Set(origins));
  }

  registeredDns(): string[] {
    return [...this.engine.store.registrations.keys()];
  }

  /**
   * A DN's current state for its desktops after signaling took its calls over: EventRegistered
   * (ReferenceID 0), then per call EventPartyInfo and the LCTParty list, as the answer to
   * RegisterAddress has them.
   */
  resync(dn: string): ModelOutput[] {
    return dnState(this.engine, dn, 0, this.engine.env.clock()).map((event): ModelOutput => ({ kind: 'tlib.event', to: dn, event }));
  }

  private liveCalls(connIds: readonly string[]): Call[] {
    return connIds.map((id) => this.engine.store.calls.get(id)).filter((c): c is Call => c !== undefined);
  }

  /** Snapshot of one call, or undefined. */
  call(connId: string): CallView | undefined {
    const call = this.engine.store.calls.get(connId);
    if (call === undefined) return undefined;
    const view: CallView = {
      connId: call.connId,
      bridgeId: call.bridgeId,
      type: call.type,
      conference: call.conference,
      established: call.established,
      parties: call.parties.map((p) => {
        const party: PartyView = { alias: p.alias, location: p.location, role: p.role, state: p.state, legId: p.legId, held: p.held };
        if (p.dn !== undefined) party.dn = p.dn;
        if (p.trunk !== undefined) party.trunk = p.trunk;
        if (p.listenDisconnected !== undefined) party.listenDisconnectedBy = p.listenDisconnected.by;
        return party;
      }),
    };
    if (call.consultOf !== undefined) view.consultOf = call.consultOf;
    if (call.origin !== undefined) view.originConnId = call.origin.connId;
    return view;
  }

  calls(): CallView[] {
    return [...this.engine.store.calls.keys()].map((connId) => this.call(connId)).filter((c): c is CallView => c !== undefined);
  }

  /** Counts for metrics: calls, conferences, media legs, registered DNs. */
  stats(): { calls: number; conferences: number; legs: number; registeredDns: number } {
    let conferences = 0;
    for (const call of this.engine.store.calls.values()) if (call.conference) conferences += 1;
    return { calls: this.engine.store.calls.size, conferences, legs: this.engine.store.legs.size, registeredDns: this.engine.store.registrations.size };
  }
}
