/**
 * Status a person can read: ready counts for `kubectl get sipclusters` and the conditions
 * Ready / Progressing / Degraded with observedGeneration.
 */
import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Condition, SipClusterStatus } from '../common/config/schema.js';
import type { SipClusterResource } from './resources.js';

export interface ObservedWorkloads {
  signaling?: Deployment | StatefulSet;
  media?: StatefulSet;
  gateway?: Deployment;
}

interface WorkloadState {
  name: string;
  ready: number;
  wanted: number;
  settled: boolean;
}

function state(name: string, wanted: number, obj: Deployment | StatefulSet | undefined): WorkloadState {
  const ready = obj?.status?.readyReplicas ?? 0;
  const generation = obj?.metadata?.generation ?? 0;
  const settled = obj !== undefined && (obj.status?.observedGeneration ?? 0) >= generation && (obj.status?.updatedReplicas ?? 0) >= wanted;
  return { name, ready, wanted, settled };
}

function condition(type: string, status: boolean, reason: string, message: string, generation: number | undefined, previous: Condition[] | undefined, now: Date): Condition {
  const value = status ? 'True' : 'False';
  const before = previous?.find((c) => c.type === type);
  return {
    type,
    status: value,
    reason,
    message,
    // The transition time moves only when the status flips, so "since when" stays meaningful.
    lastTransitionTime: before && before.status === value ? before.lastTransitionTime : now.toISOString(),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

/** `refused`: what the Secret-reference policy kept from being published (operator/plan.ts); the site is then not Ready. */
export function clusterStatus(cluster: SipClusterResource, observed: ObservedWorkloads, dnCount: number, failure: string | undefined, now: Date, refused?: string): SipClusterStatus {
  const spec = cluster.spec;
  const generation = cluster.metadata.generation;
  const previous = cluster.status?.conditions;
  const workloads = [
    state('signaling', spec.sip.replicas, observed.signaling),
    state('media', spec.media.replicas, observed.media),
    state('gateway', spec.gateway.replicas, observed.gateway),
  ];
  const notReady = workloads.filter((w) => w.ready < w.wanted);
  const rolling = workloads.filter((w) => !w.settled);
  const ready = notReady.length === 0 && failure === undefined && refused === undefined;
  const readyMessage = ready
    ? `signaling ${workloads[0]?.ready}, media ${workloads[1]?.ready}, gateway ${workloads[2]?.ready} ready; ${dnCount} DNs`
    : (failure ?? refused ?? `waiting for ${notReady.map((w) => `${w.name} ${w.ready}/${w.wanted}`).join(', ')}`);
  const notReadyReason = failure ? 'ReconcileFailed' : refused ? 'InlineSecretRefused' : 'WorkloadsNotReady';
  return {
    observedGeneration: generation,
    readySignaling: workloads[0]?.ready ?? 0,
    readyMedia: workloads[1]?.ready ?? 0,
    readyGateways: workloads[2]?.ready ?? 0,
    dnCount,
    conditions: [
      condition('Ready', ready, ready ? 'AllReady' : notReadyReason, readyMessage, generation, previous, now),
      condition(
        'Progressing',
        rolling.length > 0 || notReady.length > 0,
        rolling.length > 0 ? 'RollingOut' : notReady.length > 0 ? 'WaitingForPods' : 'Settled',
        rolling.length > 0 ? `rolling out ${rolling.map((w) => w.name).join(', ')}` : notReady.length > 0 ? 'pods are starting' : 'all workloads are at the desired generation',
        generation,
        previous,
        now,
      ),
      condition('Degraded', failure !== undefined, failure ? 'ReconcileFailed' : 'AsExpected', failure ?? 'the last reconcile applied everything', generation, previous, now),
    ],
  };
}

/** Equal apart from lastTransitionTime: avoids status writes (and watch events) that say nothing new. */
export function sameStatus(a: SipClusterStatus | undefined, b: SipClusterStatus): boolean {
  const strip = (s: SipClusterStatus | undefined) => JSON.stringify({ ...s, conditions: s?.conditions?.map(({ lastTransitionTime: _t, ...c }) => c) });
  return strip(a) === strip(b);
}
