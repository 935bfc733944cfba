import { describe, expect, it } from 'vitest';
import { Desk, events, Harness, lctOf, MusicHold, summary } from './test-harness.js';

describe('two-party calls', () => {
  it('inbound trunk call to 7001: ringing, answered on the phone, released by the desktop', () => {
    const h = new Harness();
    h.register('7001');
    expect(summary(h.incoming({ trunk: '9000', number: '0611223344' }, '7001'))).toEqual([
      'media bridge.create br-1',
      'sip.connect in leg-1 br-1',
      'sip.connect out leg-2 br-1 7001',
    ]);
    const connId = h.lastConnId();
    expect(h.call(connId)).toMatchObject({ type: 'Inbound', parties: [{ alias: '0611223344', trunk: '9000', role: 'Origination' }, { dn: '7001', role: 'Destination' }] });

    const ring = h.ringing('leg-2');
    expect(summary(ring)).toEqual(['sip.ringing leg-1', 'ev 7001 EventRinging other=0611223344']);
    expect(events(ring)[0]?.event).toMatchObject({ ThisDN: '7001', ConnID: connId, CallType: 'Inbound', ThisDNRole: 'Destination', OtherDNRole: 'Origination' });

    const answer = h.answered('leg-2');
    expect(summary(answer)).toEqual(['sip.answer leg-1', 'ev 7001 EventEstablished other=0611223344', 'ev 7001 EventUserEvent']);

    const release = h.req('ReleaseCall', { ThisDN: '7001', ConnID: connId });
    expect(summary(release)).toEqual([
      'sip.release leg-2',
      'sip.release leg-1',
      'media leg.remove leg-2',
      'media leg.remove leg-1',
      'media bridge.destroy br-1',
      `ev 7001 EventReleased other=0611223344 ref=${h.lastRef()}`,
      'cdr 0000000000000001 Ok',
    ]);
    expect(events(release)[0]?.origin).toEqual(Desk);
    expect(h.model.calls()).toEqual([]);
  });

  it('inbound trunk call released by the trunk side (BYE)', () => {
    const h = new Harness();
    h.register('7001');
    h.incoming({ trunk: '9000', number: '0611223344' }, '7001');
    const connId = h.lastConnId();
    h.answered('leg-2');
    expect(summary(h.bye('leg-1'))).toEqual(['sip.release leg-2', 'media leg.remove leg-1', 'media leg.remove leg-2', 'media bridge.destroy br-1', 'ev 7001 EventReleased other=0611223344', 'cdr 0000000000000001 Ok']);
    expect(h.model.call(connId)).toBeUndefined();
  });

  it('answered without a 180 still reports EventRinging before EventEstablished', () => {
    const h = new Harness();
    h.incoming({ dn: '7001' }, '7002');
    expect(summary(h.answered('leg-2'))).toEqual([
      'sip.answer leg-1',
      'ev 7002 EventRinging other=7001',
      'ev 7002 EventEstablished other=7001',
      'ev 7001 EventEstablished other=7002',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
    ]);
  });

  it('7001 dials 7002 from the phone; 7002 hangs up', () => {
    const h = new Harness();
    const dial = h.incoming({ dn: '7001' }, '7002');
    expect(summary(dial)).toEqual(['media bridge.create br-1', 'sip.connect in leg-1 br-1', 'sip.connect out leg-2 br-1 7002', 'ev 7001 EventDialing other=7002']);
    expect(events(dial)[0]?.event).toMatchObject({ CallType: 'Internal', ThisDNRole: 'Origination', OtherDNRole: 'Destination' });
    const connId = h.lastConnId();
    expect(summary(h.ringing('leg-2'))).toEqual(['sip.ringing leg-1', 'ev 7002 EventRinging other=7001']);
    const est = h.answered('leg-2');
    expect(summary(est)).toEqual([
      'sip.answer leg-1',
      'ev 7002 EventEstablished other=7001',
      'ev 7001 EventEstablished other=7002',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
    ]);
    expect(lctOf(est, '7001')).toEqual({
      LCTParty0: '7001',
      LCTParty0_location: 'SiteA',
      LCTParty0_role: 'Origination',
      LCTParty0_type: 'Extension',
      LCTParty1: '7002',
      LCTParty1_location: 'SiteA',
      LCTParty1_role: 'Destination',
      LCTParty1_type: 'Extension',
      LCTPartiesLength: 2,
    });
    expect(summary(h.bye('leg-2'))).toEqual([
      'sip.release leg-1',
      'media leg.remove leg-2',
      'media leg.remove leg-1',
      'media bridge.destroy br-1',
      'ev 7002 EventReleased other=7001',
      'ev 7001 EventReleased other=7002',
      'cdr 0000000000000001 Ok',
    ]);
    expect(h.model.call(connId)).toBeUndefined();
  });

  it('MakeCall 7001 -> 7002 (3pcc): the caller phone first, then the destination', () => {
    const h = new Harness();
    h.register('7001', '7002');
    const make = h.req('MakeCall', { ThisDN: '7001', OtherDN: '7002' });
    const ref = h.lastRef();
    expect(summary(make)).toEqual(['media bridge.create br-1', 'sip.connect out leg-1 br-1 7001', `ev 7001 EventDialing other=7002 ref=${ref}`]);
    // The phone is asked to show whom it is about to call; 7001 has remote-answer false.
    expect(make[1]).toMatchObject({ kind: 'sip.connect', caller: { alias: '7002', location: 'SiteA' }, autoAnswer: false });
    expect(summary(h.ringing('leg-1'))).toEqual([]);
    const first = h.answered('leg-1');
    expect(summary(first)).toEqual(['sip.connect out leg-2 br-1 7002']);
    expect(first[0]).toMatchObject({ caller: { alias: '7001' } });
    expect(summary(h.ringing('leg-2'))).toEqual(['ev 7002 EventRinging other=7001']);
    expect(summary(h.answered('leg-2'))).toEqual([
      'ev 7002 EventEstablished other=7001',
      'ev 7001 EventEstablished other=7002',
      'ev 7001 EventUserEvent',
      'ev 7002 EventUserEvent',
    ]);
    expect(h.call(h.lastConnId()).parties.map((p) => [p.alias, p.role, p.state])).toEqual([
      ['7001', 'Origination', 'Established'],
      ['7002', 'Destination', 'Established'],
    ]);
  });

  it('MakeCall on a DN whose phone answers remotely asks for auto-answer', () => {
    const h = new Harness();
    h.register('7005');
    expect(h.req('MakeCall', { ThisDN: '7005', OtherDN: '7001' })[1]).toMatchObject({ kind: 'sip.connect', autoAnswer: true });
  });

  it('MakeCall whose caller phone is busy: EventReleased Busy, nothing called', () => {
    const h = new Harness();
    h.register('7001');
    h.req('MakeCall', { ThisDN: '7001', OtherDN: '7002' });
    expect(summary(h.handle({ kind: 'sip.failed', legId: 'leg-1', status: 486 }))).toEqual([
      'media leg.remove leg-1',
      'media bridge.destroy br-1',
      'ev 7001 EventReleased state=Busy',
      'cdr 0000000000000001 Busy',
    ]);
    expect(h.model.calls()).toEqual([]);
  });

  it('destination busy: both desktops get EventReleased Busy, the caller INVITE gets 486', () => {
    const h = new Harness();
    h.incoming({ dn: '7001' }, '7002');
    h.ringing('leg-2');
    expect(summary(h.handle({ kind: 'sip.failed', legId: 'leg-2', status: 486 }))).toEqual([
      'sip.release leg-1 486',
      'media leg.remove leg-2',
      'media leg.remove leg-1',
      'media bridge.destroy br-1',
      'ev 7002 EventReleased other=7001 state=Busy',
      'ev 7001 EventReleased other=7002 state=Busy',
      'cdr 0000000000000001 Busy',
    ]);
  });

  it('caller cancels before the answer', () => {
    const h = new Harness();
    h.incoming({ dn: '7001' }, '7002');
    h.ringing('leg-2');
    expect(summary(h.bye('leg-1'))).toEqual([
      'sip.release leg-2',
      'media leg.remove leg-1',
      'media leg.remove leg-2',
      'media bridge.destroy br-1',
      'ev 7001 EventReleased other=7002',
      'ev 7002 EventReleased other=7001',
      'cdr 0000000000000001 Ok',
    ]);
  });

  it('ReleaseCall while ringing: the called desktop declines (486 to the caller), or the caller abandons (487)', () => {
    const h = new Harness();
    h.register('7001', '7002');
    h.incoming({ dn: '7001' }, '7002');
    h.ringing('leg-2');
    expect(summary(h.req('ReleaseCall', { ThisDN: '7002', ConnID: h.lastConnId() }))).toEqual([
      'sip.release leg-2',
      'sip.release leg-1 486',
      'media leg.remove leg-2',
      'media leg.remove leg-1',
      'media bridge.destroy br-1',
      `ev 7002 EventReleased other=7001 ref=${h.lastRef()}`,
      'ev 7001 EventReleased other=7002 state=Busy',
      'cdr 0000000000000001 Busy',
    ]);
    h.incoming({ dn: '7001' }, '7002');
    h.ringing('leg-4');
    expect(summary(h.req('ReleaseCall', { ThisDN: '7001', ConnID: h.lastConnId() }))).toEqual([
      'sip.release leg-3 487',
      'sip.release leg-4',
      'media leg.remove leg-3',
      'media leg.remove leg-4',
      'media bridge.destroy br-2',
      `ev 7001 EventReleased other=7002 ref=${h.lastRef()}`,
      'ev 7002 EventReleased other=7001',
      'cdr 0000000000000002 Ok',
    ]);
  });

  it('MakeCall to a trunk number: the phone first, then the trunk', () => {
    const h = new Harness();
    h.register('7001');
    const make = h.req('MakeCall', { ThisDN: '7001', OtherDN: '0611' });
    expect(events(make)[0]?.event.CallType).toBe('Outbound');
    expect(summary(h.answered('leg-1'))).toEqual(['sip.connect out leg-2 br-1 9000:0611']);
    expect(summary(h.answered('leg-2'))).toEqual(['ev 7001 EventEstablished other=0611', 'ev 7001 EventUserEvent']);
  });

  it('outbound to a number matching a Trunk prefix goes out on that trunk', () => {
    const h = new Harness();
    const out = h.incoming({ dn: '7001' }, '0145678900');
    expect(summary(out)).toEqual([
      'media bridge.create br-1',
      'sip.connect in leg-1 br-1',
      'sip.connect out leg-2 br-1 9000:0145678900',
      'ev 7001 EventDialing other=0145678900',
    ]);
    expect(events(out)[0]?.event.CallType).toBe('Outbound');
    expect(summary(h.ringing('leg-2'))).toEqual(['sip.ringing leg-1']);
    expect(summary(h.answered('leg-2'))).toEqual(['sip.answer leg-1', 'ev 7001 EventEstablished other=0145678900', 'ev 7001 EventUserEvent']);
    // The longest prefix wins; unknown numbers are refused.
    expect(summary(h.incoming({ dn: '7002' }, '899'))).toContain('sip.connect out leg-4 br-2 9100:899');
    expect(summary(h.incoming({ dn: '7002' }, '5555'))).toEqual(['sip.reject in-3 404']);
    expect(summary(h.incoming({ dn: '7999' }, '7001'))).toEqual(['sip.reject in-4 403']);
    expect(summary(h.incoming({ trunk: '9000', number: '0611' }, '0622'))).toEqual(['sip.reject in-5 404']);
  });

  it('a DN without sip-trunk-access to a carrier trunk cannot call out through it, from its phone or its desktop; an inter-trunk is open', () => {
    const h = new Harness();
    expect(summary(h.incoming({ dn: '7003' }, '0145678900'))).toEqual(['sip.reject in-1 403 DN 7003 may not call out through Trunk 9000']);
    h.register('7003');
    const make = h.req('MakeCall', { ThisDN: '7003', OtherDN: '0611' });
    expect(summary(make)).toEqual(['reply EventError 71']);
    expect(make[0]).toMatchObject({ event: { ErrorCode: 71, ErrorMessage: 'DN 7003 may not call out through Trunk 9000 (SipDN option sip-trunk-access)' } });
    expect(summary(h.incoming({ dn: '7003' }, '8001'))).toContain('sip.connect out leg-2 br-1 9100:8001');
  });
});

describe('hold and retrieve', () => {
  it('the held party hears the default music; the holder hears nothing; retrieve restores both ways', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    const hold = h.req('HoldCall', { ThisDN: '7001', ConnID: connId });
    expect(summary(hold)).toEqual([
      'media leg.flags leg-1 listen=false talk=false',
      'media leg.flags leg-2 listen=false talk=false',
      `media leg.music.play leg-2 ${MusicHold}`,
      `ev 7001 EventHeld other=7002 ref=${h.lastRef()}`,
    ]);
    expect(summary(h.req('HoldCall', { ThisDN: '7001', ConnID: connId }))).toEqual(['reply EventError 43']);
    expect(summary(h.req('RetrieveCall', { ThisDN: '7001', ConnID: connId }))).toEqual([
      'media leg.flags leg-1 listen=true talk=true',
      'media leg.music.stop leg-2',
      'media leg.flags leg-2 listen=true talk=true',
      `ev 7001 EventRetrieved other=7002 ref=${h.lastRef()}`,
    ]);
    expect(summary(h.req('RetrieveCall', { ThisDN: '7001', ConnID: connId }))).toEqual(['reply EventError 43']);
  });

  it('music from the request Extensions; silence for a DN with sip-enable-moh false', () => {
    const h = new Harness();
    h.register('7001', '7005');
    const a = h.phoneCall('7001', '7002');
    expect(summary(h.req('HoldCall', { ThisDN: '7001', ConnID: a, Extensions: { music: 'music/jazz' } }))).toContain('media leg.music.play leg-2 /music/music/jazz.wav');
    const b = h.phoneCall('7001', '7005');
    const hold = h.req('HoldCall', { ThisDN: '7001', ConnID: b });
    expect(summary(hold)).toContain(`media leg.music.play ${h.legOf(b, '7005')} silence`);
  });

  it('a phone that puts the call on hold itself (re-INVITE) gets the same treatment', () => {
    const h = new Harness();
    h.phoneCall('7001', '7002');
    expect(summary(h.handle({ kind: 'sip.hold', legId: 'leg-2' }))).toEqual([
      'media leg.flags leg-1 listen=false talk=false',
      `media leg.music.play leg-1 ${MusicHold}`,
      'media leg.flags leg-2 listen=false talk=false',
      'ev 7002 EventHeld other=7001',
    ]);
    expect(summary(h.handle({ kind: 'sip.retrieve', legId: 'leg-2' }))).toEqual([
      'media leg.music.stop leg-1',
      'media leg.flags leg-1 listen=true talk=true',
      'media leg.flags leg-2 listen=true talk=true',
      'ev 7002 EventRetrieved other=7001',
    ]);
  });
});

describe('AnswerCall', () => {
  it('refused with a clear EventError when the phone does not accept a remote answer', () => {
    const h = new Harness();
    h.register('7002');
    h.incoming({ dn: '7001' }, '7002');
    h.ringing('leg-2');
    const out = h.req('AnswerCall', { ThisDN: '7002', ConnID: h.lastConnId() });
    expect(summary(out)).toEqual(['reply EventError 51']);
    expect(out[0]).toMatchObject({ event: { ErrorMessage: expect.stringContaining('remote-answer') as unknown, ReferenceID: h.lastRef(), ThisDN: '7002' } });
  });

  it('asks the phone to answer; EventEstablished answers the request', () => {
    const h = new Harness();
    h.register('7005');
    h.incoming({ dn: '7001' }, '7005');
    const connId = h.lastConnId();
    h.ringing('leg-2');
    expect(summary(h.req('AnswerCall', { ThisDN: '7005', ConnID: connId }))).toEqual(['sip.remoteAnswer leg-2']);
    const ref = h.lastRef();
    expect(summary(h.answered('leg-2'))).toEqual([
      'sip.answer leg-1',
      `ev 7005 EventEstablished other=7001 ref=${ref}`,
      'ev 7001 EventEstablished other=7005',
      'ev 7001 EventUserEvent',
      'ev 7005 EventUserEvent',
    ]);
    expect(summary(h.req('AnswerCall', { ThisDN: '7005', ConnID: connId }))).toEqual(['reply EventError 43']);
  });
});

describe('registration and QueryCall', () => {
  it('RegisterAddress / UnregisterAddress answer only the requesting client', () => {
    const h = new Harness();
    expect(h.req('RegisterAddress', { ThisDN: '7001' })).toEqual([
      { kind: 'tlib.reply', origin: Desk, event: { event: 'EventRegistered', ReferenceID: h.lastRef(), ThisDN: '7001', Time: h.now } },
    ]);
    expect(summary(h.req('UnregisterAddress', { ThisDN: '7001' }))).toEqual(['reply EventUnregistered']);
    expect(summary(h.req('UnregisterAddress', { ThisDN: '7001' }))).toEqual(['reply EventError 41']);
  });

  it('a client that goes away loses its registrations', () => {
    const h = new Harness();
    h.register('7001');
    expect(h.model.stats().registeredDns).toBe(1);
    // Its gateway unregisters each DN it had, with ReferenceID 0 (tlib-contract.ts).
    expect(summary(h.req('UnregisterAddress', { ThisDN: '7001', ReferenceID: 0 }))).toEqual(['reply EventUnregistered']);
    expect(h.model.stats().registeredDns).toBe(0);
    expect(summary(h.req('MakeCall', { ThisDN: '7001', OtherDN: '7002' }))).toEqual(['reply EventError 41']);
  });

  it('QueryCall answers EventPartyInfo with the parties and their states', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    h.req('HoldCall', { ThisDN: '7001', ConnID: connId });
    const out = h.req('QueryCall', { ThisDN: '7001', ConnID: connId });
    expect(out).toEqual([
      {
        kind: 'tlib.reply',
        origin: Desk,
        event: {
          event: 'EventPartyInfo',
          ReferenceID: h.lastRef(),
          ThisDN: '7001',
          ConnID: connId,
          CallType: 'Internal',
          CallState: 'Ok',
          Time: h.now,
          Parties: [
            { DN: '7001', Role: 'Origination', State: 'Held', Location: 'SiteA' },
            { DN: '7002', Role: 'Destination', State: 'Established', Location: 'SiteA' },
          ],
        },
      },
    ]);
  });

  it('SendUserEvent goes to every DN of the call; the requester gets EventACK', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    const out = h.req('SendUserEvent', { ThisDN: '7001', ConnID: connId, UserData: { note: 'vip' } });
    expect(summary(out)).toEqual(['ev 7001 EventUserEvent', 'ev 7002 EventUserEvent', 'reply EventACK']);
    expect(events(out)[1]?.event).toMatchObject({ ThisDN: '7002', OtherDN: '7001', ConnID: connId, UserData: { note: 'vip' } });
  });
});
