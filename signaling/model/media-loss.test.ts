import { describe, expect, it } from 'vitest';
import { Harness, summary } from './test-harness.js';

const lost = (bridgeId: string) => ({ kind: 'media.bridgeLost', bridgeId, instance: 'mc-1', reason: 'silent for 1500 ms' }) as const;

describe('a media bridge lost with its media-controller', () => {
  it('ends its conference at once: BYE to every phone, EventReleased to every desktop, no media command for what is gone', () => {
    const h = new Harness();
    h.register('7001', '7002', '7003');
    const connId = h.conference3();
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7003', ConnID: connId });
    expect(summary(h.handle(lost('br-1')))).toEqual([
      'sip.release leg-1',
      'sip.release leg-2',
      'sip.release leg-3',
      'media bridge.destroy br-1',
      'ev 7001 EventReleased state=GeneralError',
      'ev 7002 EventReleased state=GeneralError',
      'ev 7003 EventReleased state=GeneralError',
      `conf ${connId} deleted v3`,
      `cdr ${connId} GeneralError`,
      'report bridge-lost',
    ]);
    expect(h.model.stats()).toEqual({ calls: 0, conferences: 0, legs: 0, registeredDns: 3 });
    // The phones' BYEs that cross ours change nothing.
    expect(summary(h.bye('leg-2'))).toEqual(['report stale-leg']);
  });

  it('an unanswered caller is refused with 503', () => {
    const h = new Harness();
    h.incoming({ dn: '7001' }, '7002');
    expect(summary(h.handle(lost('br-1')))).toEqual(['sip.release leg-1 503', 'sip.release leg-2', 'media bridge.destroy br-1', 'ev 7001 EventReleased other=7002 state=GeneralError', 'cdr 0000000000000001 GeneralError', 'report bridge-lost']);
    expect(h.model.stats().calls).toBe(0);
  });

  it('a consultation bridge lost: the consulting DN, whose phone sat there, also leaves its held main call, which ends', () => {
    const h = new Harness();
    h.register('7001', '7002', '7003');
    const main = h.phoneCall('7001', '7002');
    h.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7003' });
    h.ringing('leg-3');
    h.answered('leg-3');
    const out = summary(h.handle(lost('br-2')));
    expect(out.filter((line) => line.startsWith('sip.release')).sort()).toEqual(['sip.release leg-1', 'sip.release leg-2', 'sip.release leg-3']);
    expect(out).not.toContain('media leg.move leg-1 br-2->br-1');
    expect(out.filter((line) => line.includes('EventReleased'))).toHaveLength(4);
    expect(h.model.stats()).toEqual({ calls: 0, conferences: 0, legs: 0, registeredDns: 3 });
  });

  it('a bridge nobody uses any more: only a report', () => {
    const h = new Harness();
    h.phoneCall('7001', '7002');
    h.bye('leg-1');
    expect(summary(h.handle(lost('br-1')))).toEqual(['report bridge-lost']);
  });
});
