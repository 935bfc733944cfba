/** Bucket replicas on a NATS cluster (issue 16 point 7): the chart's default reaches the published configuration. */
import { describe, expect, it } from 'vitest';
import { testCluster } from '../test/operator/fixtures.js';
import type { OperatorSettings } from './desired.js';
import { planCluster } from './plan.js';

const settings: OperatorSettings = { defaultNatsUrl: 'nats://huddle-nats:4222', serviceMonitor: false };

describe('spec.nats.replicas in the published configuration', () => {
  it('is the operator default (HUDDLE_NATS_REPLICAS) when the SipCluster leaves it unset', () => {
    expect(planCluster(testCluster('site-a'), [], { ...settings, defaultNatsReplicas: 3 }).config.cluster.spec.nats.replicas).toBe(3);
  });

  it("is the SipCluster's own when set", () => {
    expect(planCluster(testCluster('site-a', 'telephony', { nats: { replicas: 1 } }), [], { ...settings, defaultNatsReplicas: 3 }).config.cluster.spec.nats.replicas).toBe(1);
  });

  it('stays unset (1) without an operator default', () => {
    expect(planCluster(testCluster('site-a'), [], settings).config.cluster.spec.nats.replicas).toBeUndefined();
  });
});
