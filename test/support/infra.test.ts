import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { startTestNats, startTestRtpengine, type TestNats, type TestRtpengine } from './infra.js';
import { waitForNgPong } from '../../common/supervisor/rtpengine.js';

describe('test infrastructure', () => {
  let nats: TestNats;
  let rtp: TestRtpengine;
  beforeAll(async () => {
    [nats, rtp] = await Promise.all([startTestNats(), startTestRtpengine()]);
  });
  afterAll(async () => {
    await Promise.all([nats?.stop(), rtp?.stop()]);
  });

  it('runs a nats-server with JetStream KV', async () => {
    const nc = await connect({ servers: nats.url });
    const kv = await new Kvm(jetstream(nc)).create('infra-test');
    await kv.put('k', 'v');
    expect((await kv.get('k'))?.string()).toBe('v');
    await nc.close();
  });

  it('runs an rtpengine that answers ng ping', async () => {
    const [host, port] = rtp.ng.split(':');
    await expect(waitForNgPong(host!, Number(port), 2000)).resolves.toBeUndefined();
  });

  it('stops both and leaves no process behind', async () => {
    const pids = [nats.process.pid, rtp.process.pid];
    await Promise.all([nats.stop(), rtp.stop()]);
    for (const pid of pids) expect(() => process.kill(pid!, 0)).toThrow();
  });
});
