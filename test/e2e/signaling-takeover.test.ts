/**
 * Two signaling replicas on one site. The one owning the calls is a child process: SIGKILLed, the
 * other claims its calls within 2 s and serves their T-Library requests and (a phone re-pointed
 * to it, as the SIP edge would) their in-dialog requests. SIGSTOPped past its lease and resumed,
 * it acts on none of the calls it lost: no BYE, no media command, no event.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SipCluster } from '../../common/config/schema.js';
import { connectNats } from '../../common/nats/connect.js';
import { Subjects } from '../../common/nats/subjects.js';
import type { Component } from '../../common/process/lifecycle.js';
import { freePort } from '../../common/supervisor/ports.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { LeaseSilentDeadMs } from '../../signaling/call-replication.js';
import { listCdrs } from '../../tlib-api/client/index.js';
import { startSignaling } from '../../signaling/component.js';
import type { Heard } from '../support/tone-phone.js';
import { SignalingProcess } from './signaling-process.js';
import { conferenceAndCall, exactly, metricValue, Site, steady, until, watchAudio, type Agent } from './site.js';

/** A second signaling replica in this process, on its own SIP port. */
async function inProcessReplica(site: Site, name: string): Promise<{ component: Component; registry: Registry; sipPort: number }> {
  const sipPort = await freePort();
  const registry = new Registry();
  const ctx = site.context(name, registry);
  const onPort = (cluster: SipCluster): SipCluster => {
    const copy = structuredClone(cluster);
    copy.spec.sip.listen = copy.spec.sip.listen.map((l) => ({ ...l, port: sipPort }));
    return copy;
  };
  const config = new Proxy(ctx.config, { get: (target, key) => (key === 'cluster' ? onPort(target.cluster) : (Reflect.get(target, key, target) as unknown)) });
  return { component: await startSignaling({ ...ctx, config }), registry, sipPort };
}

describe('signaling replicas', () => {
  let site: Site;
  let owner: SignalingProcess;
  let other: { component: Component; registry: Registry; sipPort: number };
  let a: Agent, b: Agent, c: Agent, d: Agent, e: Agent;

  beforeAll(async () => {
    site = await Site.start({ signaling: false });
    owner = await SignalingProcess.start(site, 'signaling-0');
    [a, b, c, d, e] = await Promise.all([site.agent('7001', 1), site.agent('7002', 2), site.agent('7003', 3), site.agent('7004', 4), site.agent('7005', 5)]);
    // Started once the phones are registered: it reads their bindings from the registrations bucket.
    other = await inProcessReplica(site, 'signaling-1');
  }, 90_000);

  afterAll(async () => {
    owner?.signal('SIGCONT');
    await other?.component.stop();
    await owner?.stop();
    await site?.stop();
  });

  /** What each phone hears in the calls of the first test, which the next one takes over. */
  let expected: Map<Agent, (h: Heard) => boolean>;

  it('T-Library requests reach the owner of the call from either replica', async () => {
    const calls = await conferenceAndCall(a, b, c, d, e);
    const connID = calls.connID;
    expected = calls.expected;
    expect(await owner.metric('huddle_calls_active')).toBe(2);
    expect(await metricValue(other.registry, 'huddle_calls_active')).toBe(0);
    // The gateway's requests are spread over both replicas; each is answered by the owner.
    for (let i = 0; i < 8; i++) {
      const info = await b.desktop!.client.queryCall({ thisDN: '7002', connID });
      expect(info).toMatchObject({ event: 'EventPartyInfo', ConnID: connID });
    }
    await a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([a.tone, b.tone]));
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([], true));
    await a.hears(steady(exactly([b.tone])));
    await b.hears(steady(exactly([a.tone])));
  }, 90_000);

  it('SIGKILL of the owner: the other replica claims its calls within 2 s and carries them on', async () => {
    const connID = b.desktop!.events.find((ev) => ev.event === 'EventPartyAdded')!.ConnID!;
    const stopWatching = watchAudio(expected);
    const eventsBefore = new Map([a, b, c, d, e].map((x) => [x, x.desktop!.events.length]));
    const there = { protocol: 'udp' as const, host: '127.0.0.1', port: other.sipPort };
    const killed = Date.now();
    await owner.kill();
    // At once, before the claim: the request waits for it rather than getting 481.
    const early = b.phone.calls.at(-1)!.request('OPTIONS', { destination: there });
    await until(async () => (await metricValue(other.registry, 'huddle_calls_active')) === 2, 'the other replica owns both calls', 5000);
    const takeover = Date.now() - killed;
    expect(takeover).toBeLessThanOrEqual(2000);
    expect((await early).status).toBe(200);
    expect(await stopWatching()).toEqual([]);

    // T-Library on the taken-over conference.
    const asked = Date.now();
    await a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' });
    expect(Date.now() - asked).toBeLessThan(1000);
    await c.hears(exactly([a.tone, b.tone]));

    // Desktops were resynced by the new owner.
    for (const agent of [a, b, c, d, e]) {
      await agent.desktop!.waitFor((ev: TEvent) => agent.desktop!.events.indexOf(ev) >= eventsBefore.get(agent)! && ev.event === 'EventPartyInfo', `resync of ${agent.dn}`);
    }

    // In-dialog requests, sent to the replica that took over (as the SIP edge would).
    for (const agent of [a, b, c, d, e]) expect((await agent.phone.calls.at(-1)!.request('OPTIONS', { destination: there })).status).toBe(200);
    const ended = d.phone.ended.length;
    expect((await e.phone.calls.at(-1)!.bye({ destination: there })).status).toBe(200);
    await until(() => d.phone.ended.length > ended, 'BYE to 7004 from the new owner');
    await until(async () => (await metricValue(other.registry, 'huddle_calls_active')) === 1, 'one call left');
  }, 60_000);

  it('the calls it took over end with their whole history in their CDRs, what happened before the takeover included', async () => {
    const connID = b.desktop!.events.find((ev) => ev.event === 'EventPartyAdded')!.ConnID!;
    const there = { protocol: 'udp' as const, host: '127.0.0.1', port: other.sipPort };
    const callIds = [a, b, c].map((x) => x.phone.calls.at(-1)!.callId);
    expect((await a.phone.calls.at(-1)!.bye({ destination: there })).status).toBe(200);
    await b.desktop!.waitFor((ev) => ev.event === 'EventPartyDeleted' && ev.ConnID === connID, 'EventPartyDeleted of 7001');
    expect((await b.phone.calls.at(-1)!.bye({ destination: there })).status).toBe(200);
    // Both calls (7004-7005 ended in the test before) were stored by the replica that took them over.
    await until(async () => (await metricValue(other.registry, 'huddle_cdr_stored_total')) === 2, 'two CDRs stored by the new owner');
    const reader = { url: site.gatewayUrl, token: site.supervisorToken };
    const [record, ...more] = await listCdrs({ ...reader, connId: connID });
    expect(more).toEqual([]);
    // Disconnected by conferenceAndCall, reconnected and disconnected again before the kill, reconnected after it.
    const times = a.desktop!.events.filter((ev) => ev.ConnID === connID && (ev.event === 'EventListenDisconnected' || ev.event === 'EventListenReconnected')).map((ev) => ev.Time!);
    expect(times).toHaveLength(4);
    expect(record!.listenDisconnects).toEqual([
      { by: '7001', whom: '7003', from: times[0], to: times[1], reconnectedBy: '7001' },
      { by: '7001', whom: '7003', from: times[2], to: times[3], reconnectedBy: '7001' },
    ]);
    const established = a.desktop!.events.find((ev) => ev.event === 'EventEstablished' && ev.ConnID === connID)!;
    expect(record).toMatchObject({ connId: connID, answer: established.Time, conference: true, release: { cause: 'Ok', by: '7002' } });
    expect(record!.parties.map((p) => [p.alias, p.callId])).toEqual([
      ['7001', callIds[0]],
      ['7002', callIds[1]],
      ['7003', callIds[2]],
    ]);
    const [plain] = await listCdrs({ ...reader, dn: '7004' });
    expect(plain).toMatchObject({ dns: ['7004', '7005'], release: { cause: 'Ok', by: '7005' } });
  }, 60_000);
});

describe('a paused replica', () => {
  let site: Site;
  let owner: SignalingProcess;
  let other: { component: Component; registry: Registry; sipPort: number };
  let spy: NatsConnection;
  let a: Agent, b: Agent, c: Agent, d: Agent, e: Agent;

  beforeAll(async () => {
    site = await Site.start({ signaling: false });
    owner = await SignalingProcess.start(site, 'signaling-0');
    [a, b, c, d, e] = await Promise.all([site.agent('7001', 1), site.agent('7002', 2), site.agent('7003', 3), site.agent('7004', 4), site.agent('7005', 5)]);
    other = await inProcessReplica(site, 'signaling-1');
    spy = await connectNats(site.nats.url, 'media-spy', undefined, site.nats.client('media-controller'));
  }, 90_000);

  afterAll(async () => {
    owner?.signal('SIGCONT');
    await spy?.close();
    await other?.component.stop();
    await owner?.stop();
    await site?.stop();
  });

  it('SIGSTOP past its lease, SIGCONT: no BYE, no media command, no event for the calls it lost', async () => {
    const { expected } = await conferenceAndCall(a, b, c, d, e);
    const atStop = new Map([a, b, c, d, e].map((x) => [x, x.desktop!.events.length]));
    owner.signal('SIGSTOP');
    // A paused process keeps its NATS connection: it is taken over once silent for LeaseSilentDeadMs.
    await until(async () => (await metricValue(other.registry, 'huddle_calls_active')) === 2, 'the other replica owns both calls', LeaseSilentDeadMs + 3000);
    // The new owner's resync, before we listen for anything the paused one might send.
    for (const agent of [a, b, c, d, e]) {
      await agent.desktop!.waitFor((ev: TEvent) => agent.desktop!.events.indexOf(ev) >= atStop.get(agent)! && ev.event === 'EventPartyInfo', `resync of ${agent.dn}`);
    }
    await new Promise((r) => setTimeout(r, 300));

    const commands: string[] = [];
    const record = { callback: (_err: Error | null, msg: { string(): string }) => void commands.push(msg.string()) };
    spy.subscribe(Subjects.mediaInstanceCommandAll(site.location), record);
    spy.subscribe(Subjects.mediaCommand(site.location), record);
    await spy.flush();
    const eventsBefore = new Map([a, b, c, d, e].map((x) => [x, x.desktop!.events.length]));
    const endedBefore = [a, b, c, d, e].map((x) => x.phone.ended.length);
    const stopWatching = watchAudio(new Map([...expected].filter(([agent]) => agent !== d)));

    owner.signal('SIGCONT');
    // A BYE reaching the resumed replica (no edge in front) is what would make an unfenced one
    // release the call, tell the desktops and remove the media legs. It answers 200 when the BYE
    // came before it found its lease gone, else 481: either way it does nothing more.
    expect([200, 481]).toContain((await e.phone.hangup())?.status);
    await until(async () => (await owner.metric('huddle_calls_active')) === 0, 'the resumed replica dropped the calls it lost', 5000);
    await new Promise((r) => setTimeout(r, 1500));

    expect(commands).toEqual([]);
    expect([a, b, c, d, e].map((x) => x.phone.ended.length)).toEqual(endedBefore.map((n, i) => (i === 4 ? n + 1 : n)));
    for (const agent of [a, b, c, d, e]) expect(agent.desktop!.events.slice(eventsBefore.get(agent))).toEqual([]);
    expect(await stopWatching()).toEqual([]);
    await d.hears(steady(exactly([e.tone])));
    expect(await metricValue(other.registry, 'huddle_calls_active')).toBe(2);
  }, 90_000);
});
