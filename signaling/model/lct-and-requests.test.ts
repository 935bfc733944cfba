import { describe, expect, it } from 'vitest';
import { Desk, events, Harness, lctOf, summary } from './test-harness.js';

describe('LCTParty (Call Participant Info)', () => {
  it('sip-enable-call-info false: no LCTParty EventUserEvent at all', () => {
    const h = new Harness();
    h.options['sip-enable-call-info'] = false;
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' });
    const joined = h.answered('leg-3');
    expect(events(joined).filter((e) => e.event.event === 'EventUserEvent')).toEqual([]);
    expect(summary(h.bye('leg-3')).filter((l) => l.includes('EventUserEvent'))).toEqual([]);
  });

  it('without sip-enable-call-info-extended only the base keys are sent', () => {
    const h = new Harness();
    h.options['sip-enable-call-info-extended'] = false;
    h.incoming({ trunk: '9000', number: '0611' }, '7001');
    const out = h.answered('leg-2');
    expect(lctOf(out, '7001')).toEqual({ LCTParty0: '0611', LCTParty0_location: 'SiteA', LCTParty1: '7001', LCTParty1_location: 'SiteA', LCTPartiesLength: 2 });
    expect(events(out).at(-1)?.event).toMatchObject({ event: 'EventUserEvent', ThisDN: '7001', ConnID: h.lastConnId() });
    expect(events(out).at(-1)?.event.ReferenceID).toBeUndefined();
  });

  it('a party behind a plain trunk is listed with this site and its trunk', () => {
    const h = new Harness();
    h.incoming({ trunk: '9000', number: '0611' }, '7001');
    expect(lctOf(h.answered('leg-2'), '7001')).toMatchObject({ LCTParty0: '0611', LCTParty0_location: 'SiteA', LCTParty0_type: 'Trunk', LCTParty0_trunk: '9000', LCTParty0_role: 'Origination' });
  });

  it('ringing parties are not listed until they answer; leavers are removed and the list renumbered', () => {
    const h = new Harness();
    h.register('7001');
    const connId = h.phoneCall('7001', '7002');
    h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' });
    expect(summary(h.ringing('leg-3'))).toEqual(['ev 7003 EventRinging other=7001 third=7001']);
    h.answered('leg-3');
    const left = h.bye('leg-1');
    expect(lctOf(left, '7003')).toMatchObject({ LCTParty0: '7002', LCTParty1: '7003', LCTPartiesLength: 2 });
    expect(lctOf(left, '7003')).not.toHaveProperty('LCTParty2');
  });
});

describe('request checks', () => {
  function refused(h: Harness, out: ReturnType<Harness['req']>, code: number, message: string): void {
    expect(out).toEqual([
      {
        kind: 'tlib.reply',
        origin: Desk,
        event: expect.objectContaining({ event: 'EventError', ReferenceID: h.lastRef(), ErrorCode: code, ErrorMessage: message }) as unknown,
      },
    ]);
  }

  it('RegisterAddress of a DN that is not configured: 59', () => {
    const h = new Harness();
    refused(h, h.req('RegisterAddress', { ThisDN: '7999' }), 59, 'DN 7999 is not configured');
  });

  it('MakeCall to nowhere or to itself: 71; from a Trunk DN: 51', () => {
    const h = new Harness();
    h.register('7001', '9000');
    refused(h, h.req('MakeCall', { ThisDN: '7001', OtherDN: '5555' }), 71, '5555 is neither a DN of this site nor a number matching a Trunk prefix');
    refused(h, h.req('MakeCall', { ThisDN: '7001', OtherDN: '7001' }), 71, 'DN 7001 cannot call itself');
    refused(h, h.req('MakeCall', { ThisDN: '9000', OtherDN: '7001' }), 51, 'MakeCall needs ThisDN to be an Extension or ACDPosition; 9000 is not');
    expect(h.model.calls()).toEqual([]);
  });

  it('call requests on a call the DN is not in, or an unknown ConnID: 56', () => {
    const h = new Harness();
    h.register('7003');
    const connId = h.phoneCall('7001', '7002');
    refused(h, h.req('HoldCall', { ThisDN: '7003', ConnID: connId }), 56, `DN 7003 is not a party of call ${connId}`);
    refused(h, h.req('ReleaseCall', { ThisDN: '7003', ConnID: 'abcdefabcdefabcd' }), 56, 'no call with ConnID abcdefabcdefabcd');
    refused(h, h.req('SendUserEvent', { ThisDN: '7003', ConnID: connId }), 56, `DN 7003 is not a party of call ${connId}`);
    refused(h, h.req('QueryCall', { ConnID: 'abcdefabcdefabcd' }), 56, 'no call with ConnID abcdefabcdefabcd');
  });

  it('QueryCall on a call the DN is not in: 56; a supervisor client may query any call', () => {
    const h = new Harness();
    h.register('7003');
    const connId = h.phoneCall('7001', '7002');
    refused(h, h.req('QueryCall', { ThisDN: '7003', ConnID: connId }), 56, `DN 7003 is not a party of call ${connId}`);
    const supervisor = { gateway: 'gw-1', client: 'supervisor', supervisor: true };
    h.req('RegisterAddress', { ThisDN: '7003' }, supervisor);
    const out = h.req('QueryCall', { ThisDN: '7003', ConnID: connId }, supervisor);
    expect(out).toMatchObject([{ kind: 'tlib.reply', origin: supervisor, event: { event: 'EventPartyInfo', ConnID: connId, Parties: [{ DN: '7001' }, { DN: '7002' }] } }]);
  });

  it('AnswerCall by the caller: 565', () => {
    const h = new Harness();
    h.register('7005');
    h.incoming({ dn: '7005' }, '7002');
    refused(h, h.req('AnswerCall', { ThisDN: '7005', ConnID: h.lastConnId() }), 565, `DN 7005 is not ringing in call ${h.lastConnId()}`);
  });

  it('a refused request changes nothing: same outputs afterwards as without it', () => {
    const run = (withBadRequests: boolean): unknown[] => {
      const h = new Harness();
      h.register('7001');
      const connId = h.phoneCall('7001', '7002');
      if (withBadRequests) {
        h.req('InitiateConference', { ThisDN: '7001', ConnID: connId, OtherDN: '5555' });
        h.req('DeleteFromConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7002' });
        h.req('RetrieveCall', { ThisDN: '7001', ConnID: connId });
        h.now -= 3;
      }
      return [h.req('HoldCall', { ThisDN: '7001', ConnID: connId }).map((o) => (o.kind === 'tlib.event' ? { ...o, event: { ...o.event, ReferenceID: 0 } } : o)), h.bye('leg-2')];
    };
    expect(run(true)).toEqual(run(false));
  });
});

describe('media facts', () => {
  it('a failed media leg ends the party: its dialog is released, its leg is not removed again', () => {
    const h = new Harness();
    const connId = h.conference3();
    const out = h.handle({ kind: 'media.event', event: { kind: 'leg-failed', instance: 'mc-1', bridgeId: 'br-1', legId: 'leg-2', reason: 'rtpengine gone' } });
    expect(summary(out)).toEqual([
      'sip.release leg-2',
      'ev 7002 EventReleased state=GeneralError',
      'ev 7001 EventPartyDeleted other=7002 third=7002',
      'ev 7003 EventPartyDeleted other=7002 third=7002',
      'ev 7001 EventUserEvent',
      'ev 7003 EventUserEvent',
      `conf ${connId} full v2`,
      'report leg-failed',
    ]);
  });
});

describe('stale facts', () => {
  it('a fact about a leg already gone is reported and changes nothing', () => {
    const h = new Harness();
    h.phoneCall('7001', '7002');
    h.bye('leg-2');
    expect(h.bye('leg-1')).toEqual([{ kind: 'report', level: 'info', code: 'stale-leg', message: 'sip.released for leg leg-1, which is gone or not in that state', legId: 'leg-1' }]);
    expect(summary(h.answered('leg-2'))).toEqual(['report stale-leg']);
    expect(h.model.stats()).toEqual({ calls: 0, conferences: 0, legs: 0, registeredDns: 0 });
  });
});

describe('determinism', () => {
  it('the same inputs give the same outputs', () => {
    const run = (): unknown[] => {
      const h = new Harness();
      h.register('7001', '7002', '7003');
      const connId = h.conference3();
      return [h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId }), h.req('ReleaseCall', { ThisDN: '7001', ConnID: connId }), h.model.calls()];
    };
    expect(run()).toEqual(run());
  });
});
