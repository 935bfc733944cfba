/**
 * Test support for the call model: a site like config/local.yaml, a clock, counter ids, and a
 * one-line summary per output so tests can assert exact sequences.
 */
import type { TServerOptions } from '../../common/config/schema.js';
import type { TlibOrigin } from '../../common/nats/tlib-contract.js';
import type { RequestName } from '../../common/tlib/enums.js';
import type { TEvent, TRequest } from '../../common/tlib/messages.js';
import { CallModel } from './call-model.js';
import { counterIds } from './ids.js';
import type { CallView, DnConfig, IdSource, ModelInput, ModelOutput } from './types.js';

export const MusicHold = '/music/on_hold.wav';
export const MusicLD = '/music/listen_disconnect.wav';

function dn(number: string, type: DnConfig['type'], options: Partial<DnConfig['options']> = {}): DnConfig {
  return { number, type, options: { 'sip-enable-moh': true, 'sip-server-inter-trunk': false, 'remote-answer': false, ...options } };
}

/** Site A: 7001-7005 (7001 and 7002 may call out through 9000), Trunk 9000 (prefix 0), inter-trunk 9100 (prefix 8, no music). */
export function siteA(): DnConfig[] {
  return [
    dn('7001', 'Extension', { 'sip-trunk-access': ['9000'] }),
    dn('7002', 'Extension', { 'sip-trunk-access': ['9000'] }),
    dn('7003', 'Extension'),
    dn('7004', 'Extension'),
    dn('7005', 'Extension', { 'sip-enable-moh': false, 'remote-answer': true }),
    dn('9000', 'Trunk', { contact: 'sip:127.0.0.1:5090', prefix: ['0'] }),
    dn('9100', 'Trunk', { contact: 'sip:127.0.0.1:5062', prefix: ['8'], 'sip-server-inter-trunk': true, 'sip-enable-moh': false }),
  ];
}

export const Desk: TlibOrigin = { gateway: 'gw-1', client: 'desk' };

export class Harness {
  readonly options: TServerOptions = {
    'sip-enable-call-info': true,
    'sip-enable-call-info-extended': true,
    'music-listen-disconnect': MusicLD,
    'default-music': MusicHold,
  };
  readonly dns = new Map<string, DnConfig>();
  now = 1_700_000_000_000;
  readonly model: CallModel;
  private ref = 0;
  private sipRef = 0;

  constructor(dns: DnConfig[] = siteA(), location = 'SiteA', ids: IdSource = counterIds()) {
    for (const d of dns) this.dns.set(d.number, d);
    this.model = new CallModel({
      location,
      options: () => ({ ...this.options }),
      dn: (number) => this.dns.get(number),
      trunks: () => [...this.dns.values()].filter((d) => d.type === 'Trunk'),
      resolveMusic: (value) => `/music/${value}.wav`,
      ids,
      clock: () => this.now,
    });
  }

  /** Every input goes through here: afterwards no leg may be left with media out of step with its party. */
  handle(input: ModelInput): ModelOutput[] {
    this.now += 1;
    const outputs = this.model.handle(input);
    const drift = this.model.mediaDrift();
    if (drift.length > 0) throw new Error(`media out of step after ${input.kind}: ${JSON.stringify(drift)}`);
    return outputs;
  }

  /** A T-Library request from Desk; ReferenceID is 100, 101, ... */
  req(name: RequestName, attrs: Partial<TRequest> & Record<string, unknown> = {}, origin: TlibOrigin = Desk): ModelOutput[] {
    this.ref += 1;
    const request = { request: name, ReferenceID: 99 + this.ref, ...attrs } as TRequest;
    return this.handle({ kind: 'tlib.request', request, origin });
  }

  lastRef(): number {
    return 99 + this.ref;
  }

  register(...numbers: string[]): void {
    for (const n of numbers) this.req('RegisterAddress', { ThisDN: n });
  }

  incoming(from: ModelInput & { kind: 'sip.incoming' } extends { from: infer F } ? F : never, to: string): ModelOutput[] {
    this.sipRef += 1;
    return this.handle({ kind: 'sip.incoming', sipRef: `in-${this.sipRef}`, from, to });
  }

  ringing(legId: string): ModelOutput[] {
    return this.handle({ kind: 'sip.ringing', legId });
  }

  answered(legId: string, remote?: { alias?: string; location?: string }): ModelOutput[] {
    return this.handle(remote === undefined ? { kind: 'sip.answered', legId } : { kind: 'sip.answered', legId, remote });
  }

  bye(legId: string): ModelOutput[] {
    return this.handle({ kind: 'sip.released', legId });
  }

  call(connId: string): CallView {
    const call = this.model.call(connId);
    if (call === undefined) throw new Error(`no call ${connId}`);
    return call;
  }

  /** ConnID of the most recently created call. */
  lastConnId(): string {
    const last = this.model.calls().at(-1);
    if (last === undefined) throw new Error('no call');
    return last.connId;
  }

  legOf(connId: string, alias: string): string {
    const party = this.call(connId).parties.find((p) => p.alias === alias);
    if (party === undefined) throw new Error(`no party ${alias} in ${connId}`);
    return party.legId;
  }

  /** Phone `from` calls `to`; the callee answers. Returns the ConnID. */
  phoneCall(from: string, to: string): string {
    this.incoming({ dn: from }, to);
    const connId = this.lastConnId();
    const callee = this.legOf(connId, to);
    this.ringing(callee);
    this.answered(callee);
    return connId;
  }

  /** 7001's phone calls 7002; 7001's desktop (registered here) consults 7003, who answers (its leg is leg-3). */
  answeredConsultation(): { main: string; consult: string } {
    this.register('7001');
    const main = this.phoneCall('7001', '7002');
    this.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7003' });
    const consult = this.lastConnId();
    this.answered('leg-3');
    return { main, consult };
  }

  /** A three-party conference: a's phone calls b, then a's desktop (registered here) adds c single-step. */
  conference3(a = '7001', b = '7002', c = '7003'): string {
    const connId = this.phoneCall(a, b);
    this.register(a);
    this.req('SingleStepConference', { ThisDN: a, ConnID: connId, OtherDN: c });
    const leg = this.legOf(connId, c);
    this.ringing(leg);
    this.answered(leg);
    return connId;
  }
}

export function connIdOf(outputs: ModelOutput[]): string {
  for (const o of outputs) if (o.kind === 'tlib.event' && o.event.ConnID !== undefined) return o.event.ConnID;
  throw new Error('no ConnID in outputs');
}

/** The T-Library events of the outputs (LCTParty EventUserEvents included). */
export function events(outputs: ModelOutput[]): { to: string; event: TEvent; origin?: TlibOrigin }[] {
  return outputs.flatMap((o) => (o.kind === 'tlib.event' ? [{ to: o.to, event: o.event, origin: o.origin }] : []));
}

export function lctOf(outputs: ModelOutput[], to: string): Record<string, string | number | boolean> | undefined {
  return events(outputs).find((e) => e.to === to && e.event.event === 'EventUserEvent')?.event.Extensions;
}

/** One line per output, in order: what tests compare. */
export function summary(outputs: ModelOutput[]): string[] {
  return outputs.map((o) => {
    switch (o.kind) {
      case 'tlib.event': {
        const e = o.event;
        let s = `ev ${o.to} ${e.event}`;
        if (e.event === 'EventUserEvent') return s;
        if (e.OtherDN !== undefined) s += ` other=${e.OtherDN}`;
        if (e.ThirdPartyDN !== undefined) s += ` third=${e.ThirdPartyDN}`;
        if (e.CallState !== undefined && e.CallState !== 'Ok') s += ` state=${e.CallState}`;
        if (e.ReferenceID !== undefined) s += ` ref=${e.ReferenceID}`;
        return s;
      }
      case 'tlib.reply':
        return `reply ${o.event.event}${o.event.ErrorCode === undefined ? '' : ` ${o.event.ErrorCode}`}`;
      case 'media': {
        const c = o.command;
        switch (c.op) {
          case 'bridge.create':
            return `media bridge.create ${c.bridgeId}${o.colocateWith === undefined ? '' : ` with ${o.colocateWith}`}`;
          case 'bridge.destroy':
            return `media bridge.destroy ${c.bridgeId}`;
          case 'leg.move':
            return `media leg.move ${c.legId} ${c.bridgeId}->${c.toBridgeId}`;
          case 'leg.flags':
            return `media leg.flags ${c.legId} listen=${c.listen} talk=${c.talk}`;
          case 'leg.music.play':
            return `media leg.music.play ${c.legId} ${c.file ?? 'silence'}`;
          default:
            return `media ${c.op} ${'legId' in c ? c.legId : c.bridgeId}`;
        }
      }
      case 'sip.connect':
        return o.direction === 'inbound'
          ? `sip.connect in ${o.legId} ${o.bridgeId}`
          : `sip.connect out ${o.legId} ${o.bridgeId} ${'dn' in o.target ? o.target.dn : `${o.target.trunk}:${o.target.number}`}`;
      case 'sip.release':
        return `sip.release ${o.legId}${o.status === undefined ? '' : ` ${o.status}`}`;
      case 'sip.reject':
        return `sip.reject ${o.sipRef} ${o.status}${o.reason ? ` ${o.reason}` : ''}`;
      case 'sip.ringing':
      case 'sip.answer':
      case 'sip.remoteAnswer':
        return `${o.kind} ${o.legId}`;
      case 'sip.partiesReport':
        return `sip.partiesReport ${o.legId} ${o.report.originConnId} ${o.report.parties.map((p) => `${p.peer ? '*' : ''}${p.alias}@${p.location}${p.state ? ' LD' : ''}`).join(',')}`;
      case 'conference.state':
        return `conf ${o.connId} ${o.state} v${o.version}`;
      case 'report':
        return `report ${o.code}`;
      case 'cdr':
        return `cdr ${o.record.connId} ${o.record.release.cause}`;
    }
  });
}
