/**
 * Publishes the call model's detail records (ModelOutput `cdr`) to the site's JetStream stream.
 * A call never waits for its record: `publish` queues it and returns; records are stored in the
 * background, a few at a time, each tried again (with the same message id, so JetStream keeps one
 * copy if an earlier try was stored but its ack lost) while JetStream cannot take it, for at most
 * RetryForMs — as long as a NATS cluster may need to elect a stream leader, with margin. A record
 * that is still not stored then, or that finds the queue full, is counted and logged, never kept
 * in memory without bound.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { CdrFormatVersion, type CallDetail, type CallDetailRecord } from '../common/nats/cdr-contract.js';
import { encodeJson } from '../common/nats/codec.js';
import { openStream } from '../common/nats/buckets.js';
import { CdrStream, Subjects } from '../common/nats/subjects.js';

/** Records waiting to be stored at most; past that a new one is dropped (and counted). */
const MaxQueued = 10_000;
/** Records being stored at once: enough for bench:cps rates at one JetStream round trip each. */
const InFlight = 16;
const RetryForMs = 30_000;
const FirstRetryMs = 100;
const MaxRetryMs = 2000;
const AttemptTimeoutMs = 5000;

export interface CdrMetrics {
  /** Records stored. */
  stored: Counter;
  /** Records not stored, by reason: `failed` (JetStream refused or did not answer in time), `overflow` (the queue was full). */
  notStored: Counter<'reason'>;
}

export interface CdrPublisherOptions {
  nc: NatsConnection;
  location: string;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  metrics: CdrMetrics;
  /** How long a record is tried again before it counts as not stored; default RetryForMs. */
  retryForMs?: number;
}

export class CdrPublisher {
  private readonly js: JetStreamClient;
  private readonly queue: CallDetailRecord[] = [];
  private running = 0;
  private idle: (() => void) | undefined;

  private constructor(private readonly o: CdrPublisherOptions) {
    this.js = jetstream(o.nc);
  }

  /**
   * Creates (or brings to the configured retention and replicas) the site's CDR stream. A stream
   * that cannot be made (NATS users from before CDRs, without the stream's permissions) does not
   * stop signaling: calls go on, and each record is counted not stored, which alerts.
   */
  static async open(o: CdrPublisherOptions & { maxAgeHours: number; replicas: number }): Promise<CdrPublisher> {
    const publisher = new CdrPublisher(o);
    await publisher.retain(o.maxAgeHours, o.replicas).catch((err: Error) => o.log.error({ err: err.message }, 'CDR stream not made: call detail records will not be stored'));
    return publisher;
  }

  /** Applies a changed spec.cdr.maxAgeHours (or spec.nats.replicas) to the stream. */
  async retain(maxAgeHours: number, replicas: number): Promise<void> {
    await openStream(this.o.nc, CdrStream.name(this.o.location), { subjects: [Subjects.cdrAll(this.o.location)], maxAgeHours, replicas, log: this.o.log });
  }

  /** Queues a call's record; returns at once. */
  publish(detail: CallDetail): void {
    if (this.queue.length >= MaxQueued) {
      this.o.metrics.notStored.inc({ reason: 'overflow' });
      this.o.log.error({ connId: detail.connId }, 'call detail record dropped: too many records waiting to be stored');
      return;
    }
    this.queue.push({ version: CdrFormatVersion, ...detail });
    this.pump();
  }

  /** Resolves once every queued record is stored or given up (stopping), or after `ms`. */
  async flush(ms: number): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((resolve) => (this.idle = resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  private pump(): void {
    while (this.running < InFlight) {
      const record = this.queue.shift();
      if (record === undefined) break;
      this.running++;
      void this.store(record).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.queue.length === 0) this.idle?.();
      });
    }
  }

  private async store(record: CallDetailRecord): Promise<void> {
    const subject = Subjects.cdr(this.o.location, record.connId);
    const data = encodeJson(record);
    const h = headers();
    h.set('Content-Type', 'application/json');
    const msgID = CdrStream.msgId(record.connId, record.end);
    const deadline = Date.now() + (this.o.retryForMs ?? RetryForMs);
    for (let wait = FirstRetryMs; ; wait = Math.min(wait * 2, MaxRetryMs)) {
      try {
        await this.js.publish(subject, data, { msgID, headers: h, timeout: AttemptTimeoutMs });
        this.o.metrics.stored.inc();
        return;
      } catch (err) {
        if (Date.now() + wait >= deadline) {
          this.o.metrics.notStored.inc({ reason: 'failed' });
          this.o.log.error({ connId: record.connId, err: (err as Error).message }, 'call detail record not stored');
          return;
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}
