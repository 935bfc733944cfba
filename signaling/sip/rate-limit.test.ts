import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { createSipStack } from './index.js';
import { DEFAULT_RATE_LIMIT, SourceRateLimiter, type RateLimitOptions } from './rate-limit.js';

const limits = (o: Partial<RateLimitOptions> = {}): RateLimitOptions => ({ ...DEFAULT_RATE_LIMIT, requestsPerWindow: 10, windowMs: 1000, banMs: 5000, ...o });

/** Sends `n` requests from `host` at `now`; returns how many were let through. */
function burst(limiter: SourceRateLimiter, host: string, n: number, now: number): number {
  let passed = 0;
  for (let i = 0; i < n; i++) if (!limiter.admit(host, true, now).blocked) passed++;
  return passed;
}

describe('SourceRateLimiter (pike)', () => {
  it('lets requestsPerWindow through, then blocks the source for banMs, then forgives it', () => {
    const limiter = new SourceRateLimiter(limits());
    expect(burst(limiter, '127.0.0.9', 10, 0)).toBe(10);
    const over = limiter.admit('127.0.0.9', true, 1);
    expect(over).toEqual({ blocked: true, retryAfterMs: 5000, banStarted: true });
    expect(limiter.admit('127.0.0.9', true, 2000)).toEqual({ blocked: true, retryAfterMs: 3001, banStarted: false });
    // While blocked, even its responses are refused; other sources are not touched.
    expect(limiter.admit('127.0.0.9', false, 2000).blocked).toBe(true);
    expect(burst(limiter, '127.0.0.10', 10, 2000)).toBe(10);
    expect(limiter.blockedSources(2000)).toBe(1);
    expect(limiter.dropped).toBe(3);
    expect(burst(limiter, '127.0.0.9', 10, 5002)).toBe(10);
    expect(limiter.blockedSources(5002)).toBe(0);
  });

  it('counts per window: a steady source under the rate is never blocked', () => {
    const limiter = new SourceRateLimiter(limits());
    for (let second = 0; second < 20; second++) expect(burst(limiter, '10.1.1.1', 10, second * 1000)).toBe(10);
  });

  it('counts only requests; responses from a source that is not blocked pass', () => {
    const limiter = new SourceRateLimiter(limits());
    for (let i = 0; i < 100; i++) expect(limiter.admit('10.1.1.2', false, 0).blocked).toBe(false);
    expect(burst(limiter, '10.1.1.2', 10, 0)).toBe(10);
  });

  it('never limits exempt sources (trunks), IPv4 and IPv6', () => {
    const limiter = new SourceRateLimiter(limits({ exemptSources: ['192.0.2.0/24', '2001:db8::/32'] }));
    expect(burst(limiter, '192.0.2.7', 1000, 0)).toBe(1000);
    expect(burst(limiter, '2001:db8::1', 1000, 0)).toBe(1000);
    expect(burst(limiter, '192.0.3.7', 1000, 0)).toBe(10);
    expect(limiter.tracked()).toBe(1);
  });

  it('keeps its table bounded with 100,000 distinct sources, and still blocks a flooding one', () => {
    const limiter = new SourceRateLimiter(limits({ tableSize: 4096 }));
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i++) limiter.admit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, true, i / 100);
    expect(limiter.capacity).toBe(4096);
    expect(limiter.tracked()).toBeLessThanOrEqual(4096);
    // The address strings are the only growth; a Map of 100,000 sources would hold them all.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 * 1024 * 1024);
    expect(burst(limiter, '203.0.113.5', 50, 2000)).toBe(10);
    expect(limiter.admit('203.0.113.5', true, 2001).blocked).toBe(true);
  });

  it('evicts idle sources before a banned one while the ban lasts', () => {
    // One set of four ways: the banned source survives three newcomers that each take an idle way.
    const limiter = new SourceRateLimiter(limits({ tableSize: 4 }));
    burst(limiter, 'flooder', 11, 0);
    for (const s of ['a', 'b', 'c']) limiter.admit(s, true, 0);
    for (const s of ['d', 'e', 'f']) limiter.admit(s, true, 1500);
    expect(limiter.admit('flooder', true, 1600).blocked).toBe(true);
  });
});

describe('the limiter in front of the stack (UDP on loopback)', () => {
  /** OPTIONS number `i` from `socket` to `port`; resolves with the answer's first lines, or 'nothing' after 300 ms. */
  function options(socket: dgram.Socket, port: number, i: number): Promise<string> {
    const { port: local } = socket.address();
    const request = [
      `OPTIONS sip:huddle@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.4:${local};branch=z9hG4bK-pike-${i}`,
      `From: <sip:probe@127.0.0.4>;tag=p${i}`,
      'To: <sip:huddle@127.0.0.1>',
      `Call-ID: pike-${i}@127.0.0.4`,
      `CSeq: ${i} OPTIONS`,
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        socket.off('message', onMessage);
        resolve('nothing');
      }, 300);
      const onMessage = (msg: Buffer) => {
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(msg.toString('latin1'));
      };
      socket.on('message', onMessage);
      socket.send(request, port, '127.0.0.1');
    });
  }

  it.each(['drop', 'reject'] as const)('action %s: a source over its rate gets nothing, or 503 with Retry-After and a Reason', async (action) => {
    const stack = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], rateLimit: limits({ requestsPerWindow: 3, banMs: 30_000, action }) });
    stack.onRequest((req) => req.respond(200));
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.4', resolve));
    try {
      const port = stack.addresses[0]!.port;
      for (let i = 1; i <= 3; i++) expect(await options(socket, port, i)).toMatch(/^SIP\/2.0 200 /);
      const over = await options(socket, port, 4);
      if (action === 'drop') expect(over).toBe('nothing');
      else {
        expect(over).toMatch(/^SIP\/2.0 503 Service Unavailable\r\n/);
        expect(over).toMatch(/\r\nRetry-After: 30\r\n/);
        expect(over).toMatch(/\r\nReason: SIP;cause=503;text="request rate of this source over the limit"\r\n/);
      }
    } finally {
      socket.close();
      await stack.close(0);
    }
  });
});
