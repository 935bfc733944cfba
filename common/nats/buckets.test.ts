/**
 * openBucket on real nats-servers: every KV bucket of a site at spec.nats.replicas, an existing
 * bucket brought to them, a NATS that cannot hold them named, and writes that go through the
 * election after the server leading the bucket is killed. spec.nats validation is here too.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNats, startTestNatsCluster, type TestNatsCluster } from '../../test/support/infra.js';
import { parseConfig } from '../config/load.js';
import { ConfigError } from '../config/validate.js';
import { bucketReplicas, openBucket } from './buckets.js';
import { connectNats, natsServers } from './connect.js';

const localYaml = readFileSync(path.resolve('config/local.yaml'), 'utf8');

function problemsWith(nats: string): string[] {
  try {
    parseConfig(localYaml.replace('\n  media:\n', `\n  nats: ${nats}\n  media:\n`), 'test.yaml', '/base');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('spec.nats for a NATS cluster', () => {
  it('takes replicas 1 or 3 (unset: 1) and names the field otherwise', () => {
    expect(problemsWith('{ replicas: 3 }')).toEqual([]);
    expect(problemsWith('{ replicas: 2 }')).toEqual(['document 1 (SipCluster site-a): spec.nats.replicas: must be one of 1, 3']);
    expect(bucketReplicas(parseConfig(localYaml, 'local.yaml', '/base').cluster.spec)).toBe(1);
  });

  it("takes a cluster's servers comma-separated in url, each nats:// or tls://", () => {
    expect(problemsWith('{ url: "nats://a:4222,nats://b:4222,nats://c:4222" }')).toEqual([]);
    expect(problemsWith('{ url: "nats://a:4222,http://b:4222" }')).toEqual([expect.stringMatching(/^document 1 \(SipCluster site-a\): spec\.nats\.url: must match pattern/)]);
    expect(natsServers('nats://a:4222, nats://b:4222')).toEqual(['nats://a:4222', 'nats://b:4222']);
  });

  it('takes embedded.servers 1 or 3 for npm start', () => {
    expect(problemsWith('{ embedded: { servers: 3 }, replicas: 3 }')).toEqual([]);
    expect(problemsWith('{ embedded: { servers: 2 } }')).toEqual(['document 1 (SipCluster site-a): spec.nats.embedded.servers: must be one of 1, 3']);
  });
});

describe('openBucket', () => {
  let cluster: TestNatsCluster;
  let nc: NatsConnection;

  beforeAll(async () => {
    cluster = await startTestNatsCluster();
    nc = await connectNats(cluster.url, 'buckets-test');
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  const streamInfo = async (bucket: string) => (await jetstream(nc).jetstreamManager()).streams.info(`KV_${bucket}`);

  it('creates a bucket with a current copy on each of the 3 servers', async () => {
    const kv = await openBucket(nc, 'huddle-calls', { replicas: 3 });
    expect((await kv.status()).replicas).toBe(3);
    const info = await streamInfo('huddle-calls');
    expect(info.cluster!.replicas!.filter((r) => r.current)).toHaveLength(2);
  });

  it('brings a bucket that exists with 1 replica to 3, its values kept', async () => {
    const before = await openBucket(nc, 'grown', { replicas: 1 });
    await before.put('SiteA.group.g1', 'state');
    const after = await openBucket(nc, 'grown', { replicas: 3 });
    expect((await streamInfo('grown')).config.num_replicas).toBe(3);
    expect((await after.get('SiteA.group.g1'))?.string()).toBe('state');
  });

  it('opens a bucket as it is when no replicas are asked for (a reader)', async () => {
    await openBucket(nc, 'read-as-is', { replicas: 3 });
    expect((await (await openBucket(nc, 'read-as-is')).status()).replicas).toBe(3);
  });

  it('refuses replicas 3 on a single server, naming spec.nats.replicas', async () => {
    const single = await startTestNats();
    const snc = await connectNats(single.url, 'single');
    try {
      await expect(openBucket(snc, 'too-many', { replicas: 3 })).rejects.toThrow(/KV bucket too-many with 3 replicas \(spec\.nats\.replicas\): replicas > 1 not supported/);
    } finally {
      await snc.close();
      await single.stop();
    }
  });

  it('puts, compare-and-sets and reads through the loss of the server leading the bucket; nothing written is lost', async () => {
    const kv = await openBucket(nc, 'through-loss', { replicas: 3 });
    const first = await kv.put('SiteA.group.g1', 'rev-1');
    const leader = (await streamInfo('through-loss')).cluster!.leader!;
    const victim = cluster.nodes.find((n) => n.name === leader)!;
    process.kill(victim.process.pid!, 'SIGKILL');
    const killedAt = Date.now();
    try {
      // Writes wait for the new leader instead of failing.
      const second = await kv.update('SiteA.group.g1', 'rev-2', first);
      await kv.put('SiteA.replica.r1', 'lease');
      const writableMs = Date.now() - killedAt;
      process.stdout.write(`buckets test: bucket leader ${leader} killed, writes served again after ${writableMs} ms\n`);
      expect(second).toBeGreaterThan(first);
      // A stale revision still fails: fencing holds through the election.
      await expect(kv.update('SiteA.group.g1', 'stale', first)).rejects.toThrow(/wrong last sequence/);
      expect((await kv.get('SiteA.group.g1'))?.string()).toBe('rev-2');
    } finally {
      await victim.start();
    }
    const direct = await connectNats(victim.url, 'on-restarted');
    try {
      const onVictim = await openBucket(direct, 'through-loss');
      expect((await onVictim.get('SiteA.group.g1'))?.string()).toBe('rev-2');
      expect((await onVictim.get('SiteA.replica.r1'))?.string()).toBe('lease');
    } finally {
      await direct.close();
    }
  });
});
