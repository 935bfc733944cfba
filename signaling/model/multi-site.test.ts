/**
 * Two sites' call models joined by an inter-trunk, the parties reports of each handed to the other
 * as the B2BUA would (SIP INFO): site B shows site A's parties and their listen-disconnect state,
 * names the call by site A's ConnID, and nothing echoes back and forth.
 */
import { describe, expect, it } from 'vitest';
import type { DnConfig, ModelOutput, PartiesReport } from './types.js';
import { counterIds } from './ids.js';
import { events, Harness, lctOf, summary } from './test-harness.js';

function siteB(): DnConfig[] {
  const options = { 'sip-enable-moh': true, 'sip-server-inter-trunk': false, 'remote-answer': false };
  return [
    { number: '8001', type: 'Extension', options },
    { number: '9200', type: 'Trunk', options: { ...options, contact: 'sip:127.0.0.1:5060', prefix: ['7'], 'sip-server-inter-trunk': true, 'sip-enable-moh': false } },
  ];
}

/** The LCTParty list in the answer to a RegisterAddress of `dn` (what a desktop that registers now gets). */
function registered(h: Harness, dn: string): Record<string, string | number | boolean> | undefined {
  const answer = h.req('RegisterAddress', { ThisDN: dn });
  return answer.flatMap((o) => (o.kind === 'tlib.reply' && o.event.event === 'EventUserEvent' ? [o.event.Extensions] : []))[0];
}

function reports(outputs: ModelOutput[]): { legId: string; report: PartiesReport }[] {
  return outputs.flatMap((o) => (o.kind === 'sip.partiesReport' ? [{ legId: o.legId, report: o.report }] : []));
}

/** The LCTParty list of the extensions as `alias@location role type [trunk] [state by]`. */
function lines(ext: Record<string, string | number | boolean> | undefined): string[] {
  const e = ext ?? {};
  return Array.from({ length: Number(e.LCTPartiesLength ?? 0) }, (_, n) => {
    const k = `LCTParty${n}`;
    const parts = [`${String(e[k])}@${String(e[`${k}_location`])}`, String(e[`${k}_role`]), String(e[`${k}_type`])];
    if (e[`${k}_trunk`] !== undefined) parts.push(`via ${String(e[`${k}_trunk`])}`);
    if (e[`${k}_state`] !== undefined) parts.push(`${String(e[`${k}_state`])} by ${String(e[`${k}_disconnectedBy`])}`);
    return parts.join(' ');
  });
}

type Outputs = { A: ModelOutput[]; B: ModelOutput[] };

/**
 * Site A's model and site B's joined by one inter-trunk leg each: `exchange` hands each site's
 * parties reports to the other (as SIP INFO would) until none is left, and says what each output.
 */
function link(a: Harness, legA: string, b: Harness, legB: string, log: string[] = []) {
  return (first: { site: 'A' | 'B'; outputs: ModelOutput[] }[]): Outputs => {
    const got: Outputs = { A: [], B: [] };
    let pending = first;
    for (let round = 0; pending.length > 0; round++) {
      if (round > 5) throw new Error(`reports still going back and forth: ${log.join(' | ')}`);
      const next: typeof pending = [];
      for (const { site, outputs } of pending) {
        for (const { legId, report } of reports(outputs)) {
          const [to, toSite, toLeg] = site === 'A' ? ([b, 'B', legB] as const) : ([a, 'A', legA] as const);
          expect(legId).toBe(site === 'A' ? legA : legB);
          log.push(`${site}: ${report.parties.map((p) => p.alias).join(',')}`);
          const out = to.handle({ kind: 'sip.remoteParties', legId: toLeg, report });
          got[toSite].push(...out);
          next.push({ site: toSite, outputs: out });
        }
      }
      pending = next;
    }
    return got;
  };
}

/** Site A (7001, 7002 in a call) adds 8001 of site B single-step; both models, the inter-trunk leg of each, and the ConnIDs. */
function twoSites() {
  const a = new Harness();
  const b = new Harness(siteB(), 'SiteB', counterIds(0x100));
  a.register('7001', '7002');
  b.register('8001');
  const connA = a.phoneCall('7001', '7002');
  const dialled = a.req('SingleStepConference', { ThisDN: '7001', ConnID: connA, OtherDN: '8001' });
  const connect = dialled.find((o) => o.kind === 'sip.connect' && o.direction === 'outbound');
  // The INVITE over the inter-trunk carries the call's ConnID (X-Huddle-Origin-ConnID).
  expect(connect).toMatchObject({ target: { trunk: '9100', number: '8001' }, originConnId: connA });
  const legA = a.legOf(connA, '8001');
  b.incoming({ trunk: '9200', number: '7001', alias: '7001', location: 'SiteA', originConnId: connA }, '8001');
  const connB = b.lastConnId();
  const legB = b.legOf(connB, '7001');
  const fromB = b.answered(b.legOf(connB, '8001'));
  const fromA = a.answered(legA, { alias: '8001', location: 'SiteB' });
  const log: string[] = [];
  const exchange = link(a, legA, b, legB, log);
  const settled = exchange([
    { site: 'B', outputs: fromB },
    { site: 'A', outputs: fromA },
  ]);
  return { a, b, connA, connB, legA, legB, exchange, settled, log };
}

describe('multi-site: a call over an inter-trunk between two of our sites', () => {
  it("site B shows site A's parties in site A's order, its own party in place of the entry that stands for site B", () => {
    const { b, settled, log } = twoSites();
    // Each site reported once; what B reported back changes nothing on A, so nothing more is sent.
    expect(log).toEqual(['B: 7001,8001', 'A: 7001,7002,8001']);
    expect(lines(lctOf(settled.B, '8001'))).toEqual([
      '7001@SiteA ConferenceMember Extension via 9200',
      '7002@SiteA ConferenceMember Extension via 9200',
      '8001@SiteB Destination Extension',
    ]);
    // A new desktop on 8001 gets the same list (RegisterAddress).
    expect(lines(registered(b, '8001'))).toEqual(lines(lctOf(settled.B, '8001')));
  });

  it("site A keeps showing site B's one party as it reaches it", () => {
    const { a, settled } = twoSites();
    expect(settled.A).toEqual([]);
    expect(lines(registered(a, '7001'))).toEqual([
      '7001@SiteA ConferenceMember Extension',
      '7002@SiteA ConferenceMember Extension',
      '8001@SiteB ConferenceMember InterTrunk via 9100',
    ]);
  });

  it("every event of site B's call names site A's ConnID (OriginConnID); site A's own do not", () => {
    const { a, b, connA, connB, legB } = twoSites();
    expect(b.call(connB).originConnId).toBe(connA);
    const released = b.bye(legB);
    const ofB = events(released).map((e) => e.event);
    expect(ofB.length).toBeGreaterThan(0);
    expect(ofB.every((e) => e.ConnID === connB && e.OriginConnID === connA)).toBe(true);
    // Its CDR too, so the two sites' records join.
    expect(released.find((o) => o.kind === 'cdr')).toMatchObject({ record: { connId: connB, originConnId: connA } });
    const ofA = events(a.req('HoldCall', { ThisDN: '7001', ConnID: connA }));
    expect(ofA.length).toBeGreaterThan(0);
    expect(ofA.every((e) => e.event.OriginConnID === undefined)).toBe(true);
  });

  it("a listen-disconnect on site A shows on site B (and back), and site B's report does not echo", () => {
    const { a, connA, exchange } = twoSites();
    const disconnected = exchange([{ site: 'A', outputs: a.req('ListenDisconnect', { ThisDN: '7002', ConnID: connA, OtherDN: '8001' }) }]);
    expect(summary(disconnected.B)).toEqual(['ev 8001 EventUserEvent']);
    expect(lines(lctOf(disconnected.B, '8001'))[2]).toBe('8001@SiteB Destination Extension ListenDisconnectedHeld by 7002');
    expect(disconnected.A).toEqual([]);
    const back = exchange([{ site: 'A', outputs: a.req('ListenReconnect', { ThisDN: '7001', ConnID: connA, OtherDN: '8001' }) }]);
    expect(lines(lctOf(back.B, '8001'))[2]).toBe('8001@SiteB Destination Extension');
    const other = exchange([{ site: 'A', outputs: a.req('ListenDisconnect', { ThisDN: '7001', ConnID: connA, OtherDN: '7002' }) }]);
    expect(other.A).toEqual([]);
    expect(lines(lctOf(other.B, '8001'))).toEqual([
      '7001@SiteA ConferenceMember Extension via 9200',
      '7002@SiteA ConferenceMember Extension via 9200 ListenDisconnectedHeld by 7001',
      '8001@SiteB Destination Extension',
    ]);
  });

  it("after the leaving rule gives site A's call a new ConnID, site B's call names that one", () => {
    const { a, b, connA, connB, exchange } = twoSites();
    exchange([{ site: 'A', outputs: a.req('ListenDisconnect', { ThisDN: '7001', ConnID: connA, OtherDN: '8001' }) }]);
    const left = a.bye(a.legOf(connA, '7001'));
    const joined = events(left).find((e) => e.event.event === 'EventEstablished' && e.event.PreviousConnID === connA);
    const newA = joined!.event.ConnID!;
    expect(newA).not.toBe(connA);
    const onB = exchange([{ site: 'A', outputs: left }]);
    expect(b.call(connB).originConnId).toBe(newA);
    expect(events(onB.B).every((e) => e.event.OriginConnID === newA)).toBe(true);
    expect(lines(lctOf(onB.B, '8001'))).toEqual(['7002@SiteA Origination Extension via 9200', '8001@SiteB Destination Extension']);
  });

  it('a call handed to another replica keeps what the far site reported', () => {
    const { b, connB } = twoSites();
    const before = registered(b, '8001');
    expect(before?.LCTPartiesLength).toBe(3);
    const other = new Harness(siteB(), 'SiteB', counterIds(0x200));
    other.model.restore(JSON.parse(JSON.stringify(b.model.snapshot(b.model.groupOf(connB)))) as ReturnType<typeof b.model.snapshot>);
    other.register('8001');
    expect(lctOf(other.model.resync('8001'), '8001')).toEqual(before);
    expect(other.model.resync('8001').every((o) => o.kind !== 'tlib.event' || o.event.event === 'EventRegistered' || o.event.OriginConnID === b.call(connB).originConnId)).toBe(true);
  });

  it('a report for a leg that is gone changes nothing', () => {
    const { b } = twoSites();
    expect(summary(b.handle({ kind: 'sip.remoteParties', legId: 'leg-99', report: { originConnId: '0000000000000001', parties: [] } }))).toEqual(['report stale-leg']);
  });

  it('a call that started on site B and became a conference on site A is listed in site B\'s order on both', () => {
    const a = new Harness();
    const b = new Harness(siteB(), 'SiteB', counterIds(0x100));
    a.register('7001', '7002');
    b.register('8001');
    const dialled = b.incoming({ dn: '8001' }, '7001');
    const connB = b.lastConnId();
    expect(dialled.find((o) => o.kind === 'sip.connect' && o.direction === 'outbound')).toMatchObject({ target: { trunk: '9200', number: '7001' }, originConnId: connB });
    a.incoming({ trunk: '9100', number: '8001', alias: '8001', location: 'SiteB', originConnId: connB }, '7001');
    const connA = a.lastConnId();
    const fromA = a.answered(a.legOf(connA, '7001'));
    const legB = b.legOf(connB, '7001');
    const fromB = b.answered(legB, { alias: '7001', location: 'SiteA' });
    const exchange = link(a, a.legOf(connA, '8001'), b, legB);
    exchange([
      { site: 'A', outputs: fromA },
      { site: 'B', outputs: fromB },
    ]);
    const added = exchange([{ site: 'A', outputs: a.req('SingleStepConference', { ThisDN: '7001', ConnID: connA, OtherDN: '7002' }) }]);
    expect(added.B).toEqual([]);
    const joined = a.answered(a.legOf(connA, '7002'));
    expect(events(joined).every((e) => e.event.OriginConnID === connB)).toBe(true);
    expect(lines(lctOf(joined, '7002'))).toEqual([
      '8001@SiteB Origination Extension via 9100',
      '7001@SiteA ConferenceMember Extension',
      '7002@SiteA ConferenceMember Extension',
    ]);
    const onB = exchange([{ site: 'A', outputs: joined }]);
    expect(lines(lctOf(onB.B, '8001'))).toEqual([
      '8001@SiteB Origination Extension',
      '7001@SiteA ConferenceMember Extension via 9200',
      '7002@SiteA ConferenceMember Extension via 9200',
    ]);
    expect(onB.A).toEqual([]);
  });

  it("a consultation to site B completed into site A's conference: site B's call names the conference from then on", () => {
    const a = new Harness();
    const b = new Harness(siteB(), 'SiteB', counterIds(0x100));
    a.register('7001', '7002');
    b.register('8001');
    const main = a.phoneCall('7001', '7002');
    a.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '8001' });
    const consult = a.lastConnId();
    const legA = a.legOf(consult, '8001');
    b.incoming({ trunk: '9200', number: '7001', alias: '7001', location: 'SiteA', originConnId: consult }, '8001');
    const connB = b.lastConnId();
    const legB = b.legOf(connB, '7001');
    const exchange = link(a, legA, b, legB);
    exchange([
      { site: 'B', outputs: b.answered(b.legOf(connB, '8001')) },
      { site: 'A', outputs: a.answered(legA, { alias: '8001', location: 'SiteB' }) },
    ]);
    expect(b.call(connB).originConnId).toBe(consult);
    const onB = exchange([{ site: 'A', outputs: a.req('CompleteConference', { ThisDN: '7001', ConnID: main }) }]);
    expect(b.call(connB).originConnId).toBe(main);
    // Site B's report names the call anew; site A has nothing to change.
    expect(summary(onB.B)).toEqual(['ev 8001 EventUserEvent', `sip.partiesReport ${legB} ${main} *7001@SiteA,8001@SiteB`]);
    expect(onB.A).toEqual([]);
    expect(events(onB.B)[0]!.event.OriginConnID).toBe(main);
    expect(lines(lctOf(onB.B, '8001')).map((l) => l.split(' ')[0])).toEqual(['7001@SiteA', '7002@SiteA', '8001@SiteB']);
  });
});
