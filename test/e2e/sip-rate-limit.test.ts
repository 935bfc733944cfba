/**
 * The per-source SIP rate limit (spec.sip.rateLimit, after Kamailio pike) on a real site: sipp
 * floods from 127.0.0.2 with requests of made-up methods while our test phones on 127.0.0.1
 * register and call each other. The flooding source is blocked, the phones are not, and
 * made-up method names (a new one per request from a third source) do not become metric series.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSipp } from '../support/sipp.js';
import { metricValue, Site, until } from './site.js';

const FLOOD_SOURCE = '127.0.0.2';
let site: Site;

beforeAll(async () => {
  site = await Site.start({
    edit: (yaml) => yaml.replace(/\n {2}sip:\n/, '\n  sip:\n    rateLimit: { requestsPerWindow: 100, windowMs: 1000, banMs: 30000 }\n'),
  });
});
afterAll(async () => {
  await site?.stop();
});

/** `n` out-of-dialog requests from `host`, each with a method name never used before. */
async function sendMadeUpMethods(host: string, n: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const port = socket.address().port;
  for (let i = 0; i < n; i++) {
    const method = `XMXQ${i}U`;
    const request = [
      `${method} sip:7001@127.0.0.1:${site.sipPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${host}:${port};branch=z9hG4bK-made-up-${i}`,
      `From: <sip:stranger@${host}>;tag=s${i}`,
      'To: <sip:7001@127.0.0.1>',
      `Call-ID: made-up-${i}@${host}`,
      `CSeq: 1 ${method}`,
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    await new Promise<void>((resolve, reject) => socket.send(request, site.sipPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }
  socket.close();
}

async function sipRequestsByMethod(): Promise<Map<string, number>> {
  const metric = await site.registry.getSingleMetric('huddle_sip_requests_total')?.get();
  const byMethod = new Map<string, number>();
  for (const v of metric?.values ?? []) if (v.labels.direction === 'in') byMethod.set(String(v.labels.method), v.value);
  return byMethod;
}

describe('per-source SIP request rate limit', () => {
  it('blocks a flooding source while phones on another source still register and call', async () => {
    const flood = await startSipp({
      scenario: 'flood-unknown-method.xml',
      remote: `127.0.0.1:${site.sipPort}`,
      localHost: FLOOD_SOURCE,
      calls: 6000,
      rate: 2000,
      service: '7001',
      timeoutS: 20,
    });
    // During the flood: REGISTER and INVITE from 127.0.0.1 (the phones) go through.
    const [a, b] = [await site.agent('7001', 0, { desktop: false }), await site.agent('7002', 1, { desktop: false })];
    await a.dial(b.dn);
    await flood.done;

    expect(await metricValue(site.registry, 'huddle_sip_rate_limited_sources')).toBe(1);
    const dropped = await metricValue(site.registry, 'huddle_sip_rate_limited_messages_total');
    expect(dropped).toBeGreaterThan(5000);

    // The 100 requests let through, and 50 more from another source each with a new method name: one `other` series.
    await sendMadeUpMethods('127.0.0.3', 50);
    await until(async () => (await sipRequestsByMethod()).get('other') === 150, 'the 50 made-up methods counted', 5000);
    const byMethod = await sipRequestsByMethod();
    expect([...byMethod.keys()].filter((m) => m.startsWith('XMXQ'))).toEqual([]);
    expect(byMethod.get('REGISTER')).toBeGreaterThanOrEqual(2);
    expect(byMethod.get('INVITE')).toBeGreaterThanOrEqual(1);

    // Still blocked: even a REGISTER from the flooding source is dropped unanswered.
    const register = await startSipp({ scenario: '../../e2e/scenarios/register.xml', remote: `127.0.0.1:${site.sipPort}`, localHost: FLOOD_SOURCE, service: '7003', timeoutS: 2 });
    expect((await register.done).code).not.toBe(0);
    expect(await metricValue(site.registry, 'huddle_sip_rate_limited_messages_total')).toBeGreaterThan(dropped);
  });
});
