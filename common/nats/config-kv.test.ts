import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { loadConfigFile } from '../config/load.js';
import { startTestNats, type TestNats } from '../../test/support/infra.js';
import { LiveConfig, openConfigBucket, publishConfig } from './config-kv.js';
import { ConfigKeys } from './subjects.js';
import { encodeJson } from './codec.js';

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('config bucket', () => {
  let nats: TestNats;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('publishes a configuration that a watcher sees, and live changes without a restart', async () => {
    const config = loadConfigFile('config/local.yaml');
    const kv = await openConfigBucket(nc, 'cfg-test');
    await publishConfig(kv, config.cluster, config.dns);
    const live = await LiveConfig.watch(kv, 'site-a');
    expect(live.cluster.spec.options['music-listen-disconnect']).toBe('music/on_hold');
    expect(live.dn('9100')?.spec.options['sip-enable-moh']).toBe(false);
    expect(live.dns).toHaveLength(7);

    const changed = structuredClone(config.cluster);
    changed.spec.options['music-listen-disconnect'] = 'music/other';
    const fewerDns = config.dns.filter((d) => d.spec.number !== '7005');
    await publishConfig(kv, changed, fewerDns);
    await until(() => live.cluster.spec.options['music-listen-disconnect'] === 'music/other' && live.dn('7005') === undefined);
    expect(live.dns).toHaveLength(6);
    live.stop();
  });

  it('ignores an invalid value written by hand and keeps the last good one', async () => {
    const config = loadConfigFile('config/local.yaml');
    const kv = await openConfigBucket(nc, 'cfg-test-2');
    await publishConfig(kv, config.cluster, config.dns);
    const live = await LiveConfig.watch(kv, 'site-a');
    const broken = structuredClone(config.cluster) as unknown as { spec: { options: Record<string, unknown> } };
    broken.spec.options['music-listen-disconnect'] = '';
    await kv.put(ConfigKeys.cluster('site-a'), encodeJson(broken));
    const marker = structuredClone(config.dns[0]!);
    marker.spec.options['sip-enable-moh'] = false;
    await kv.put(ConfigKeys.dn('site-a', marker.spec.number), encodeJson(marker));
    await until(() => live.dn(marker.spec.number)?.spec.options['sip-enable-moh'] === false);
    expect(live.cluster.spec.options['music-listen-disconnect']).toBe('music/on_hold');
    live.stop();
  });
});
