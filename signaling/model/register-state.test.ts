import { describe, expect, it } from 'vitest';
import type { TlibOrigin } from '../../common/nats/tlib-contract.js';
import { Harness } from './test-harness.js';

const Reconnected: TlibOrigin = { gateway: 'gw-2', client: 'desk-again' };

describe('RegisterAddress while the DN is in a call', () => {
  it('answers with EventRegistered, then the state of each call: EventPartyInfo and the LCTParty list', () => {
    const h = new Harness();
    h.register('7001', '7002', '7003');
    const connId = h.conference3();
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
    const out = h.req('RegisterAddress', { ThisDN: '7003' }, Reconnected);
    const ref = h.lastRef();
    expect(out.map((o) => (o.kind === 'tlib.reply' ? o.event.event : o.kind))).toEqual(['EventRegistered', 'EventPartyInfo', 'EventUserEvent']);
    expect(out.every((o) => o.kind === 'tlib.reply' && o.origin === Reconnected && o.event.ReferenceID === ref)).toBe(true);
    const [, info, lct] = out.map((o) => (o.kind === 'tlib.reply' ? o.event : undefined));
    expect(info).toMatchObject({ ConnID: connId, ThisDN: '7003' });
    expect(info?.Parties?.map((p) => [p.DN, p.State])).toEqual([
      ['7001', 'Established'],
      ['7002', 'ListenDisconnectedHeld'],
      ['7003', 'Established'],
    ]);
    expect(lct?.Extensions).toMatchObject({ LCTPartiesLength: 3, LCTParty1: '7002', LCTParty1_state: 'ListenDisconnectedHeld' });
  });

  it('a DN in no call gets EventRegistered alone', () => {
    const h = new Harness();
    h.register('7001');
    expect(h.req('RegisterAddress', { ThisDN: '7004' }, Reconnected).map((o) => (o.kind === 'tlib.reply' ? o.event.event : o.kind))).toEqual(['EventRegistered']);
  });
});

describe('gateways that go away', () => {
  it('a gateway gone ends the registrations of its clients only', () => {
    const h = new Harness();
    const viaOne: TlibOrigin = { gateway: 'gw-1', client: 'a' };
    const viaTwo: TlibOrigin = { gateway: 'gw-2', client: 'b' };
    h.req('RegisterAddress', { ThisDN: '7001' }, viaOne);
    h.req('RegisterAddress', { ThisDN: '7002' }, viaOne);
    h.req('RegisterAddress', { ThisDN: '7001' }, viaTwo);
    expect(h.model.stats().registeredDns).toBe(2);
    expect(h.handle({ kind: 'tlib.gatewayGone', gateway: 'gw-1' })).toEqual([]);
    expect(h.model.stats().registeredDns).toBe(1);
    const refused = h.req('HoldCall', { ThisDN: '7001', ConnID: '0000000000000009' }, viaOne);
    expect(refused.map((o) => (o.kind === 'tlib.reply' ? o.event.ErrorCode : undefined))).toEqual([41]);
    // A client that goes away: its gateway unregisters each of its DNs with ReferenceID 0.
    h.req('UnregisterAddress', { ThisDN: '7001', ReferenceID: 0 }, viaTwo);
    expect(h.model.stats().registeredDns).toBe(0);
  });
});
