/**
 * The replicator against a real nats-server: which call groups it writes after an input, their
 * ids through merges and splits, and fencing when another replica took a group over.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../common/nats/connect.js';
import { createLogger } from '../common/process/logger.js';
import { startTestNats, type TestNats } from '../test/support/infra.js';
import type { LegState } from './b2bua.js';
import { LeaseDeadMs, LeaseSilentDeadMs, Replicator } from './call-replication.js';
import { CallStateStore } from './call-state.js';
import type { ModelInput, ModelOutput } from './model/index.js';
import { Harness } from './model/test-harness.js';

let nats: TestNats;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startTestNats({ sites: [{ location: 'SiteR' }] });
  nc = await connectNats(nats.url, 'replication-test', undefined, nats.client('signaling'));
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

/** One replica: a call model, the replicator, and a SIP side whose legs get a dialog when answered. */
async function replica(name: string, location: string, probe?: (replica: string) => Promise<'gone' | 'present'>) {
  const h = new Harness();
  const legs = new Map<string, LegState>();
  const dropped: string[] = [];
  const store = await CallStateStore.open(nc, location, 1, createLogger('test', 'silent'));
  const replicator = new Replicator({
    store,
    replica: name,
    sip: 'udp 127.0.0.1:5060',
    model: h.model,
    b2bua: {
      exportLeg: (legId) => legs.get(legId),
      restoreLeg: (state) => {
        legs.set(state.legId, state);
        return state.dialog !== undefined;
      },
      dropLeg: (legId) => {
        dropped.push(legId);
        legs.delete(legId);
      },
      callIdOf: (legId) => legs.get(legId)?.dialog?.callId,
    },
    media: { ownerOf: () => 'mc-0', setOwner: () => undefined },
    log: createLogger('test', 'silent'),
    ...(probe ? { probe } : {}),
  });
  const confirm = (legId: string, bridgeId: string, direction: 'inbound' | 'outbound') =>
    legs.set(legId, {
      legId,
      bridgeId,
      direction,
      dialog: { role: 'uas', callId: `call-${legId}`, localTag: 'l', remoteTag: 'r', localUri: '<sip:a@x>;tag=l', remoteUri: '<sip:b@y>;tag=r', remoteTarget: 'sip:b@y', routeSet: [], localSeq: 1, remoteSeq: 1, protocol: 'udp', contact: 'sip:a@x' },
    });
  /** As the shell: persist before the outputs (false: fenced), the SIP side, then settle. */
  const input = async (i: ModelInput): Promise<ModelOutput[] | undefined> => {
    h.now += 1;
    const outputs = h.model.handle(i);
    if (!(await replicator.persist(i, outputs))) return undefined;
    for (const out of outputs) {
      if (out.kind === 'sip.connect') legs.set(out.legId, { legId: out.legId, bridgeId: out.bridgeId, direction: out.direction });
      if (out.kind === 'sip.answer') confirm(out.legId, legs.get(out.legId)!.bridgeId, 'inbound');
      if (out.kind === 'sip.release') legs.delete(out.legId);
    }
    await replicator.settle(i, outputs);
    return outputs;
  };
  const answer = (legId: string) => {
    confirm(legId, legs.get(legId)!.bridgeId, 'outbound');
    return input({ kind: 'sip.answered', legId });
  };
  const call = async (from: string, to: string): Promise<string> => {
    const out = await input({ kind: 'sip.incoming', sipRef: `r${h.now}`, from: { dn: from }, to });
    const connect = out?.find((o) => o.kind === 'sip.connect' && o.direction === 'outbound');
    if (connect?.kind !== 'sip.connect') throw new Error('no outbound leg');
    await answer(connect.legId);
    return h.lastConnId();
  };
  const request = (request: string, attrs: Record<string, unknown>) => input({ kind: 'tlib.request', request: { request, ReferenceID: 1, ...attrs } as never, origin: { gateway: 'gw', client: 'desk' } });
  await replicator.start({ exclusive: (job) => job(), perform: async () => undefined, fact: () => undefined });
  return { h, store, replicator, input, answer, call, request, dropped, legs };
}

describe('call state replication', () => {
  it('writes a group once it has a dialog, keeps its id through a consultation, and deletes it at the end', async () => {
    const r = await replica('r-1', 'SiteR');
    await r.request('RegisterAddress', { ThisDN: '7001' });
    const main = await r.call('7001', '7002');
    let groups = await r.store.groups();
    expect(groups).toHaveLength(1);
    const groupId = groups[0]!.groupId;
    expect(groups[0]!.record).toMatchObject({ owner: 'r-1', calls: [{ connId: main, parties: [{ dn: '7001' }, { dn: '7002' }] }], media: { [r.h.model.call(main)!.bridgeId]: 'mc-0' } });
    expect(groups[0]!.record.sip.map((l) => l.dialog?.callId).sort()).toEqual(r.h.model.call(main)!.parties.map((p) => `call-${p.legId}`).sort());
    expect(await r.store.groupOfDialog(`call-${r.h.legOf(main, '7001')}`)).toBe(groupId);

    // A consultation shares 7001's leg: one group, the same id.
    const out = await r.request('InitiateConference', { ThisDN: '7001', ConnID: main, OtherDN: '7003' });
    const consult = r.h.lastConnId();
    const leg = out?.find((o) => o.kind === 'sip.connect');
    if (leg?.kind !== 'sip.connect') throw new Error('no leg to 7003');
    await r.answer(leg.legId);
    groups = await r.store.groups();
    expect(groups.map((g) => g.groupId)).toEqual([groupId]);
    expect(groups[0]!.record.calls.map((c) => c.connId).sort()).toEqual([main, consult].sort());

    // 7003 hangs up: the consultation ends, the main call goes on in the same group.
    await r.input({ kind: 'sip.released', legId: leg.legId });
    groups = await r.store.groups();
    expect(groups.map((g) => [g.groupId, g.record.calls.map((c) => c.connId)])).toEqual([[groupId, [main]]]);

    await r.input({ kind: 'sip.released', legId: r.h.legOf(main, '7002') });
    expect(await r.store.groups()).toEqual([]);
    expect(r.replicator.calls).toBe(0);
    await r.replicator.stop(true);
  });

  it('desktop registrations are kept per DN and come back in a new replica', async () => {
    const r = await replica('r-2', 'SiteD');
    await r.request('RegisterAddress', { ThisDN: '7004' });
    expect(await r.store.desktops()).toEqual(new Map([['7004', [expect.stringContaining('gw') as string]]]));
    const next = await replica('r-3', 'SiteD');
    expect(next.h.model.registrationsOf('7004')).toEqual(r.h.model.registrationsOf('7004'));
    await r.request('UnregisterAddress', { ThisDN: '7004' });
    expect(await r.store.desktops()).toEqual(new Map());
    await r.replicator.stop(true);
    await next.replicator.stop(true);
  });

  it('fencing: a group another replica claimed is dropped here and the input is not carried out', async () => {
    const r = await replica('r-4', 'SiteF');
    const connId = await r.call('7001', '7002');
    const [group] = await r.store.groups();
    // Another replica claims it (compare-and-set owner := r-5).
    await r.store.putGroup(group!.groupId, JSON.stringify({ ...group!.record, owner: 'r-5' }), group!.revision);
    const legs = r.h.model.call(connId)!.parties.map((p) => p.legId);
    expect(await r.input({ kind: 'sip.released', legId: legs[0]! })).toBeUndefined();
    expect(r.h.model.calls()).toEqual([]);
    expect(r.dropped.sort()).toEqual([...legs].sort());
    // The record is the new owner's, untouched.
    expect((await r.store.groups())[0]!.record.owner).toBe('r-5');
    await r.replicator.stop(false);
  });

  it('a new replica claims the groups of its previous incarnation and rebuilds the calls', async () => {
    const old = await replica('r-6', 'SiteC');
    const connId = await old.call('7001', '7002');
    await old.replicator.stop(false);
    const again = await replica('r-6', 'SiteC');
    expect(again.h.model.calls()).toEqual(old.h.model.calls());
    expect([...again.legs.keys()].sort()).toEqual(old.h.model.call(connId)!.parties.map((p) => p.legId).sort());
    expect(again.replicator.calls).toBe(1);
    // And carries on: a hang-up ends the call and its record.
    await again.input({ kind: 'sip.released', legId: again.h.legOf(connId, '7002') });
    expect(await again.store.groups()).toEqual([]);
    await again.replicator.stop(true);
  });

  it('a lease renewal held up in NATS does not hold up the calls: only a paused process confirms its lease before it acts', async () => {
    const r = await replica('r-9', 'SiteL');
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const renew = r.store.renewLease.bind(r.store);
    let renewals = 0;
    r.store.renewLease = async (lease, revision) => {
      renewals++;
      await held;
      return renew(lease, revision);
    };
    for (let i = 0; i < 100 && renewals === 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(renewals).toBe(1);
    // The renewal under way is now older than a lease.
    await new Promise((res) => setTimeout(res, LeaseDeadMs + 300));
    const outcome = await Promise.race([r.call('7001', '7002').then(() => 'call set up'), new Promise((res) => setTimeout(() => res('held up'), 5000))]);
    release();
    expect(outcome).toBe('call set up');
    expect(renewals).toBe(1);
    await r.replicator.stop(true);
  });

  it('a replica whose lease stopped is taken over at once when its process is gone, after LeaseSilentDeadMs while it is still connected', async () => {
    const until = async (cond: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 25));
    };
    let answer: 'gone' | 'present' = 'present';
    const owner = await replica('r-11', 'SiteP');
    const survivor = await replica('r-12', 'SiteP', async () => answer);
    await owner.call('7001', '7002');
    await owner.replicator.stop(false);
    await new Promise((r) => setTimeout(r, LeaseDeadMs + 1000));
    // Loaded or paused, not gone: its calls stay its own.
    expect(survivor.replicator.calls).toBe(0);
    answer = 'gone';
    await until(() => survivor.replicator.calls === 1, 1500);
    expect(survivor.replicator.calls).toBe(1);

    const slow = await replica('r-13', 'SiteP');
    await slow.call('7003', '7004');
    await slow.replicator.stop(false);
    answer = 'present';
    const stoppedAt = Date.now();
    await until(() => survivor.replicator.calls === 2, LeaseSilentDeadMs + 2000);
    expect(survivor.replicator.calls).toBe(2);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(LeaseSilentDeadMs - 600);
    await survivor.replicator.stop(true);
  }, 20_000);

  it('an in-dialog request for a dead owner waits for the claim, even when the owner\'s last renewal is seen after the request', async () => {
    const owner = await replica('r-7', 'SiteK');
    const survivor = await replica('r-8', 'SiteK');
    const connId = await owner.call('7001', '7002');
    const legId = owner.h.legOf(connId, '7002');
    const callId = `call-${legId}`;
    // SIGKILL: no renewal from now on, nothing removed.
    await owner.replicator.stop(false);
    const outcome = survivor.replicator.takeOverDialog(callId, () => survivor.legs.get(legId)?.dialog?.callId === callId);
    // The renewal the owner made just before it died, as the survivor's watch sees it: after the request came.
    const { revision, lease } = (await owner.store.leases()).get('r-7')!;
    await owner.store.renewLease(lease, revision);
    expect(await outcome).toBe('delivered');
    expect(survivor.replicator.calls).toBe(1);
    await survivor.replicator.stop(true);
  });
});
