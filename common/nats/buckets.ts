/**
 * Every JetStream KV bucket and stream of a site is opened here, so that all of them (config,
 * registrations, call state, call detail records) carry the replicas of `spec.nats.replicas`:
 * with 3, a bucket outlives the loss of any one server of a 3-node NATS cluster.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, jetstream, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { nanos, type NatsConnection, type Payload } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { SipClusterSpec } from '../config/schema.js';

/** The replicas a site's buckets should have: spec.nats.replicas, else 1. */
export function bucketReplicas(spec: Pick<SipClusterSpec, 'nats'>): number {
  return spec.nats.replicas ?? 1;
}

export interface BucketOptions extends Partial<Omit<KvOptions, 'replicas'>> {
  /**
   * How long an operation is tried again while the bucket's stream or the cluster's meta group has
   * no leader (a server died and the others elect a new one: up to ~6 s with nats-server 2.9).
   * Default 30 s: elections on a loaded machine take longer.
   */
  writeRetryMs?: number;
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
  const { replicas, log, writeRetryMs = 30_000, ...kvOptions } = options;
  const js = jetstream(nc);
  let kv: KV;
  try {
    kv = await new Kvm(js).create(name, { ...kvOptions, ...(replicas !== undefined ? { replicas } : {}) });
  } catch (err) {
    // e.g. "replicas > 1 not supported in non-clustered mode": a configuration the NATS cannot serve.
    if (replicas !== undefined && replicas > 1) throw new Error(`KV bucket ${name} with ${replicas} replicas (spec.nats.replicas): ${(err as Error).message}`);
    throw err;
  }
  if (replicas === undefined) return retrying(kv, writeRetryMs);
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
      return retrying(kv, writeRetryMs);
    }
  }
  if (replicas > 1) await untilReplicated(jsm, stream, replicas);
  return retrying(kv, writeRetryMs);
}

/**
 * The bucket with its operations tried again while JetStream cannot serve them (after a server
 * loss, until the stream and the meta group have new leaders): on "no responders" and "JetStream
 * system temporarily unavailable" (nothing was done) every operation; on a timeout (it may or may
 * not have been done) the reads (get, and keys, watch and history, which create a consumer
 * through the meta leader) and put and delete, which give the same result when repeated. A
 * compare-and-set (create, update) that timed out is not simply repeated (it could fail on its
 * own earlier success): the bucket is read to learn whether it was stored. Fencing holds: a
 * compare-and-set on a stale revision still fails.
 */
function retrying(kv: KV, retryMs: number): KV {
  const idempotent = new Set<PropertyKey>(['get', 'keys', 'watch', 'history', 'put', 'delete', 'purge']);
  const conditional = new Set<PropertyKey>(['create', 'update']);
  return new Proxy(kv, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      if (!idempotent.has(prop) && !conditional.has(prop)) return method.bind(target);
      return async (...args: unknown[]) => {
        const deadline = Date.now() + retryMs;
        for (;;) {
          try {
            return await method.apply(target, args);
          } catch (err) {
            if (Date.now() >= deadline) throw err;
            if (notDone(err) || (idempotent.has(prop) && timedOut(err))) {
              await new Promise((r) => setTimeout(r, 100));
              continue;
            }
            if (!conditional.has(prop) || !timedOut(err)) throw err;
            const stored = await storedRevision(target, args as [string, Payload, number?], prop === 'update');
            if (stored === 'not stored') continue;
            if (stored === 'overwritten') throw err;
            return stored;
          }
        }
      };
    },
  });
}

/**
 * Whether a compare-and-set that timed out was stored, read back from the bucket: the key holds
 * our value at a later revision (stored: that revision), still holds the revision we expected or
 * nothing (not stored: try again), or another writer's value (overwritten: our write lost).
 */
async function storedRevision(kv: KV, [key, value, expected]: [string, Payload, number?], isUpdate: boolean): Promise<number | 'not stored' | 'overwritten'> {
  const entry = await kv.get(key);
  const present = entry !== null && entry.operation === 'PUT';
  if (isUpdate ? entry?.revision === expected : !present) return 'not stored';
  const wanted = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  if (present && Buffer.from(entry.value).equals(Buffer.from(wanted))) return entry.revision;
  return 'overwritten';
}

/** The error, or one of its causes, is named `name`. */
function causedBy(err: unknown, name: string): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e.name === name) return true;
  return false;
}

/** JetStream did not act on the request: nobody took it, or the meta group had no leader (API error 10008). */
const notDone = (err: unknown) => causedBy(err, 'NoResponders') || (err instanceof Error && /temporarily unavailable/i.test(err.message));
const timedOut = (err: unknown) => causedBy(err, 'TimeoutError');

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

export interface StreamOptions {
  subjects: string[];
  /** How long a message is kept (JetStream max_age). */
  maxAgeHours: number;
  replicas: number;
  log?: Pick<Logger, 'info' | 'warn'>;
}

/** How long JetStream remembers a message id to drop a publish repeated after a lost ack. */
const DuplicateWindowMs = 120_000;

/**
 * Creates the stream `name`, or brings an existing one to the given retention and replicas
 * (JetStream keeps its messages; a shorter max_age drops the older ones). An update that is
 * refused (no permission, too few servers) leaves the stream as it is and is logged: messages are
 * still stored.
 */
export async function openStream(nc: NatsConnection, name: string, options: StreamOptions): Promise<void> {
  const { subjects, maxAgeHours, replicas, log } = options;
  const jsm = await jetstream(nc).jetstreamManager();
  const wanted: Partial<StreamConfig> = { subjects, max_age: nanos(maxAgeHours * 3_600_000), num_replicas: replicas };
  let config: StreamConfig;
  try {
    config = (await jsm.streams.info(name)).config;
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    try {
      await jsm.streams.add({
        name,
        ...wanted,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(DuplicateWindowMs),
      });
    } catch (added) {
      if (replicas > 1) throw new Error(`JetStream stream ${name} with ${replicas} replicas (spec.nats.replicas): ${(added as Error).message}`);
      throw added;
    }
    if (replicas > 1) await untilReplicated(jsm, name, replicas);
    return;
  }
  if (config.max_age === wanted.max_age && config.num_replicas === replicas && subjects.every((s) => config.subjects.includes(s))) return;
  try {
    await jsm.streams.update(name, { ...config, ...wanted, subjects: [...new Set([...config.subjects, ...subjects])] });
    log?.info({ stream: name, maxAgeHours, replicas }, 'JetStream stream brought to the configured retention and replicas');
  } catch (err) {
    log?.warn({ stream: name, maxAgeHours, replicas, err: (err as Error).message }, 'JetStream stream keeps its earlier retention or replicas: the update was refused');
  }
}
