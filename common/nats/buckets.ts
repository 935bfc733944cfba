/**
 * Every JetStream KV bucket of a site is opened here, so that all of them (config, registrations,
 * call state) carry the replicas of `spec.nats.replicas`: with 3, a bucket outlives the loss of any
 * one server of a 3-node NATS cluster.
 */
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { SipClusterSpec } from '../config/schema.js';

/** The replicas a site's buckets should have: spec.nats.replicas, else 1. */
export function bucketReplicas(spec: Pick<SipClusterSpec, 'nats'>): number {
  return spec.nats.replicas ?? 1;
}

export interface BucketOptions extends Partial<Omit<KvOptions, 'replicas'>> {
  /**
   * Replicas to create the bucket with and to bring an existing bucket to. Left out (a reader that
   * does not know the site's configuration yet): created with 1 when absent, an existing one kept.
   */
  replicas?: number;
  /** Where a bucket whose replicas cannot be brought to `replicas` is reported. */
  log?: Pick<Logger, 'info' | 'warn'>;
}

/**
 * Opens `name`, creating it when absent (a NATS that cannot hold `replicas` copies fails this with
 * spec.nats.replicas named). A bucket that exists with other replicas is updated to
 * `replicas` (JetStream moves the data); when that is refused (no permission, too few servers) the
 * bucket is used as it is and the difference logged: a site must still start.
 */
export async function openBucket(nc: NatsConnection, name: string, options: BucketOptions = {}): Promise<KV> {
  const { replicas, log, ...kvOptions } = options;
  const js = jetstream(nc);
  let kv: KV;
  try {
    kv = await new Kvm(js).create(name, { ...kvOptions, ...(replicas !== undefined ? { replicas } : {}) });
  } catch (err) {
    // e.g. "replicas > 1 not supported in non-clustered mode": a configuration the NATS cannot serve.
    if (replicas !== undefined && replicas > 1) throw new Error(`KV bucket ${name} with ${replicas} replicas (spec.nats.replicas): ${(err as Error).message}`);
    throw err;
  }
  if (replicas === undefined) return kv;
  const have = (await kv.status()).replicas;
  const jsm = await js.jetstreamManager();
  const stream = `KV_${name}`;
  if (have !== replicas) {
    try {
      const { config } = await jsm.streams.info(stream);
      await jsm.streams.update(stream, { ...config, num_replicas: replicas });
      log?.info({ bucket: name, from: have, to: replicas }, 'KV bucket replicas changed to the configured number');
    } catch (err) {
      log?.warn({ bucket: name, replicas: have, configured: replicas, err: (err as Error).message }, 'KV bucket keeps replicas other than spec.nats.replicas: the update was refused');
      return kv;
    }
  }
  if (replicas > 1) await untilReplicated(jsm, stream, replicas);
  return kv;
}

/** Until the stream has a leader and its other replicas are current: before that a write may find no responder. */
async function untilReplicated(jsm: JetStreamManager, stream: string, replicas: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { cluster } = await jsm.streams.info(stream);
    const current = (cluster?.replicas ?? []).filter((r) => r.current && !r.offline).length;
    if (cluster?.leader && current >= replicas - 1) return;
    if (Date.now() > deadline) throw new Error(`KV bucket stream ${stream}: not replicated ${replicas} times within ${timeoutMs} ms (leader ${cluster?.leader ?? 'none'}, ${current} current followers)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
