import { afterEach, describe, expect, it } from 'vitest';
import { ConferenceEventNotifier, type ConferenceState } from './conference-events.js';
import type { SipRequest } from './sip/index.js';
import { loopbackStacks } from '../test/support/sip-stacks.js';

const { stack, closeAll } = loopbackStacks();

afterEach(closeAll);

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const conference: ConferenceState = {
  kind: 'conference.state',
  connId: '00b1c2d3e4f50607',
  version: 2,
  state: 'full',
  members: [
    { alias: '7001', location: 'SiteA', role: 'Origination', status: 'connected', media: 'sendrecv', dn: '7001' },
    { alias: '7003', location: 'SiteA', role: 'Destination', status: 'on-hold', media: 'inactive', dn: '7003' },
  ],
};

describe('RFC 4575 notifier', () => {
  it('NOTIFYs a member’s subscriber on each change, and terminates the subscription when stopping', async () => {
    const uas = await stack();
    const notifier = new ConferenceEventNotifier({ location: () => 'SiteA' });
    uas.onRequest((req) => notifier.onSubscribe(req));
    const uac = await stack();
    const notifies: SipRequest[] = [];
    const { response } = await uac.subscribe(`sip:7003@127.0.0.1:${uas.addresses[0]!.port}`, { event: 'conference', expires: 600, onNotify: (n) => notifies.push(n) });
    expect(response.status).toBe(200);
    await until(() => notifies.length === 1, 'the first NOTIFY');
    expect(notifies[0]!.get('subscription-state')).toMatch(/^active;expires=/);
    expect(notifies[0]!.body.toString()).toContain('state="deleted"');

    notifier.stateChanged(conference);
    await until(() => notifies.length === 2, 'the NOTIFY of the change');
    const body = notifies[1]!.body.toString();
    expect(body).toContain('entity="sip:conf-00b1c2d3e4f50607@SiteA" state="full" version="2"');
    expect(body).toContain('<status>on-hold</status>');

    notifier.endAll();
    await until(() => notifies.length === 3, 'the final NOTIFY');
    expect(notifies[2]!.get('subscription-state')).toBe('terminated;reason=timeout');
  });

  it('refuses other event packages with 489', async () => {
    const uas = await stack();
    const notifier = new ConferenceEventNotifier({ location: () => 'SiteA' });
    uas.onRequest((req) => notifier.onSubscribe(req));
    const uac = await stack();
    const { response } = await uac.subscribe(`sip:7003@127.0.0.1:${uas.addresses[0]!.port}`, { event: 'presence', onNotify: () => undefined });
    expect(response.status).toBe(489);
  });
});
