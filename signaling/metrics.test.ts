import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RequestNames } from '../common/tlib/enums.js';
import { CallSetupClock, signalingMetrics, tlibRequestLabel } from './metrics.js';
import type { ModelOutput } from './model/index.js';

describe('signaling metric labels', () => {
  it('labels T-Library requests by their name, and any other name (a forged envelope) as other', () => {
    for (const name of RequestNames) expect(tlibRequestLabel(name)).toBe(name);
    expect(tlibRequestLabel('XMXQ971U')).toBe('other');
    expect(tlibRequestLabel('__proto__')).toBe('other');
  });
});

describe('call set-up time', () => {
  const inbound = (legId: string): ModelOutput => ({ kind: 'sip.connect', direction: 'inbound', sipRef: `in-${legId}`, legId, bridgeId: 'br-1' });
  const outbound: ModelOutput = { kind: 'sip.connect', direction: 'outbound', legId: 'leg-9', bridgeId: 'br-1', target: { dn: '7002' }, caller: { alias: '7001', location: 'SiteA' }, autoAnswer: false, originConnId: '0000000000000001' };

  async function observed(registry: Registry): Promise<{ count: number; sum: number }> {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'huddle_call_setup_seconds');
    const value = (suffix: string) => metric?.values.find((v) => (v as { metricName?: string }).metricName === `huddle_call_setup_seconds${suffix}`)?.value ?? NaN;
    return { count: value('_count'), sum: value('_sum') };
  }

  it('is registered by signaling and observes an inbound leg from its creation to its first 180 or 200, once', async () => {
    const registry = new Registry();
    signalingMetrics(registry);
    expect((await registry.getMetricsAsJSON()).find((m) => m.name === 'huddle_call_setup_seconds')?.type).toBe('histogram');

    let now = 1000;
    const clocked = new Registry();
    const clock = new CallSetupClock(new Histogram({ name: 'huddle_call_setup_seconds', help: 'h', buckets: [0.1, 1], registers: [clocked] }), () => now);
    clock.sipAction(inbound('leg-1'));
    clock.sipAction(outbound);
    now += 250;
    clock.sipAction({ kind: 'sip.ringing', legId: 'leg-1' });
    now += 5000;
    clock.sipAction({ kind: 'sip.answer', legId: 'leg-1' });
    // 3pcc legs we call out on, and a caller who hangs up before ringing, are not set-ups to time.
    clock.sipAction({ kind: 'sip.answer', legId: 'leg-9' });
    clock.sipAction(inbound('leg-2'));
    clock.sipAction({ kind: 'sip.release', legId: 'leg-2', status: 487 });
    clock.sipAction({ kind: 'sip.answer', legId: 'leg-2' });
    expect(await observed(clocked)).toEqual({ count: 1, sum: 0.25 });
    expect(clock.pending).toBe(0);
  });

  it('forgets the oldest legs beyond its cap', () => {
    const clock = new CallSetupClock(new Histogram({ name: 'huddle_call_setup_seconds', help: 'h', registers: [new Registry()] }), () => 0, 3);
    for (let i = 0; i < 10; i++) clock.sipAction(inbound(`leg-${i}`));
    expect(clock.pending).toBe(3);
  });
});
