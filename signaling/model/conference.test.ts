import { describe, expect, it } from 'vitest';
import { events, Harness, lctOf, MusicHold, summary } from './test-harness.js';

describe('consultation and conference (InitiateConference + CompleteConference)', () => {
  it('holds the main call, consults on a new bridge beside it, then merges into one conference', () => {
    const h = new Harness();
    h.register('7001', '7002', '7003');
    const main = h.phoneCall('7001', '7002');

    const init = h.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7003' });
    const ref = h.lastRef();
    expect(summary(init)).toEqual([
      'media bridge.create br-2 with br-1',
      'sip.connect out leg-3 br-2 7003',
      'media leg.move leg-1 br-1->br-2',
      'media leg.flags leg-2 listen=false talk=false',
      `media leg.music.play leg-2 ${MusicHold}`,
      'media leg.flags leg-1 listen=true talk=true',
      `ev 7001 EventHeld other=7002 ref=${ref}`,
      `ev 7001 EventDialing other=7003 ref=${ref}`,
    ]);
    const consult = h.lastConnId();
    expect(consult).not.toBe(main);
    expect(events(init)[1]?.event).toMatchObject({ ConnID: consult, CallType: 'Consult' });
    expect(h.call(consult).consultOf).toBe(main);

    expect(summary(h.ringing('leg-3'))).toEqual(['ev 7003 EventRinging other=7001']);
    expect(summary(h.answered('leg-3'))).toEqual([
      'ev 7003 EventEstablished other=7001',
      'ev 7001 EventEstablished other=7003',
      'ev 7001 EventUserEvent',
      'ev 7003 EventUserEvent',
    ]);

    const complete = h.req('CompleteConference', { ThisDN: '7001', ConnID: consult });
    const cref = h.lastRef();
    expect(summary(complete)).toEqual([
      'media leg.move leg-3 br-2->br-1',
      'media leg.move leg-1 br-2->br-1',
      'media leg.flags leg-1 listen=true talk=true',
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      'media leg.flags leg-3 listen=true talk=true',
      'media bridge.destroy br-2',
      `ev 7001 EventReleased other=7003 state=Conferenced ref=${cref}`,
      `ev 7001 EventRetrieved ref=${cref}`,
      'ev 7003 EventPartyChanged other=7001 third=7001 state=Conferenced',
      `ev 7001 EventPartyAdded other=7003 third=7001 ref=${cref}`,
      'ev 7002 EventPartyAdded other=7003 third=7001',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${main} full v1`,
      `cdr ${consult} Conferenced`,
    ]);
    const changed = events(complete).find((e) => e.event.event === 'EventPartyChanged')?.event;
    expect(changed).toMatchObject({ ConnID: main, PreviousConnID: consult });
    expect(h.model.call(consult)).toBeUndefined();
    expect(h.call(main)).toMatchObject({ conference: true, parties: [{ alias: '7001' }, { alias: '7002' }, { alias: '7003' }] });
    expect(lctOf(complete, '7003')).toMatchObject({ LCTParty0: '7001', LCTParty1: '7002', LCTParty2: '7003', LCTPartiesLength: 3, LCTParty2_role: 'ConferenceMember' });
  });

  it('the consultation ends before completion: the consulting phone goes back to its held call', () => {
    const h = new Harness();
    const { main, consult } = h.answeredConsultation();
    // While consulting, the held call cannot be retrieved nor the consultation completed twice.
    expect(summary(h.req('RetrieveCall', { ThisDN: '7001', ConnID: main }))).toEqual(['reply EventError 565']);
    expect(summary(h.bye('leg-3'))).toEqual([
      'media leg.remove leg-3',
      'media leg.move leg-1 br-2->br-1',
      'media leg.flags leg-1 listen=false talk=false',
      'media bridge.destroy br-2',
      'ev 7003 EventReleased other=7001',
      'ev 7001 EventReleased other=7003',
      'cdr 0000000000000002 Ok',
    ]);
    expect(h.model.call(consult)).toBeUndefined();
    expect(summary(h.req('CompleteConference', { ThisDN: '7001', ConnID: main }))).toEqual(['reply EventError 565']);
    expect(summary(h.req('RetrieveCall', { ThisDN: '7001', ConnID: main }))).toEqual([
      'media leg.flags leg-1 listen=true talk=true',
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      `ev 7001 EventRetrieved other=7002 ref=${h.lastRef()}`,
    ]);
  });

  it('CompleteConference before the consulted party answers is refused and changes nothing', () => {
    const h = new Harness();
    h.register('7001');
    const main = h.phoneCall('7001', '7002');
    h.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7003' });
    const before = h.model.calls();
    expect(summary(h.req('CompleteConference', { ThisDN: '7001', ConnID: main }))).toEqual(['reply EventError 565']);
    expect(h.model.calls()).toEqual(before);
  });

  it('the held party hangs up during the consultation: the consultation goes on as a plain call', () => {
    const h = new Harness();
    const { main, consult } = h.answeredConsultation();
    expect(summary(h.bye('leg-2'))).toEqual(['media leg.remove leg-2', 'media bridge.destroy br-1', 'ev 7002 EventReleased other=7001', 'ev 7001 EventReleased other=7002', `cdr ${main} Ok`]);
    expect(h.call(consult).consultOf).toBeUndefined();
    expect(summary(h.bye('leg-1'))).toEqual(['sip.release leg-3', 'media leg.remove leg-1', 'media leg.remove leg-3', 'media bridge.destroy br-2', 'ev 7001 EventReleased other=7003', 'ev 7003 EventReleased other=7001', `cdr ${consult} Ok`]);
  });

  it('the consulting phone hangs up: it leaves both calls, its leg is removed once', () => {
    const h = new Harness();
    h.register('7001');
    const main = h.phoneCall('7001', '7002');
    h.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7003' });
    h.answered('leg-3');
    expect(summary(h.bye('leg-1'))).toEqual([
      'sip.release leg-2',
      'sip.release leg-3',
      'media leg.remove leg-2',
      'media leg.remove leg-1',
      'media leg.remove leg-3',
      'media bridge.destroy br-1',
      'media bridge.destroy br-2',
      'ev 7001 EventReleased other=7002',
      'ev 7002 EventReleased other=7001',
      'ev 7001 EventReleased other=7003',
      'ev 7003 EventReleased other=7001',
      'cdr 0000000000000001 Ok',
      'cdr 0000000000000002 Ok',
    ]);
    expect(h.model.calls()).toEqual([]);
  });
});

describe('SingleStepConference', () => {
  it('adds a party directly: EventPartyAdded answers the request when it answers', () => {
    const h = new Harness();
    h.register('7001', '7002', '7003');
    const connId = h.phoneCall('7001', '7002');
    expect(summary(h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }))).toEqual(['sip.connect out leg-3 br-1 7003']);
    const ref = h.lastRef();
    expect(summary(h.ringing('leg-3'))).toEqual(['ev 7003 EventRinging other=7001 third=7001']);
    const joined = h.answered('leg-3');
    expect(summary(joined)).toEqual([
      'ev 7003 EventEstablished other=7001 third=7001',
      `ev 7001 EventPartyAdded other=7003 third=7001 ref=${ref}`,
      'ev 7002 EventPartyAdded other=7003 third=7001',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} full v1`,
    ]);
    expect(events(joined)[1]?.event).toMatchObject({ OtherDNRole: 'NewParty', ThirdPartyDNRole: 'AddedBy', ConnID: connId });
    expect(joined.at(-1)).toEqual({
      kind: 'conference.state',
      connId,
      version: 1,
      state: 'full',
      members: ['7001', '7002', '7003'].map((dn) => ({ alias: dn, dn, location: 'SiteA', role: 'ConferenceMember', status: 'connected', media: 'sendrecv' })),
    });
  });

  it('the added party answered through AnswerCall: each request gets its own answer', () => {
    const h = new Harness();
    h.register('7001', '7005');
    const connId = h.phoneCall('7001', '7002');
    h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7005' });
    const addRef = h.lastRef();
    h.ringing('leg-3');
    expect(summary(h.req('AnswerCall', { ThisDN: '7005', ConnID: connId }))).toEqual(['sip.remoteAnswer leg-3']);
    const answerRef = h.lastRef();
    expect(summary(h.answered('leg-3')).slice(0, 3)).toEqual([
      `ev 7005 EventEstablished other=7001 third=7001 ref=${answerRef}`,
      `ev 7001 EventPartyAdded other=7005 third=7001 ref=${addRef}`,
      'ev 7002 EventPartyAdded other=7005 third=7001',
    ]);
  });

  it('the added party is busy: EventError to the requester, the call is unchanged', () => {
    const h = new Harness();
    h.register('7002');
    const connId = h.phoneCall('7001', '7002');
    h.req('SingleStepConference', { ThisDN: '7002', ConnID: connId, OtherDN: '7004' });
    const ref = h.lastRef();
    const out = h.handle({ kind: 'sip.failed', legId: 'leg-3', status: 486 });
    expect(summary(out)).toEqual(['media leg.remove leg-3', `ev 7002 EventError other=7004 ref=${ref}`]);
    expect(events(out)[0]?.event).toMatchObject({ ErrorCode: 566, ConnID: connId });
    expect(h.call(connId).parties.map((p) => p.alias)).toEqual(['7001', '7002']);
  });

  it('refuses a destination already in the call, and an unknown number', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    expect(summary(h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7002' }))).toEqual(['reply EventError 53']);
    expect(summary(h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '5555' }))).toEqual(['reply EventError 71']);
  });
});

describe('leaving a conference', () => {
  it('DeleteFromConference removes the party; the others get EventPartyDeleted', () => {
    const h = new Harness();
    h.register('7002');
    const connId = h.conference3();
    const out = h.req('DeleteFromConference', { ThisDN: '7002', ConnID: connId, OtherDN: '7003' });
    expect(summary(out)).toEqual([
      'sip.release leg-3',
      'media leg.remove leg-3',
      'ev 7003 EventReleased third=7002',
      `ev 7002 EventPartyDeleted other=7003 third=7002 ref=${h.lastRef()}`,
      'ev 7001 EventPartyDeleted other=7003 third=7002',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
      `conf ${connId} full v2`,
    ]);
    expect(events(out)[1]?.event).toMatchObject({ OtherDNRole: 'DeletedParty', ThirdPartyDNRole: 'DeletedBy' });
    expect(lctOf(out, '7001')).toMatchObject({ LCTParty0: '7001', LCTParty1: '7002', LCTPartiesLength: 2 });
    // With two parties left it is no longer a conference of three.
    expect(summary(h.req('DeleteFromConference', { ThisDN: '7002', ConnID: connId, OtherDN: '7001' }))).toEqual(['reply EventError 565']);
  });

  it('a phone hanging up mid-conference leaves the other two talking', () => {
    const h = new Harness();
    const connId = h.conference3();
    expect(summary(h.bye('leg-2'))).toEqual([
      'media leg.remove leg-2',
      'ev 7002 EventReleased',
      'ev 7001 EventPartyDeleted other=7002 third=7002',
      'ev 7003 EventPartyDeleted other=7002 third=7002',
      'ev 7001 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} full v2`,
    ]);
    expect(summary(h.bye('leg-3'))).toEqual([
      'sip.release leg-1',
      'media leg.remove leg-3',
      'media leg.remove leg-1',
      'media bridge.destroy br-1',
      'ev 7003 EventReleased other=7001',
      'ev 7001 EventReleased other=7003',
      `conf ${connId} deleted v3`,
      `cdr ${connId} Ok`,
    ]);
  });

  it('hold inside a conference isolates the holder only; nobody gets music', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.conference3();
    expect(summary(h.req('HoldCall', { ThisDN: '7001', ConnID: connId }))).toEqual([
      'media leg.flags leg-1 listen=false talk=false',
      `ev 7001 EventHeld ref=${h.lastRef()}`,
      `conf ${connId} full v2`,
    ]);
  });
});
