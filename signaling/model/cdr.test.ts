/**
 * Call detail records: the model keeps each call's history (membership over time, answer,
 * listen-disconnect intervals) by its own clock and hands the record out when the call ends; the
 * history travels in the call's snapshot.
 */
import { describe, expect, it } from 'vitest';
import type { CallDetail } from '../../common/nats/cdr-contract.js';
import { Harness } from './test-harness.js';
import type { ModelOutput } from './types.js';

function cdrs(outputs: ModelOutput[]): CallDetail[] {
  return outputs.flatMap((o) => (o.kind === 'cdr' ? [o.record] : []));
}

/** Advances the clock by `ms`, then runs `step`; resolves with its outputs and the time it ran at (the harness adds 1 ms per input). */
function at(h: Harness, ms: number, step: () => ModelOutput[]): { out: ModelOutput[]; time: number } {
  h.now += ms;
  const out = step();
  return { out, time: h.now };
}

/** 7001's phone calls 7002 (Call-IDs ci-1, ci-2); 7001's desktop adds 7003 (ci-3). Times of each step. */
function conference(h: Harness): { connId: string; start: number; answer: number; added: number; joined: number } {
  h.register('7001', '7002');
  const start = at(h, 1000, () => h.handle({ kind: 'sip.incoming', sipRef: 'in-1', from: { dn: '7001' }, to: '7002', callId: 'ci-1' })).time;
  const connId = h.lastConnId();
  h.ringing('leg-2');
  const answer = at(h, 1000, () => h.handle({ kind: 'sip.answered', legId: 'leg-2', callId: 'ci-2' })).time;
  const added = at(h, 1000, () => h.req('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' })).time;
  h.ringing('leg-3');
  const joined = at(h, 1000, () => h.handle({ kind: 'sip.answered', legId: 'leg-3', callId: 'ci-3' })).time;
  return { connId, start, answer, added, joined };
}

describe('call detail records', () => {
  it('a 3-party conference with a listen-disconnect, a reconnect and another disconnect: parties, intervals and times in order', () => {
    const h = new Harness();
    const { connId, start, answer, added, joined } = conference(h);
    const ld1 = at(h, 1000, () => h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7003', ConnID: connId })).time;
    const lr = at(h, 1000, () => h.req('ListenReconnect', { ThisDN: '7002', OtherDN: '7003', ConnID: connId })).time;
    const ld2 = at(h, 1000, () => h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7003', ConnID: connId })).time;
    const gone3 = at(h, 1000, () => h.bye('leg-3'));
    expect(cdrs(gone3.out)).toEqual([]);
    const end = at(h, 1000, () => h.bye('leg-1'));

    const [record, ...more] = cdrs(end.out);
    expect(more).toEqual([]);
    expect(record).toEqual({
      connId,
      previousConnIds: [],
      site: 'SiteA',
      type: 'Internal',
      start,
      answer,
      end: end.time,
      conference: true,
      parties: [
        { alias: '7001', dn: '7001', location: 'SiteA', role: 'ConferenceMember', callId: 'ci-1', joined: start, connected: answer, left: end.time },
        { alias: '7002', dn: '7002', location: 'SiteA', role: 'ConferenceMember', callId: 'ci-2', joined: start, connected: answer, left: end.time },
        { alias: '7003', dn: '7003', location: 'SiteA', role: 'ConferenceMember', callId: 'ci-3', joined: added, connected: joined, left: gone3.time },
      ],
      dns: ['7001', '7002', '7003'],
      trunks: [],
      callIds: ['ci-1', 'ci-2', 'ci-3'],
      listenDisconnects: [
        { by: '7001', whom: '7003', from: ld1, to: lr, reconnectedBy: '7002' },
        // 7003 hung up while disconnected: the interval ends when it left.
        { by: '7001', whom: '7003', from: ld2, to: gone3.time },
      ],
      release: { cause: 'Ok', by: '7001' },
    });
    expect([start, answer, added, joined, ld1, lr, ld2, gone3.time, end.time]).toEqual([...new Set([start, answer, added, joined, ld1, lr, ld2, gone3.time, end.time])].sort((a, b) => a - b));
  });

  it('the leaving rule: the conference ends with NewConnID, the new call names it among its previous ConnIDs', () => {
    const h = new Harness();
    const { connId } = conference(h);
    const ld = at(h, 1000, () => h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7002', ConnID: connId })).time;
    const left = at(h, 1000, () => h.req('ReleaseCall', { ThisDN: '7001', ConnID: connId }));
    const [conf] = cdrs(left.out);
    const next = h.lastConnId();
    expect(conf).toMatchObject({ connId, release: { cause: 'NewConnID', nextConnId: next }, end: left.time, conference: true });
    // The disconnected party was reconnected by the rule, not by anyone: no reconnectedBy.
    expect(conf?.listenDisconnects).toEqual([{ by: '7001', whom: '7002', from: ld, to: left.time }]);
    expect(conf?.parties.find((p) => p.alias === '7001')?.left).toBe(left.time);

    const end = at(h, 1000, () => h.bye('leg-3'));
    const [call] = cdrs(end.out);
    expect(call).toMatchObject({ connId: next, previousConnIds: [connId], start: left.time, answer: left.time, end: end.time, conference: false, release: { cause: 'Ok', by: '7003' } });
    expect(call?.parties.map((p) => [p.alias, p.callId, p.joined, p.connected, p.left])).toEqual([
      ['7002', 'ci-2', left.time, left.time, end.time],
      ['7003', 'ci-3', left.time, left.time, end.time],
    ]);
  });

  it('travels in the snapshot: a model that restores the call mid-way publishes the whole history', () => {
    const h = new Harness();
    const { connId, start } = conference(h);
    const ld = at(h, 1000, () => h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7003', ConnID: connId })).time;
    const snapshot = JSON.parse(JSON.stringify(h.model.snapshot(h.model.groupOf(connId)))) as ReturnType<typeof h.model.snapshot>;

    const other = new Harness();
    other.now = h.now + 5000;
    other.model.restore(snapshot);
    other.register('7002');
    const lr = at(other, 1000, () => other.req('ListenReconnect', { ThisDN: '7002', OtherDN: '7003', ConnID: connId })).time;
    other.bye('leg-3');
    const end = at(other, 1000, () => other.bye('leg-2'));
    const [record] = cdrs(end.out);
    expect(record).toMatchObject({ connId, start, end: end.time, listenDisconnects: [{ by: '7001', whom: '7003', from: ld, to: lr, reconnectedBy: '7002' }] });
    expect(record?.parties.map((p) => p.alias)).toEqual(['7001', '7002', '7003']);
  });

  it('a trunk call the called phone refuses: no answer time, Busy with the SIP status, the trunk named', () => {
    const h = new Harness();
    const call = at(h, 1000, () => h.handle({ kind: 'sip.incoming', sipRef: 'in-1', from: { trunk: '9000', number: '0611223344' }, to: '7001', callId: 'tr-1' }));
    const busy = at(h, 1000, () => h.handle({ kind: 'sip.failed', legId: 'leg-2', status: 486 }));
    const [record] = cdrs(busy.out);
    expect(record).toEqual({
      connId: '0000000000000001',
      previousConnIds: [],
      site: 'SiteA',
      type: 'Inbound',
      start: call.time,
      end: busy.time,
      conference: false,
      parties: [
        { alias: '0611223344', trunk: '9000', location: 'SiteA', role: 'Origination', callId: 'tr-1', joined: call.time, left: busy.time },
        { alias: '7001', dn: '7001', location: 'SiteA', role: 'Destination', joined: call.time, left: busy.time },
      ],
      dns: ['7001'],
      trunks: ['9000'],
      callIds: ['tr-1'],
      listenDisconnects: [],
      release: { cause: 'Busy', by: '7001', status: 486 },
    });
    expect(h.model.calls()).toEqual([]);
  });

  it('a consultation merged into its main call ends as Conferenced, naming the main call', () => {
    const h = new Harness();
    const { main, consult } = h.answeredConsultation();
    const done = at(h, 1000, () => h.req('CompleteConference', { ThisDN: '7001', ConnID: consult }));
    expect(cdrs(done.out)).toMatchObject([{ connId: consult, consultOf: main, release: { cause: 'Conferenced', by: '7001', nextConnId: main }, end: done.time }]);
    const end = at(h, 1000, () => h.bye('leg-2'));
    expect(cdrs(end.out)).toEqual([]);
    const [record] = cdrs(h.bye('leg-3'));
    // 7003 joined the main call when the consultation was merged into it.
    expect(record?.parties.map((p) => [p.alias, p.joined === done.time, p.left > done.time])).toEqual([
      ['7001', false, true],
      ['7002', false, true],
      ['7003', true, true],
    ]);
    expect(record?.conference).toBe(true);
  });
});
