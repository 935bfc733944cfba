/**
 * T-Library requests between signaling replicas over a real nats-server: a request reaching a
 * replica that does not own its call is answered by the owner, even a slow one, and a request
 * the gateway sends again (same id) is carried out once.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../common/nats/connect.js';
import { createLogger } from '../common/process/logger.js';
import type { TEvent, TRequest } from '../common/tlib/messages.js';
import { startTestNats, type TestNats } from '../test/support/infra.js';
import { TlibRouter } from './tlib-forward.js';

const SITE = 'SiteF';
let nats: TestNats;
const connections: NatsConnection[] = [];
const routers: TlibRouter[] = [];

beforeAll(async () => {
  nats = await startTestNats({ sites: [{ location: SITE }] });
});

afterAll(async () => {
  for (const r of routers) await r.drain();
  for (const nc of connections) await nc.close();
  await nats?.stop();
});

/** A replica's router: it owns `calls`, answers after `delayMs`, and counts what it handled. */
async function replica(name: string, peers: string[], calls: string[], delayMs = 0) {
  const nc = await connectNats(nats.url, name, undefined, nats.client('signaling'));
  connections.push(nc);
  const handled: string[] = [];
  const router = new TlibRouter({
    nc,
    location: SITE,
    replica: name,
    owns: (connId) => calls.includes(connId),
    peers: () => peers,
    takeoverPending: () => false,
    handle: async (request) => {
      handled.push(request.request);
      await new Promise((r) => setTimeout(r, delayMs));
      const connId = (request as { ConnID?: string }).ConnID ?? '';
      return calls.includes(connId)
        ? [{ event: 'EventPartyInfo', ConnID: connId, ReferenceID: request.ReferenceID } as TEvent]
        : [{ event: 'EventError', ErrorCode: 56, ReferenceID: request.ReferenceID } as TEvent];
    },
    log: createLogger('test', 'silent'),
  });
  router.start();
  routers.push(router);
  return { router, handled };
}

const query = (connId: string, ref = 1) => ({ request: 'QueryCall', ReferenceID: ref, ThisDN: '7001', ConnID: connId }) as unknown as TRequest;
const origin = { gateway: 'gw', client: 'desk' };

describe('T-Library requests between replicas', () => {
  it('a call a loaded replica owns is answered by it, not reported unknown by the replica the request reached', async () => {
    const [owner, other] = [await replica('signaling-0', ['signaling-1'], ['c1'], 1300), await replica('signaling-1', ['signaling-0'], [])];
    expect(await other.router.route(query('c1'), origin, 'req-0')).toEqual([expect.objectContaining({ event: 'EventPartyInfo', ConnID: 'c1' })]);
    expect(other.handled).toEqual([]);
    expect(owner.handled).toEqual(['QueryCall']);
  });

  it('a peer that never answers is not guessed to hold no call: the request times out (EventError 57)', async () => {
    const [, other] = [await replica('signaling-4', ['signaling-5'], ['c4'], 6000), await replica('signaling-5', ['signaling-4'], [])];
    expect(await other.router.route(query('c4', 9), origin, 'req-4')).toEqual([expect.objectContaining({ event: 'EventError', ErrorCode: 57, ReferenceID: 9 })]);
    expect(other.handled).toEqual([]);
  }, 15_000);

  it('carries out a request once whatever the number of attempts with its id', async () => {
    const [owner, other] = [await replica('signaling-2', ['signaling-3'], ['c2'], 200), await replica('signaling-3', ['signaling-2'], [])];
    const attempts = await Promise.all([owner.router.route(query('c2', 7), origin, 'req-1'), other.router.route(query('c2', 7), origin, 'req-1'), owner.router.route(query('c2', 7), origin, 'req-1')]);
    for (const events of attempts) expect(events).toEqual([expect.objectContaining({ event: 'EventPartyInfo', ReferenceID: 7 })]);
    expect(owner.handled).toEqual(['QueryCall']);
    await owner.router.route(query('c2', 8), origin, 'req-2');
    expect(owner.handled).toEqual(['QueryCall', 'QueryCall']);
  });
});
