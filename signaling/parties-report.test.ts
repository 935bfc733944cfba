/** The parties report between sites: what one site encodes the other decodes; anything else is refused with a reason. */
import { describe, expect, it } from 'vitest';
import { decodePartiesReport, encodePartiesReport } from './parties-report.js';
import type { PartiesReport } from './model/index.js';

const report: PartiesReport = {
  originConnId: '00a1b2c3d4e5f607',
  parties: [
    { alias: '7001', location: 'SiteA', role: 'ConferenceMember', type: 'Extension' },
    { alias: '8001', location: 'SiteB', role: 'ConferenceMember', type: 'InterTrunk', state: 'ListenDisconnectedHeld', disconnectedBy: '7002', peer: true },
  ],
};

describe('parties report', () => {
  it('round-trips', () => {
    expect(decodePartiesReport(encodePartiesReport(report))).toEqual(report);
  });

  it('keeps only the fields it knows', () => {
    const body = JSON.stringify({ ...report, extra: 1, parties: [{ alias: '7001', location: 'SiteA', peer: 'yes', color: 'red' }] });
    expect(decodePartiesReport(body)).toEqual({ originConnId: report.originConnId, parties: [{ alias: '7001', location: 'SiteA' }] });
  });

  it.each([
    ['not JSON', '{', 'body is not JSON'],
    ['null', 'null', 'originConnId is not a ConnID'],
    ['a malformed ConnID', JSON.stringify({ ...report, originConnId: 'ABC' }), 'originConnId is not a ConnID'],
    ['no party list', JSON.stringify({ originConnId: report.originConnId }), 'parties is not a list of at most 64'],
    ['too many parties', JSON.stringify({ ...report, parties: Array.from({ length: 65 }, () => ({ alias: '1', location: 'A' })) }), 'parties is not a list of at most 64'],
    ['a party without location', JSON.stringify({ ...report, parties: [{ alias: '7001' }] }), 'a party has no alias or location'],
    ['a party that is no object', JSON.stringify({ ...report, parties: [null] }), 'a party has no alias or location'],
    ['an unknown role', JSON.stringify({ ...report, parties: [{ alias: '7001', location: 'SiteA', role: 'King' }] }), 'unknown role King'],
    ['an unknown state', JSON.stringify({ ...report, parties: [{ alias: '7001', location: 'SiteA', state: 'Muted' }] }), 'unknown state Muted'],
    ['an overlong alias', JSON.stringify({ ...report, parties: [{ alias: 'x'.repeat(65), location: 'SiteA' }] }), 'a party has no alias or location'],
  ])('refuses %s', (_what, body, error) => {
    expect(decodePartiesReport(body)).toEqual({ error });
  });
});
