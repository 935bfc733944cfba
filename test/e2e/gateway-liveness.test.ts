/**
 * A gateway replica that crashes (here: loses its NATS connection for good) must not leave its
 * desktops registered in signaling forever; one that stops cleanly says so at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../common/nats/connect.js';
import { TlibClient } from '../../tlib-api/client/index.js';
import { createGateway } from '../../tlib-api/gateway/gateway.js';
import { metric, Site, until } from './site.js';

describe('gateway liveness', () => {
  let site: Site;
  beforeAll(async () => {
    site = await Site.start();
  });
  afterAll(async () => {
    await site?.stop();
  });

  async function replicaWithDesktop(name: string, dn: string) {
    const nc = await connectNats(site.nats.url, name, undefined, site.nats.client('gateway'));
    const gateway = await createGateway({ ...site.context(name), nc }, { listen: '127.0.0.1:0', aliveIntervalMs: 300 });
    const client = new TlibClient({ url: gateway.wsUrl, token: site.supervisorToken, reconnect: false });
    await client.open();
    await client.registerAddress({ thisDN: dn });
    return { nc, gateway, client };
  }

  it('a replica gone silent: signaling ends its desktops registrations after three missed announcements', async () => {
    const before = await metric(site, 'huddle_signaling_registered_dns');
    const replica = await replicaWithDesktop('gw-crashing', '7004');
    expect(await metric(site, 'huddle_signaling_registered_dns')).toBe(before + 1);
    await replica.nc.close();
    await until(async () => (await metric(site, 'huddle_signaling_registered_dns')) === before, 'the registration of 7004 to end', 10_000);
    await replica.client.close();
    await replica.gateway.stop();
  });

  it('a replica that stops cleanly ends its desktops registrations at once', async () => {
    const before = await metric(site, 'huddle_signaling_registered_dns');
    const replica = await replicaWithDesktop('gw-stopping', '7005');
    expect(await metric(site, 'huddle_signaling_registered_dns')).toBe(before + 1);
    await replica.gateway.stop();
    await until(async () => (await metric(site, 'huddle_signaling_registered_dns')) === before, 'the registration of 7005 to end', 5_000);
    await replica.client.close();
    await replica.nc.close();
  });
});
