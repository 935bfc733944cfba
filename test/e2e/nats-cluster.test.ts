/**
 * JetStream survives a server loss (issue 16 point 7): a site on a 3-node NATS cluster with its
 * buckets at replicas 3. During a two-party call and a three-party conference, one nats-server is
 * killed (SIGKILL): first the one leading the registrations bucket, then, once the first is back,
 * the one signaling is connected to. The calls go on (the tone phones hear each other throughout),
 * T-Library requests and their events work, registrations and configuration stay readable and
 * writable, nothing is lost, and the restarted server rejoins and catches up.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../common/config/load.js';
import { openBucket } from '../../common/nats/buckets.js';
import { connectNats } from '../../common/nats/connect.js';
import { ConfigKeys, RegistrationKeys } from '../../common/nats/subjects.js';
import type { NatsClusterNode } from '../../common/supervisor/nats-server.js';
import { startTestNatsCluster, type TestNatsCluster } from '../support/infra.js';
import type { Heard } from '../support/tone-phone.js';
import { exactly, Site, until, type Agent } from './site.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const local = parseConfig(readFileSync(path.join(ROOT, 'config/local.yaml'), 'utf8'), 'config/local.yaml', path.join(ROOT, 'config'));
const CLUSTER = local.cluster.metadata.name;
const CONFIG_BUCKET = `cfg-${CLUSTER}`;
const DNS = ['7001', '7002', '7003', '7004', '7005'];

describe('a site on a 3-node NATS cluster, buckets at replicas 3', () => {
  let nats: TestNatsCluster;
  let site: Site<TestNatsCluster>;
  let agents: Agent[];
  let a: Agent, b: Agent, c: Agent, d: Agent, e: Agent;
  let callID: string;
  let conferenceID: string;
  /** The test's own reader of the registrations bucket (as signaling) and writer of the config bucket. */
  let reader: NatsConnection;
  let registrations: KV;
  let writer: NatsConnection;
  let config: KV;

  beforeAll(async () => {
    nats = await startTestNatsCluster({ sites: [{ location: local.cluster.spec.location, configBucket: CONFIG_BUCKET }] });
    site = await Site.start({ nats, edit: (yaml) => yaml.replace('\n  media:\n', '\n  nats: { replicas: 3 }\n  media:\n') });
    agents = [];
    for (const [i, dn] of DNS.entries()) agents.push(await site.agent(dn, i));
    [a, b, c, d, e] = agents as [Agent, Agent, Agent, Agent, Agent];
    await a.dial(b.dn);
    callID = (await a.desktop!.waitFor((ev) => ev.event === 'EventEstablished', 'EventEstablished')).ConnID!;
    await c.dial(d.dn);
    conferenceID = (await c.desktop!.waitFor((ev) => ev.event === 'EventEstablished', 'EventEstablished')).ConnID!;
    await c.desktop!.client.singleStepConference({ thisDN: c.dn, connID: conferenceID, otherDN: e.dn });
    await e.desktop!.waitFor((ev) => ev.event === 'EventEstablished' && ev.ConnID === conferenceID, 'EventEstablished on 7005');
    reader = await connectNats(nats.url, 'cluster-test-reader', undefined, nats.client('signaling'));
    registrations = await openBucket(reader, RegistrationKeys.bucket);
    writer = await connectNats(nats.url, 'cluster-test-writer', undefined, nats.client('config-publisher'));
    config = await openBucket(writer, CONFIG_BUCKET);
  }, 120_000);

  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await site?.stop();
    await nats?.stop();
  });

  it('keeps the config and registrations buckets at 3 replicas, one on each server', async () => {
    for (const bucket of [CONFIG_BUCKET, RegistrationKeys.bucket]) {
      const info = await streamInfo(bucket);
      expect(info.config.num_replicas, bucket).toBe(3);
      expect([info.cluster!.leader!, ...info.cluster!.replicas!.map((r) => r.name)].sort(), bucket).toEqual(nats.nodes.map((n) => n.name).sort());
    }
    await everyoneHearsTheirParties();
  });

  it('SIGKILL of the server leading the registrations bucket: calls, T-Library and buckets carry on; the server rejoins', async () => {
    const victim = nodeNamed((await streamInfo(RegistrationKeys.bucket)).cluster!.leader!);
    await survives(victim, async () => {
      // A T-Library request and its events across the loss: hold and retrieve the two-party call.
      const held = await a.desktop!.client.holdCall({ thisDN: a.dn, connID: callID });
      expect(held).toMatchObject({ event: 'EventHeld', ConnID: callID });
      await b.hears(exactly([], true));
      const retrieved = await a.desktop!.client.retrieveCall({ thisDN: a.dn, connID: callID });
      expect(retrieved).toMatchObject({ event: 'EventRetrieved', ConnID: callID });
      await b.hears(exactly([a.tone]));
    });
  });

  it('SIGKILL of the server signaling is connected to: signaling moves to another, the conference goes on, ListenDisconnect works', async () => {
    const victim = nodeNamed(site.context('signaling').nc.info!.server_name);
    await survives(victim, async () => {
      const answer = await c.desktop!.client.listenDisconnect({ thisDN: c.dn, connID: conferenceID, otherDN: e.dn });
      expect(answer).toMatchObject({ event: 'EventListenDisconnected', OtherDN: e.dn, ConnID: conferenceID });
      await d.desktop!.waitFor((ev) => ev.event === 'EventListenDisconnected' && ev.ConnID === conferenceID, 'EventListenDisconnected on 7004');
      await e.hears(exactly([], true));
      await c.hears(exactly([d.tone]));
      const back = await d.desktop!.client.listenReconnect({ thisDN: d.dn, connID: conferenceID, otherDN: e.dn });
      expect(back).toMatchObject({ event: 'EventListenReconnected', ConnID: conferenceID });
      await e.desktop!.waitFor((ev) => ev.event === 'EventListenReconnected' && ev.ConnID === conferenceID, 'EventListenReconnected on 7005');
    });
    expect(site.context('signaling').nc.info!.server_name).not.toBe(victim.name);
  });

  it('the calls end normally afterwards, with their events', async () => {
    await a.desktop!.client.releaseCall({ thisDN: a.dn, connID: callID });
    await b.desktop!.waitFor((ev) => ev.event === 'EventReleased' && ev.ConnID === callID, 'EventReleased on 7002');
    await d.desktop!.client.releaseCall({ thisDN: d.dn, connID: conferenceID });
    await c.hears(exactly([e.tone]));
    await e.hears(exactly([c.tone]));
  });

  /**
   * Kills `victim` during the calls; checks that no one's audio stops for the first 2 s, runs
   * `duringLoss` while the server is down, checks that the buckets are readable at once and writable again, that nothing written
   * before is lost; then starts the server again and checks that it catches up.
   */
  async function survives(victim: NatsClusterNode, duringLoss: () => Promise<void>): Promise<void> {
    const before = await registrationsByDn();
    expect(Object.keys(before).sort()).toEqual(DNS);
    const configBefore = (await config.get(ConfigKeys.cluster(CLUSTER)))!.string();
    const listening = listenThroughout([
      [a, [b.tone]],
      [b, [a.tone]],
      [c, [d.tone, e.tone]],
      [d, [c.tone, e.tone]],
      [e, [c.tone, d.tone]],
    ]);
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    process.kill(victim.process.pid!, 'SIGKILL');
    try {
      await whileDown(victim, killedAt, listening, configBefore, before, duringLoss);
    } finally {
      if (victim.process.pid === undefined || !processAlive(victim.process.pid)) await victim.start();
    }
    await everyoneHearsTheirParties();
  }

  async function whileDown(
    victim: NatsClusterNode,
    killedAt: number,
    listening: { stop(): Promise<Record<string, number>> },
    configBefore: string,
    before: Record<string, string>,
    duringLoss: () => Promise<void>,
  ): Promise<void> {
    await until(() => victim.process.pid === undefined || !processAlive(victim.process.pid), 'the killed nats-server is gone', 5000);

    // Reads never wait for an election: every server holds the bucket.
    expect(await registrationsByDn()).toEqual(before);
    expect((await config.get(ConfigKeys.cluster(CLUSTER)))!.string()).toBe(configBefore);
    // Every component connection is on a live server again.
    for (const role of ['signaling', 'media', 'gateway']) await until(() => site.context(role).nc.info?.server_name !== victim.name && !site.context(role).nc.isClosed(), `${role} reconnected`, 5000);
    const reconnectedMs = Date.now() - killedAt;
    // Writes work again once the bucket's stream has a leader among the two left.
    await until(async () => (await config.put('probe.nats-cluster', String(Date.now())).then(() => true, () => false)), 'a config bucket write succeeds', 15_000);
    const writableMs = Date.now() - killedAt;
    process.stdout.write(`nats-cluster test: killed ${victim.name}: clients on another server after ${reconnectedMs} ms, config bucket writable after ${writableMs} ms\n`);
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 2000 - Date.now())));
    const gaps = await listening.stop();
    process.stdout.write(`nats-cluster test: phones that missed one of their parties in a 1 s window after the kill (longest, ms): ${JSON.stringify(gaps)}\n`);
    // Media never goes through NATS: every phone hears its parties in every second (the 1 s window of Agent.hears).
    expect(gaps).toEqual({});

    await duringLoss();
    // A registration made while a server is down is kept.
    expect((await a.phone.register(`sip:127.0.0.1:${site.sipPort}`, `sip:${a.dn}@127.0.0.1`)).status).toBe(200);
    await until(async () => (await registrationsByDn())[a.dn] !== before[a.dn], 'the refreshed registration of 7001 stored', 20_000);
    // Configuration edits still reach the site through the bucket. A watcher whose consumer was on
    // the killed server sees them once it has missed two idle heartbeats (5 s each) and made a new one.
    const music = `music/cluster-${Date.now()}`;
    const editedAt = Date.now();
    await site.reconfigure((cluster) => (cluster.spec.options['default-music'] = music), 30_000);
    process.stdout.write(`nats-cluster test: a config edit reached the site ${Date.now() - editedAt} ms after it was written\n`);

    const restartedAt = Date.now();
    await victim.start();
    process.stdout.write(`nats-cluster test: ${victim.name} restarted and current with the cluster after ${Date.now() - restartedAt} ms\n`);
    for (const bucket of [CONFIG_BUCKET, RegistrationKeys.bucket]) {
      await until(async () => (await streamInfo(bucket)).cluster!.replicas!.every((r) => r.current && !r.offline), `${bucket}: every replica current`, 15_000);
    }
    // The restarted server serves the writes it missed.
    const direct = await connectNats(victim.url, 'cluster-test-direct', undefined, nats.client('signaling'));
    try {
      const onVictim = await openBucket(direct, RegistrationKeys.bucket);
      const stored = (await onVictim.get(RegistrationKeys.dn(CLUSTER, a.dn)))!.string();
      expect(stored).toBe((await registrations.get(RegistrationKeys.dn(CLUSTER, a.dn)))!.string());
      expect(JSON.parse(((await (await openBucket(direct, CONFIG_BUCKET)).get(ConfigKeys.cluster(CLUSTER)))!.string())).spec.options['default-music']).toBe(music);
    } finally {
      await direct.close();
    }
  }

  async function everyoneHearsTheirParties(): Promise<void> {
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));
    await c.hears(exactly([d.tone, e.tone]));
    await d.hears(exactly([c.tone, e.tone]));
    await e.hears(exactly([c.tone, d.tone]));
  }

  async function registrationsByDn(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const dn of DNS) {
      const entry = await registrations.get(RegistrationKeys.dn(CLUSTER, dn));
      if (entry?.operation === 'PUT') out[dn] = entry.string();
    }
    return out;
  }

  async function streamInfo(bucket: string) {
    const jsm = await jetstream(reader).jetstreamManager();
    return jsm.streams.info(`KV_${bucket}`);
  }

  function nodeNamed(name: string | undefined): NatsClusterNode {
    const node = nats.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no cluster node named ${name}`);
    return node;
  }
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples what each phone heard in the last second, every 100 ms, until stopped; returns, per
 * phone, the longest run of samples in which it did not hear exactly its parties, in ms.
 */
function listenThroughout(expected: [Agent, number[]][]): { stop(): Promise<Record<string, number>> } {
  const gaps: Record<string, number> = {};
  const missingSince = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = Date.now();
      for (const [agent, tones] of expected) {
        const heard: Heard = agent.media.heard(1000);
        if (exactly(tones)(heard)) {
          missingSince.delete(agent.dn);
          continue;
        }
        const since = missingSince.get(agent.dn) ?? now;
        missingSince.set(agent.dn, since);
        gaps[agent.dn] = Math.max(gaps[agent.dn] ?? 0, now - since + 100);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return gaps;
    },
  };
}
