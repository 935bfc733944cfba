/**
 * The SIP Server call model: a pure state machine. `handle(input)` applies one input (a T-Library
 * request, a SIP fact, a media fact) and returns what the adapters must do, in order. No I/O, no
 * timers, no clock or randomness of its own: all of that comes from ModelEnv.
 */
import type { MediaCommand } from '../../common/nats/media-contract.js';
import { errorEvent } from '../../common/tlib/errors.js';
import { Engine } from './engine.js';
import { RequestError } from './errors.js';
import { applyRequest, checkRequest, connIdOf } from './requests.js';
import { applyFact } from './sip-facts.js';
import { originKey } from './state.js';
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
