/**
 * The CDR publisher against a real nats-server (open: the test deletes the stream, which no
 * component's user may; permissions are test/platform/nats-security.test.ts's): records are stored
 * once even when published again (message id), and a record JetStream cannot take is counted as
 * not stored after the retry window, without holding up the caller.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallDetail } from '../common/nats/cdr-contract.js';
import { connectNats } from '../common/nats/connect.js';
import { CdrStream } from '../common/nats/subjects.js';
import { startTestNats, type TestNats } from '../test/support/infra.js';
import { CdrPublisher } from './cdr-publisher.js';
import { signalingMetrics } from './metrics.js';

const SITE = 'SiteA';

function detail(connId: string, end: number): CallDetail {
  return { connId, previousConnIds: [], site: SITE, type: 'Internal', start: end - 1000, end, conference: false, parties: [], dns: [], trunks: [], callIds: [], listenDisconnects: [], release: { cause: 'Ok' } };
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

async function until(done: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('CDR publisher', () => {
  let nats: TestNats;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connectNats(nats.url, 'cdr-publisher-test');
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('stores a record published twice once, and counts a record JetStream cannot take as not stored', async () => {
    const registry = new Registry();
    const metrics = signalingMetrics(registry);
    const publisher = await CdrPublisher.open({
      nc,
      location: SITE,
      log: pino({ level: 'silent' }),
      metrics: { stored: metrics.cdrStored, notStored: metrics.cdrNotStored },
      maxAgeHours: 1,
      replicas: 1,
      retryForMs: 600,
    });
    const jsm = await jetstream(nc).jetstreamManager();
    const stream = CdrStream.name(SITE);
    expect((await jsm.streams.info(stream)).config.max_age).toBe(3_600_000_000_000);

    publisher.publish(detail('00000000000000a1', 1000));
    publisher.publish(detail('00000000000000a1', 1000));
    publisher.publish(detail('00000000000000a2', 2000));
    await publisher.flush(5000);
    expect(await value(registry, 'huddle_cdr_stored_total')).toBe(3);
    expect((await jsm.streams.info(stream)).state.messages).toBe(2);

    // Retention follows spec.cdr.maxAgeHours.
    await publisher.retain(2, 1);
    expect((await jsm.streams.info(stream)).config.max_age).toBe(7_200_000_000_000);

    // No stream: JetStream answers nobody. publish() returns at once; the record is given up after the window.
    await jsm.streams.delete(stream);
    const before = performance.now();
    publisher.publish(detail('00000000000000a3', 3000));
    expect(performance.now() - before).toBeLessThan(50);
    await until(async () => (await value(registry, 'huddle_cdr_not_stored_total', { reason: 'failed' })) === 1, 5000);
    expect(await value(registry, 'huddle_cdr_stored_total')).toBe(3);
  });
});
