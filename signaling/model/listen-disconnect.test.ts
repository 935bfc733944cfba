import { describe, expect, it } from 'vitest';
import type { TRequest } from '../../common/tlib/messages.js';
import { Desk, events, Harness, lctOf, MusicLD, summary } from './test-harness.js';

/** 7001 (leg-1) calls 7002 (leg-2), 7001 adds 7003 (leg-3); all three desktops registered. */
function conference(): { h: Harness; connId: string } {
  const h = new Harness();
  h.register('7001', '7002', '7003');
  return { h, connId: h.conference3() };
}

describe('ListenDisconnect / ListenReconnect', () => {
  it('isolates the party with music, tells every desktop, and brings it back', () => {
    const { h, connId } = conference();
    const out = h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
    const ref = h.lastRef();
    expect(summary(out)).toEqual([
      'media leg.flags leg-2 listen=false talk=false',
      `media leg.music.play leg-2 ${MusicLD}`,
      `ev 7001 EventListenDisconnected other=7002 third=7001 state=Held ref=${ref}`,
      'ev 7002 EventListenDisconnected other=7002 third=7001 state=Held',
      'ev 7003 EventListenDisconnected other=7002 third=7001 state=Held',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} full v2`,
    ]);
    expect(events(out)[0]).toMatchObject({ origin: Desk, event: { ThisDN: '7001', ConnID: connId, CallState: 'Held' } });
    expect(events(out)[2]?.event).toMatchObject({ ThisDN: '7003', ConnID: connId, CallState: 'Held' });
    for (const dn of ['7001', '7002', '7003']) {
      expect(lctOf(out, dn)).toEqual({
        LCTParty0: '7001',
        LCTParty0_location: 'SiteA',
        LCTParty0_role: 'ConferenceMember',
        LCTParty0_type: 'Extension',
        LCTParty1: '7002',
        LCTParty1_location: 'SiteA',
        LCTParty1_state: 'ListenDisconnectedHeld',
        LCTParty1_role: 'ConferenceMember',
        LCTParty1_type: 'Extension',
        LCTParty1_disconnectedBy: '7001',
        LCTParty2: '7003',
        LCTParty2_location: 'SiteA',
        LCTParty2_role: 'ConferenceMember',
        LCTParty2_type: 'Extension',
        LCTPartiesLength: 3,
      });
    }
    expect(out.at(-1)).toMatchObject({
      kind: 'conference.state',
      members: [
        { alias: '7001', status: 'connected', media: 'sendrecv' },
        { alias: '7002', status: 'on-hold', media: 'inactive', lctState: 'ListenDisconnectedHeld' },
        { alias: '7003', status: 'connected', media: 'sendrecv' },
      ],
    });

    // Any other agent of the conference may reconnect it.
    const back = h.req('ListenReconnect', { ThisDN: '7003', OtherDN: '7002', ConnID: connId });
    expect(summary(back)).toEqual([
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      `ev 7003 EventListenReconnected other=7002 third=7003 ref=${h.lastRef()}`,
      'ev 7001 EventListenReconnected other=7002 third=7003',
      'ev 7002 EventListenReconnected other=7002 third=7003',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} full v3`,
    ]);
    expect(lctOf(back, '7002')).not.toHaveProperty('LCTParty1_state');
    expect(lctOf(back, '7002')).not.toHaveProperty('LCTParty1_disconnectedBy');
  });

  it('reads music-listen-disconnect at request time: a change applies to the next request', () => {
    const { h, connId } = conference();
    h.options['music-listen-disconnect'] = '/music/first.wav';
    expect(summary(h.req('ListenDisconnect', { ThisDN: '7003', OtherDN: '7001', ConnID: connId }))).toContain('media leg.music.play leg-1 /music/first.wav');
    h.req('ListenReconnect', { ThisDN: '7003', OtherDN: '7001', ConnID: connId });
    h.options['music-listen-disconnect'] = '/music/second.wav';
    expect(summary(h.req('ListenDisconnect', { ThisDN: '7002', OtherDN: '7001', ConnID: connId }))).toContain('media leg.music.play leg-1 /music/second.wav');
  });

  it('plays silence to a party whose DN has sip-enable-moh false', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.conference3('7001', '7002', '7005');
    expect(summary(h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7005', ConnID: connId })).slice(0, 2)).toEqual([
      'media leg.flags leg-3 listen=false talk=false',
      'media leg.music.play leg-3 silence',
    ]);
  });

  it('a media music-error is reported and the party stays isolated', () => {
    const { h, connId } = conference();
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
    const out = h.handle({ kind: 'media.event', event: { kind: 'music-error', instance: 'mc-1', bridgeId: 'br-1', legId: 'leg-2', file: MusicLD, reason: 'unreadable' } });
    expect(out).toEqual([{ kind: 'report', level: 'warn', code: 'music-error', message: expect.stringContaining('7002') as unknown, legId: 'leg-2', connId }]);
    expect(h.call(connId).parties[1]).toMatchObject({ alias: '7002', listenDisconnectedBy: '7001' });
  });
});

describe('option gates', () => {
  for (const [info, extended] of [
    [false, true],
    [true, false],
    [false, false],
  ] as const) {
    it(`sip-enable-call-info=${info} sip-enable-call-info-extended=${extended}: EventError 51, nothing else`, () => {
      const { h, connId } = conference();
      h.options['sip-enable-call-info'] = info;
      h.options['sip-enable-call-info-extended'] = extended;
      const before = h.model.calls();
      for (const name of ['ListenDisconnect', 'ListenReconnect'] as const) {
        const out = h.req(name, { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
        expect(out).toEqual([
          {
            kind: 'tlib.reply',
            origin: Desk,
            event: {
              event: 'EventError',
              ReferenceID: h.lastRef(),
              ThisDN: '7001',
              ConnID: connId,
              ErrorCode: 51,
              ErrorMessage: `${name} needs the options sip-enable-call-info and sip-enable-call-info-extended set to true`,
              Time: h.now,
            },
          },
        ]);
      }
      expect(h.model.calls()).toEqual(before);
    });
  }
});

describe('bad requests: a precise EventError and no change', () => {
  type Case = { name: string; setup?: (h: Harness, connId: string) => void; request: (connId: string) => Partial<TRequest> & Record<string, unknown>; reconnect?: boolean; code: number; message: string };
  const cases: Case[] = [
    {
      name: 'a two-party call',
      setup: (h, connId) => h.req('DeleteFromConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }),
      request: (c) => ({ ThisDN: '7001', OtherDN: '7002', ConnID: c }),
      code: 565,
      message: 'ListenDisconnect needs a conference of three or more parties; call 0000000000000001 has 2',
    },
    { name: 'OtherDN not an alias in the call', request: (c) => ({ ThisDN: '7001', OtherDN: '7004', ConnID: c }), code: 53, message: 'OtherDN 7004 is not a party alias (LCTParty) of call 0000000000000001' },
    { name: 'the requester itself', request: (c) => ({ ThisDN: '7001', OtherDN: '7001', ConnID: c }), code: 53, message: 'OtherDN 7001 is the requester itself' },
    { name: 'an unknown ConnID', request: () => ({ ThisDN: '7001', OtherDN: '7002', ConnID: '00000000000000ff' }), code: 56, message: 'no call with ConnID 00000000000000ff' },
    { name: 'a malformed ConnID', request: () => ({ ThisDN: '7001', OtherDN: '7002', ConnID: 'xyz' }), code: 56, message: 'ConnID xyz is not 16 lowercase hexadecimal digits' },
    {
      name: 'a party already disconnected',
      setup: (h, connId) => h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId }),
      request: (c) => ({ ThisDN: '7003', OtherDN: '7002', ConnID: c }),
      code: 43,
      message: '7002 is already listen-disconnected in call 0000000000000001',
    },
    {
      name: 'reconnecting a party that is not disconnected',
      reconnect: true,
      request: (c) => ({ ThisDN: '7001', OtherDN: '7002', ConnID: c }),
      code: 43,
      message: '7002 is not listen-disconnected in call 0000000000000001',
    },
    { name: 'a requester DN not in the call', request: (c) => ({ ThisDN: '7004', OtherDN: '7002', ConnID: c }), code: 56, message: 'DN 7004 is not a party of call 0000000000000001' },
    {
      name: 'a disconnection that would leave one active party',
      setup: (h, connId) => h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId }),
      request: (c) => ({ ThisDN: '7003', OtherDN: '7001', ConnID: c }),
      code: 565,
      message: 'disconnecting 7001 would leave fewer than two active parties in call 0000000000000001',
    },
    { name: 'a requester DN not registered by this client', request: (c) => ({ ThisDN: '7005', OtherDN: '7002', ConnID: c }), code: 41, message: 'DN 7005 is not registered by this client' },
    { name: 'a requester DN not configured', request: (c) => ({ ThisDN: '7999', OtherDN: '7002', ConnID: c }), code: 59, message: 'DN 7999 is not configured' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { h, connId } = conference();
      h.register('7004');
      c.setup?.(h, connId);
      const before = h.model.calls();
      const name = c.reconnect === true ? 'ListenReconnect' : 'ListenDisconnect';
      const out = h.req(name, c.request(connId));
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({ kind: 'tlib.reply', origin: Desk, event: { event: 'EventError', ReferenceID: h.lastRef(), ErrorCode: c.code } });
      expect(out[0]?.kind === 'tlib.reply' && out[0].event.ErrorMessage).toBe(c.message.replace('ListenDisconnect', name));
      expect(h.model.calls()).toEqual(before);
    });
  }
});

describe('the leaving rule', () => {
  it('the disconnecting agent leaves: with one active party left, a two-party call joins it and the disconnected party', () => {
    const { h, connId } = conference();
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
    const out = h.req('ReleaseCall', { ThisDN: '7001', ConnID: connId });
    const ref = h.lastRef();
    const next = '0000000000000002';
    expect(summary(out)).toEqual([
      'sip.release leg-1',
      'media leg.remove leg-1',
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      `ev 7001 EventReleased ref=${ref}`,
      'ev 7002 EventPartyDeleted other=7001 third=7001',
      'ev 7003 EventPartyDeleted other=7001 third=7001',
      'ev 7003 EventReleased',
      'ev 7002 EventReleased',
      'ev 7003 EventEstablished other=7002',
      'ev 7002 EventEstablished other=7003',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} deleted v3`,
      `cdr ${connId} NewConnID`,
    ]);
    const evs = events(out);
    expect(evs[3]?.event).toMatchObject({ ConnID: connId, CallState: 'Ok' });
    expect(evs[5]?.event).toMatchObject({ ConnID: next, PreviousConnID: connId, ThisDNRole: 'Origination', OtherDNRole: 'Destination' });
    expect(evs[6]?.event).toMatchObject({ ConnID: next, PreviousConnID: connId, ThisDNRole: 'Destination', OtherDNRole: 'Origination' });
    expect(lctOf(out, '7002')).toEqual({
      LCTParty0: '7002',
      LCTParty0_location: 'SiteA',
      LCTParty0_role: 'Destination',
      LCTParty0_type: 'Extension',
      LCTParty1: '7003',
      LCTParty1_location: 'SiteA',
      LCTParty1_role: 'Origination',
      LCTParty1_type: 'Extension',
      LCTPartiesLength: 2,
    });
    expect(h.model.call(connId)).toBeUndefined();
    expect(h.call(next)).toMatchObject({ conference: false, bridgeId: 'br-1', parties: [{ alias: '7002', held: false }, { alias: '7003' }] });
    expect(h.call(next).parties[0]?.listenDisconnectedBy).toBeUndefined();
    // The new call is a plain call: the old ConnID is gone, and it ends like any two-party call.
    expect(summary(h.req('ListenDisconnect', { ThisDN: '7003', OtherDN: '7002', ConnID: connId }))).toEqual(['reply EventError 56']);
    expect(summary(h.bye('leg-2'))).toEqual(['sip.release leg-3', 'media leg.remove leg-2', 'media leg.remove leg-3', 'media bridge.destroy br-1', 'ev 7002 EventReleased other=7003', 'ev 7003 EventReleased other=7002', `cdr ${next} Ok`]);
  });

  it('with two active parties left the party stays disconnected until one of them leaves', () => {
    const { h, connId } = conference();
    h.register('7004');
    h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7004' });
    h.answered('leg-4');
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });

    const first = h.req('ReleaseCall', { ThisDN: '7001', ConnID: connId });
    expect(summary(first)).toEqual([
      'sip.release leg-1',
      'media leg.remove leg-1',
      `ev 7001 EventReleased ref=${h.lastRef()}`,
      'ev 7002 EventPartyDeleted other=7001 third=7001',
      'ev 7003 EventPartyDeleted other=7001 third=7001',
      'ev 7004 EventPartyDeleted other=7001 third=7001',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      'ev 7004 EventUserEvent',
      `conf ${connId} full v4`,
    ]);
    expect(lctOf(first, '7003')).toMatchObject({ LCTParty0: '7002', LCTParty0_state: 'ListenDisconnectedHeld', LCTParty0_disconnectedBy: '7001', LCTPartiesLength: 3 });

    const second = h.bye('leg-4');
    expect(summary(second)).toEqual([
      'media leg.remove leg-4',
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      'ev 7004 EventReleased',
      'ev 7002 EventPartyDeleted other=7004 third=7004',
      'ev 7003 EventPartyDeleted other=7004 third=7004',
      'ev 7003 EventReleased',
      'ev 7002 EventReleased',
      'ev 7003 EventEstablished other=7002',
      'ev 7002 EventEstablished other=7003',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} deleted v5`,
      `cdr ${connId} NewConnID`,
    ]);
  });

  it('a party still ringing into the conference is dropped, its requester told', () => {
    const { h, connId } = conference();
    h.register('7004');
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
    h.req('SingleStepConference', { ThisDN: '7003', ConnID: connId, OtherDN: '7004' });
    const addRef = h.lastRef();
    h.ringing('leg-4');
    const out = h.req('ReleaseCall', { ThisDN: '7001', ConnID: connId });
    expect(summary(out)).toEqual([
      'sip.release leg-1',
      'sip.release leg-4',
      'media leg.remove leg-1',
      'media leg.remove leg-4',
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      `ev 7001 EventReleased ref=${h.lastRef()}`,
      'ev 7002 EventPartyDeleted other=7001 third=7001',
      'ev 7003 EventPartyDeleted other=7001 third=7001',
      `ev 7003 EventError other=7004 ref=${addRef}`,
      'ev 7004 EventReleased',
      'ev 7003 EventReleased',
      'ev 7002 EventReleased',
      'ev 7003 EventEstablished other=7002',
      'ev 7002 EventEstablished other=7003',
      'ev 7002 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} deleted v4`,
      `cdr ${connId} NewConnID`,
    ]);
    expect(events(out)[3]?.event.ErrorMessage).toBe(`7004 did not join the conference: call ${connId} ended before it answered`);
    expect(h.model.calls().map((c) => c.parties.map((p) => p.alias))).toEqual([['7002', '7003']]);
  });

  it('a four-party conference with a trunk party: deletions down to one active party reunite it with the disconnected trunk party', () => {
    const { h, connId } = conference();
    h.req('InitiateConference', { ThisDN: '7001', ConnID: connId, OtherDN: '0611' });
    h.answered('leg-4');
    h.req('CompleteConference', { ThisDN: '7001', ConnID: connId });
    h.req('HoldCall', { ThisDN: '7002', ConnID: connId });
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '0611', ConnID: connId });
    h.req('DeleteFromConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' });
    // 7001 and 7002 (holding) are still active: the trunk party stays disconnected.
    expect(h.call(connId).parties.map((p) => [p.alias, p.listenDisconnectedBy ?? ''])).toEqual([
      ['7001', ''],
      ['7002', ''],
      ['0611', '7001'],
    ]);
    const ref = h.lastRef() + 1;
    expect(summary(h.req('DeleteFromConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7002' }))).toEqual([
      'sip.release leg-2',
      'media leg.remove leg-2',
      'media leg.music.stop leg-4',
      'media leg.flags leg-4 listen=true talk=true',
      'ev 7002 EventReleased third=7001',
      `ev 7001 EventPartyDeleted other=7002 third=7001 ref=${ref}`,
      `ev 7001 EventReleased ref=${ref}`,
      `ev 7001 EventEstablished other=0611 ref=${ref}`,
      'ev 7001 EventUserEvent',
      `conf ${connId} deleted v7`,
      `cdr ${connId} NewConnID`,
    ]);
    expect(h.model.calls()).toMatchObject([{ conference: false, parties: [{ alias: '7001', role: 'Origination' }, { alias: '0611', trunk: '9000', role: 'Destination' }] }]);
  });

  it('the disconnected party itself leaving needs no rule', () => {
    const { h, connId } = conference();
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId });
    expect(summary(h.bye('leg-2'))).toEqual([
      'media leg.remove leg-2',
      'ev 7002 EventReleased',
      'ev 7001 EventPartyDeleted other=7002 third=7002',
      'ev 7003 EventPartyDeleted other=7002 third=7002',
      'ev 7001 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} full v3`,
    ]);
    expect(h.call(connId).parties.map((p) => p.alias)).toEqual(['7001', '7003']);
  });
});

describe('multi-site: a party reached over the inter-trunk', () => {
  it('shows with its remote alias and location, and is isolated in silence (sip-enable-moh false on the inter-trunk)', () => {
    const h = new Harness();
    h.register('7001', '7002');
    h.incoming({ trunk: '9100', number: '7101', alias: '7101', location: 'SiteB' }, '7001');
    const connId = h.lastConnId();
    expect(summary(h.answered('leg-2'))).toEqual([
      'sip.answer leg-1',
      'ev 7001 EventRinging other=7101',
      'ev 7001 EventEstablished other=7101',
      'ev 7001 EventUserEvent',
      // Site B is told how site A sees the call; the entry marked * is site B's own side.
      `sip.partiesReport leg-1 ${connId} *7101@SiteB,7001@SiteA`,
    ]);
    h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7002' });
    const joined = h.answered('leg-3');
    expect(lctOf(joined, '7002')).toEqual({
      LCTParty0: '7101',
      LCTParty0_location: 'SiteB',
      LCTParty0_role: 'ConferenceMember',
      LCTParty0_type: 'InterTrunk',
      LCTParty0_trunk: '9100',
      LCTParty1: '7001',
      LCTParty1_location: 'SiteA',
      LCTParty1_role: 'ConferenceMember',
      LCTParty1_type: 'Extension',
      LCTParty2: '7002',
      LCTParty2_location: 'SiteA',
      LCTParty2_role: 'ConferenceMember',
      LCTParty2_type: 'Extension',
      LCTPartiesLength: 3,
    });
    const out = h.req('ListenDisconnect', { ThisDN: '7002', OtherDN: '7101', ConnID: connId });
    expect(summary(out)).toEqual([
      'media leg.flags leg-1 listen=false talk=false',
      'media leg.music.play leg-1 silence',
      `ev 7002 EventListenDisconnected other=7101 third=7002 state=Held ref=${h.lastRef()}`,
      'ev 7001 EventListenDisconnected other=7101 third=7002 state=Held',
      // LCTParty updates go in join order, whoever asked.
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
      `sip.partiesReport leg-1 ${connId} *7101@SiteB LD,7001@SiteA,7002@SiteA`,
      `conf ${connId} full v2`,
    ]);
    expect(lctOf(out, '7001')).toMatchObject({ LCTParty0: '7101', LCTParty0_location: 'SiteB', LCTParty0_state: 'ListenDisconnectedHeld' });
  });

  it('a party called out over the inter-trunk takes the identity the far site answers with', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '87102' });
    const joined = h.answered('leg-3', { alias: '7102', location: 'SiteB' });
    expect(summary(joined)[0]).toBe(`ev 7001 EventPartyAdded other=7102 third=7001 ref=${h.lastRef()}`);
    expect(lctOf(joined, '7002')).toMatchObject({ LCTParty2: '7102', LCTParty2_location: 'SiteB', LCTParty2_type: 'InterTrunk' });
    expect(summary(h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7102', ConnID: connId })).slice(0, 2)).toEqual([
      'media leg.flags leg-3 listen=false talk=false',
      'media leg.music.play leg-3 silence',
    ]);
  });
});
