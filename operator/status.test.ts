import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import { describe, expect, it } from 'vitest';
import { testCluster } from '../test/operator/fixtures.js';
import { clusterStatus, sameStatus } from './status.js';

const ready = (replicas: number, generation = 1): Deployment & StatefulSet => ({
  metadata: { generation },
  status: { replicas, readyReplicas: replicas, updatedReplicas: replicas, observedGeneration: generation },
});

describe('clusterStatus', () => {
  const cluster = testCluster();
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:05:00Z');

  it('is Ready when every workload has its replicas ready, with counts for kubectl get', () => {
    const s = clusterStatus(cluster, { signaling: ready(1), media: ready(1), gateway: ready(1) }, 5, undefined, t0);
    expect(s).toMatchObject({ observedGeneration: 1, readySignaling: 1, readyMedia: 1, readyGateways: 1, dnCount: 5 });
    expect(s.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'AllReady'],
      ['Progressing', 'False', 'Settled'],
      ['Degraded', 'False', 'AsExpected'],
    ]);
  });

  it('says what it waits for, and is Degraded with the failure when a reconcile failed', () => {
    const waiting = clusterStatus(cluster, { signaling: ready(1) }, 0, undefined, t0);
    expect(waiting.conditions?.[0]).toMatchObject({ status: 'False', reason: 'WorkloadsNotReady', message: 'waiting for media 0/1, gateway 0/1' });
    expect(waiting.conditions?.[1]).toMatchObject({ status: 'True', reason: 'RollingOut' });
    const failed = clusterStatus(cluster, { signaling: ready(1), media: ready(1), gateway: ready(1) }, 0, 'applying Service/x failed: HTTP 403', t0);
    expect(failed.conditions?.[0]).toMatchObject({ status: 'False', reason: 'ReconcileFailed' });
    expect(failed.conditions?.[2]).toMatchObject({ status: 'True', message: 'applying Service/x failed: HTTP 403' });
  });

  it('is not Ready, reason InlineSecretRefused, while the Secret-reference policy refuses part of the spec', () => {
    const refused = clusterStatus(cluster, { signaling: ready(1), media: ready(1), gateway: ready(1) }, 0, undefined, t0, 'inline spec.gateway.tokens are not published');
    expect(refused.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'InlineSecretRefused', message: 'inline spec.gateway.tokens are not published' });
    const failedToo = clusterStatus(cluster, { signaling: ready(1), media: ready(1), gateway: ready(1) }, 0, 'applying Service/x failed: HTTP 403', t0, 'inline tokens');
    expect(failedToo.conditions?.[0]).toMatchObject({ status: 'False', reason: 'ReconcileFailed' });
  });

  it('moves lastTransitionTime only when a condition flips', () => {
    const first = clusterStatus(cluster, { signaling: ready(1), media: ready(1), gateway: ready(1) }, 1, undefined, t0);
    const again = clusterStatus({ ...cluster, status: first }, { signaling: ready(1), media: ready(1), gateway: ready(1) }, 1, undefined, t1);
    expect(again.conditions?.[0]?.lastTransitionTime).toBe(t0.toISOString());
    expect(sameStatus(first, again)).toBe(true);
    const down = clusterStatus({ ...cluster, status: first }, { signaling: ready(0), media: ready(1), gateway: ready(1) }, 1, undefined, t1);
    expect(down.conditions?.[0]).toMatchObject({ status: 'False', lastTransitionTime: t1.toISOString() });
    expect(sameStatus(first, down)).toBe(false);
  });
});
