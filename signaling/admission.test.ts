import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { SipAdmission } from '../common/config/schema.js';
import { admission, type Load } from './admission.js';

const limits: SipAdmission = Value.Default(SipAdmission, {}) as SipAdmission;

/** A server at rest: 1,000 media ports, nothing queued or being set up. */
const idle: Load = { eventLoopDelayMs: 2, mediaLatencyMs: 1, legsSettingUp: 0, queueDepth: 0, queueWaitMs: 0, legs: 0, mediaPorts: 1000 };

describe('admission control (pure)', () => {
  it('has sensible defaults from the schema', () => {
    expect(limits).toMatchObject({ enabled: true, maxEventLoopDelayMs: 250, maxMediaLatencyMs: 500, maxLegsSettingUp: 400, maxQueueDepth: 200, maxQueueWaitMs: 1000, mediaPortsPerLeg: 4, retryAfterSeconds: 2, setUpTimeoutSeconds: 10 });
  });

  it('admits a new call while every figure is within its limit, up to the limit itself', () => {
    expect(admission(idle, limits)).toEqual({ admit: true });
    const atLimits: Load = { eventLoopDelayMs: 250, mediaLatencyMs: 500, legsSettingUp: 399, queueDepth: 199, queueWaitMs: 1000, legs: 248, mediaPorts: 1000 };
    expect(admission(atLimits, limits)).toEqual({ admit: true });
  });

  it.each([
    ['queue_depth', { queueDepth: 200 }, 'call model queue 200 >= 200'],
    ['queue_wait', { queueWaitMs: 1000.6 }, 'call model queue wait 1001 ms > 1000 ms'],
    ['legs_setting_up', { legsSettingUp: 400 }, '400 legs setting up >= 400'],
    ['event_loop_delay', { eventLoopDelayMs: 251.4 }, 'event loop delay 251 ms > 250 ms'],
    ['media_latency', { mediaLatencyMs: 501 }, 'media latency 501 ms > 500 ms'],
    // 249 legs hold 996 ports: a new call's two legs need 8 more of 1,000.
    ['media_ports', { legs: 249 }, '249 legs hold 996 of 1000 media ports'],
  ] as const)('refuses past one limit, naming the cause: %s', (reason, over, message) => {
    expect(admission({ ...idle, ...over }, limits)).toEqual({ admit: false, reason, message: `Overload: ${message}` });
  });

  it('names the first cause when several limits are passed (the queue before the rest)', () => {
    const verdict = admission({ ...idle, queueDepth: 500, eventLoopDelayMs: 900, mediaLatencyMs: 900 }, limits);
    expect(verdict).toMatchObject({ admit: false, reason: 'queue_depth' });
  });

  it('follows the configured limits, and admits everything when disabled', () => {
    const overloaded: Load = { eventLoopDelayMs: 5000, mediaLatencyMs: 5000, legsSettingUp: 10_000, queueDepth: 10_000, queueWaitMs: 10_000, legs: 10_000, mediaPorts: 10 };
    expect(admission(overloaded, { ...limits, enabled: false })).toEqual({ admit: true });
    expect(admission({ ...idle, legsSettingUp: 3 }, { ...limits, maxLegsSettingUp: 3 })).toMatchObject({ admit: false, reason: 'legs_setting_up' });
    expect(admission({ ...idle, legs: 10_000, mediaPorts: 10 }, { ...limits, mediaPortsPerLeg: 0 })).toEqual({ admit: true });
  });
});
