/**
 * A gateway replica that crashes (here: loses its NATS connection for good) must not leave its
 * desktops registered in signaling forever; one that stops cleanly says so at once; one whose NATS
 * connection comes back (a server failover loses the events in flight) has its desktops resynced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../common/nats/connect.js';
import type { TEvent } from '../../common/tlib/messages.js';
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

  it('a replica whose NATS connection comes back: the DNs sent events lately are resynced with their calls, the others are not', async () => {
    const before = await metric(site, 'huddle_signaling_registered_dns');
    const replica = await replicaWithDesktop('gw-relink', '7001');
    await replica.client.registerAddress({ thisDN: '7003' });
    const [a, b] = [await site.agent('7001', 0), await site.agent('7002', 1)];
    await a.dial(b.dn);
    const connId = (await a.desktop!.waitFor((e) => e.event === 'EventEstablished', 'EventEstablished')).ConnID!;
    const unasked: TEvent[] = [];
    replica.client.on('event', (e: TEvent) => {
      if (e.ReferenceID === undefined || e.ReferenceID === 0) unasked.push(e);
    });
    await replica.nc.reconnect();
    // As after a takeover: EventRegistered, the call, and its LCTParty list (call info is on).
    await until(() => unasked.some((e) => e.event === 'EventUserEvent'), 'the resync of 7001 on the relinked gateway', 5000);
    expect(unasked.map((e) => [e.event, e.ThisDN])).toEqual([
      ['EventRegistered', '7001'],
      ['EventPartyInfo', '7001'],
      ['EventUserEvent', '7001'],
    ]);
    expect(unasked[1]).toMatchObject({ ConnID: connId });
    await a.desktop!.client.releaseCall({ thisDN: a.dn, connID: connId });
    await replica.client.close();
    await replica.gateway.stop();
    await replica.nc.close();
    // 7003 was registered only through this replica; 7001 and 7002 stay with the agents' desktops.
    await until(async () => (await metric(site, 'huddle_signaling_registered_dns')) === before + 2, 'the registration of 7003 to end', 5_000);
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
