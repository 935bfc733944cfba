import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { methodLabel, SipMetrics } from './metrics.js';

describe('SIP metric labels', () => {
  it('counts methods outside the IANA registry as other, so a stranger cannot create series', async () => {
    const registry = new Registry();
    const metrics = new SipMetrics(registry);
    for (let i = 0; i < 1000; i++) metrics.request('in', `XMXQ${i}U`);
    metrics.request('in', 'INVITE');
    metrics.response('in', 'XMXQ1U', 405);
    metrics.retransmission('in', 'XMXQ2U');
    const values = (await registry.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ name: m.name, ...v })));
    const methods = new Set(values.filter((v) => v.labels.method !== undefined).map((v) => v.labels.method));
    expect([...methods].sort()).toEqual(['INVITE', 'other']);
    expect(values.find((v) => v.name === 'huddle_sip_requests_total' && v.labels.method === 'other')?.value).toBe(1000);
    expect(methodLabel('PRACK')).toBe('PRACK');
    expect(methodLabel('invite')).toBe('other');
  });
});
