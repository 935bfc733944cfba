/**
 * Where the operator puts options and DNs: the NATS KV config bucket signaling watches
 * (common/nats/config-kv.ts). One connection per NATS URL, opened on first use.
 */
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { SipCluster, SipDN } from '../common/config/schema.js';
import { bucketReplicas } from '../common/nats/buckets.js';
import { openConfigBucket, publishConfig } from '../common/nats/config-kv.js';
import { connectNats, type NatsClientOptions } from '../common/nats/connect.js';
import { ConfigKeys } from '../common/nats/subjects.js';

export interface ConfigStore {
  publish(natsUrl: string, bucket: string, cluster: SipCluster, dns: SipDN[]): Promise<void>;
  /** Removes every key of the cluster (what ownerReferences cannot clean up). */
  remove(natsUrl: string, bucket: string, clusterName: string): Promise<void>;
  close(): Promise<void>;
}

export class NatsConfigStore implements ConfigStore {
  private readonly connections = new Map<string, Promise<NatsConnection>>();
  private readonly buckets = new Map<string, Promise<KV>>();

  /** `client`: the operator's own NATS user (role config-publisher) and TLS files. */
  constructor(
    private readonly log: Logger,
    private readonly client: NatsClientOptions = { role: 'config-publisher' },
  ) {}

  async publish(natsUrl: string, bucket: string, cluster: SipCluster, dns: SipDN[]): Promise<void> {
    await publishConfig(await this.bucket(natsUrl, bucket, bucketReplicas(cluster.spec)), cluster, dns);
  }

  async remove(natsUrl: string, bucket: string, clusterName: string): Promise<void> {
    const kv = await this.bucket(natsUrl, bucket);
    const keys: string[] = [];
    for await (const key of await kv.keys(ConfigKeys.allOf(clusterName))) keys.push(key);
    for (const key of keys) await kv.delete(key);
  }

  async close(): Promise<void> {
    const conns = [...this.connections.values()];
    this.connections.clear();
    this.buckets.clear();
    for (const c of conns) await (await c.catch(() => undefined))?.drain();
  }

  /** `replicas` left out (removing a cluster's keys): the bucket as it is. */
  private bucket(natsUrl: string, bucket: string, replicas?: number): Promise<KV> {
    const k = `${natsUrl} ${bucket} ${replicas ?? ''}`;
    let kv = this.buckets.get(k);
    if (!kv) {
      kv = this.connection(natsUrl).then((nc) => openConfigBucket(nc, bucket, { replicas, log: this.log }));
      // A failed open is retried on the next reconcile rather than cached.
      kv.catch(() => this.buckets.delete(k));
      this.buckets.set(k, kv);
    }
    return kv;
  }

  private connection(natsUrl: string): Promise<NatsConnection> {
    let nc = this.connections.get(natsUrl);
    if (!nc) {
      nc = connectNats(natsUrl, 'huddle-operator', this.log, this.client);
      nc.catch(() => this.connections.delete(natsUrl));
      this.connections.set(natsUrl, nc);
    }
    return nc;
  }
}
