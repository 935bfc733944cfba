import { describe, expect, it } from 'vitest';
import { originKey } from './state.js';
import { Desk, Harness, summary } from './test-harness.js';
import type { GroupSnapshot, IdSource, ModelInput } from './index.js';

/** Counter ids that can be forked: the fork goes on from the same counters, as a new owner's would not collide. */
function forkableIds(start = { conn: 0, leg: 0, bridge: 0 }): IdSource & { fork(): IdSource & { fork(): unknown } } {
  const n = { ...start };
  return {
    connId: () => (++n.conn).toString(16).padStart(16, '0'),
    legId: () => `leg-${++n.leg}`,
    bridgeId: () => `br-${++n.bridge}`,
    fork: () => forkableIds(n),
  };
}

/** Every group of the model, through JSON as the KV store carries it. */
function snapshotAll(h: Harness): GroupSnapshot[] {
  const seen = new Set<string>();
  const groups: GroupSnapshot[] = [];
  for (const call of h.model.calls()) {
    if (seen.has(call.connId)) continue;
    const group = h.model.groupOf(call.connId);
    for (const id of group) seen.add(id);
    groups.push(JSON.parse(JSON.stringify(h.model.snapshot(group))) as GroupSnapshot);
  }
  return groups;
}

/** A second model that takes over every group of `h` and its desktop registrations. */
function takeOver(h: Harness, ids: IdSource): Harness {
  const next = new Harness(undefined, undefined, ids);
  next.now = h.now;
  for (const group of snapshotAll(h)) next.model.restore(group);
  for (const dn of h.model.registeredDns()) next.model.setRegistrations(dn, h.model.registrationsOf(dn));
  return next;
}

const req = (request: string, attrs: Record<string, unknown>, ReferenceID = 500): ModelInput => ({ kind: 'tlib.request', request: { request, ReferenceID, ...attrs } as never, origin: Desk });

describe('call model snapshot and restore', () => {
  it('a restored model behaves exactly as the original on the inputs that follow', () => {
    const ids = forkableIds();
    const h = new Harness(undefined, undefined, ids);
    h.register('7001', '7002', '7003', '7004', '7005');
    const conf = h.conference3();
    h.req('ListenDisconnect', { ThisDN: '7001', OtherDN: '7003', ConnID: conf });
    const two = h.phoneCall('7004', '7005');
    h.req('HoldCall', { ThisDN: '7004', ConnID: two });

    const clone = takeOver(h, ids.fork());
    expect(clone.model.calls()).toEqual(h.model.calls());
    expect(clone.model.stats()).toEqual(h.model.stats());

    const legOf = (alias: string, connId: string) => h.legOf(connId, alias);
    const inputs: ModelInput[] = [
      req('QueryCall', { ThisDN: '7002', ConnID: conf }),
      req('RetrieveCall', { ThisDN: '7004', ConnID: two }),
      req('ListenReconnect', { ThisDN: '7002', OtherDN: '7003', ConnID: conf }),
      req('ListenDisconnect', { ThisDN: '7002', OtherDN: '7003', ConnID: conf }),
      // The leaving rule: 7001 leaves, 7002 and the disconnected 7003 are joined in a new call.
      { kind: 'sip.released', legId: legOf('7001', conf) },
      { kind: 'sip.released', legId: legOf('7005', two) },
      req('MakeCall', { ThisDN: '7004', OtherDN: '7001' }),
    ];
    for (const input of inputs) {
      h.now += 1;
      clone.now = h.now;
      const want = h.model.handle(input);
      expect(clone.model.handle(input)).toEqual(want);
      expect(summary(want).length).toBeGreaterThan(0);
      expect(clone.model.mediaDrift()).toEqual([]);
    }
    expect(clone.model.calls()).toEqual(h.model.calls());
  });

  it('a group is the calls sharing legs: a consultation travels with its main call', () => {
    const h = new Harness();
    h.register('7001', '7002', '7003');
    const main = h.phoneCall('7001', '7002');
    const other = h.phoneCall('7003', '7004');
    h.req('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7005' });
    const consult = h.lastConnId();
    expect(consult).not.toBe(main);
    expect(h.model.groupOf(main).sort()).toEqual([main, consult].sort());
    expect(h.model.groupOf(other)).toEqual([other]);
    const record = h.model.snapshot(h.model.groupOf(main));
    expect(record.legs.map((l) => l.id).sort()).toEqual([...new Set([...h.call(main).parties, ...h.call(consult).parties].map((p) => p.legId))].sort());

    h.model.drop(h.model.groupOf(main));
    expect(h.model.calls().map((c) => c.connId)).toEqual([other]);
    expect(h.model.stats().legs).toBe(2);
  });

  it('desktop registrations are set and read per DN', () => {
    const h = new Harness();
    h.register('7001');
    expect(h.model.registrationsOf('7001')).toEqual([originKey(Desk)]);
    const clone = new Harness();
    const query = req('QueryCall', { ThisDN: '7001', ConnID: '00000000000000ff' });
    expect(summary(clone.model.handle(query))).toEqual(['reply EventError 41']);
    clone.model.setRegistrations('7001', h.model.registrationsOf('7001'));
    // The restored desktop may send requests without registering again: this one fails on its ConnID only.
    expect(summary(clone.model.handle(query))).toEqual(['reply EventError 56']);
    clone.model.setRegistrations('7001', []);
    expect(clone.model.registeredDns()).toEqual([]);
  });

  it('resync gives a DN EventRegistered and the state of its calls', () => {
    const h = new Harness();
    h.register('7001', '7002');
    const connId = h.phoneCall('7001', '7002');
    expect(summary(h.model.resync('7001'))).toEqual(['ev 7001 EventRegistered ref=0', 'ev 7001 EventPartyInfo ref=0', 'ev 7001 EventUserEvent']);
    expect(h.model.resync('7001')[1]).toMatchObject({ kind: 'tlib.event', to: '7001', event: { ConnID: connId } });
  });
});
