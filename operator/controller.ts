/**
 * The controller loop: while this replica leads (Lease), informers on SipCluster, SipDN and the
 * owned workloads feed a rate-limited work queue of cluster keys; each key is reconciled by
 * planning (operator/plan.ts), publishing options and DNs to the NATS KV bucket, applying the
 * owned objects idempotently, pruning the owned ones no longer desired (operator/prune.ts) and
 * writing status, with Kubernetes Events for what it did.
 */
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ListPromise,
  type V1Deployment,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Condition } from '../common/config/schema.js';
import { applyObject, describeError, statusCode } from './apply.js';
import type { ConfigStore } from './config-store.js';
import { objectName, type OperatorSettings } from './desired.js';
import { InformerSet, ResilientInformer, type InformerHandlers } from './informer.js';
import { LeaderElector } from './leader.js';
import { operatorMetrics, type OperatorMetrics } from './metrics.js';
import { planCluster, type ClusterPlan } from './plan.js';
import { pruneStale } from './prune.js';
import { DEFAULT_QUEUE_OPTIONS, WorkQueue, type QueueOptions } from './queue.js';
import { API_GROUP, CRD_PLURALS, FINALIZER, clusterKey, splitKey, type SipClusterResource, type SipDNResource } from './resources.js';
import { clusterStatus, sameStatus } from './status.js';

const VERSION = 'v1alpha1';
const MANAGED = 'app.kubernetes.io/managed-by=huddle-operator';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  settings: OperatorSettings;
  configStore: ConfigStore;
  registry: Registry;
  log: Logger;
  /** This replica's name in the Lease. */
  identity: string;
  leaseNamespace: string;
  leaseName?: string;
  leaseDurationSeconds?: number;
  leaseRetryMs?: number;
  /** The namespaces whose SipClusters and SipDNs are reconciled; all namespaces when empty or absent. */
  watchNamespaces?: string[];
  /** Every cluster is reconciled this often even without events (drift in unwatched kinds). */
  resyncMs?: number;
  queue?: QueueOptions;
}

type Workload = V1Deployment | V1StatefulSet;

export class Controller {
  readonly metrics: OperatorMetrics;
  private readonly objects: KubernetesObjectApi;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly elector: LeaderElector;
  private queue: WorkQueue | undefined;
  private informers: InformerSet<KubernetesObject>[] = [];
  private clusters: InformerSet<SipClusterResource & KubernetesObject> | undefined;
  private dns: InformerSet<SipDNResource & KubernetesObject> | undefined;
  private deployments: InformerSet<Workload> | undefined;
  private statefulSets: InformerSet<Workload> | undefined;
  private workers: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ControllerOptions) {
    const kc = opts.kubeConfig;
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.metrics = operatorMetrics(opts.registry);
    this.elector = new LeaderElector(
      kc.makeApiClient(CoordinationV1Api),
      {
        namespace: opts.leaseNamespace,
        name: opts.leaseName ?? 'huddle-operator',
        identity: opts.identity,
        leaseDurationSeconds: opts.leaseDurationSeconds ?? 15,
        retryMs: opts.leaseRetryMs ?? 2000,
      },
      { onStartedLeading: () => this.lead(), onStoppedLeading: () => this.follow() },
      opts.log,
    );
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  /** Ready = leading with synced caches, or standing by as a follower. */
  readiness(): true | string {
    if (!this.elector.isLeader) return true;
    return this.informers.every((i) => i.hasSynced) ? true : 'informers not synced';
  }

  start(): void {
    this.elector.start();
  }

  async stop(): Promise<void> {
    await this.follow();
    await this.elector.stop();
  }

  private async lead(): Promise<void> {
    this.metrics.leader.set(1);
    const queue = new WorkQueue(this.opts.queue ?? DEFAULT_QUEUE_OPTIONS);
    this.queue = queue;
    const kc = this.opts.kubeConfig;
    // Namespaced paths when namespaces are given: a namespaced Role allows nothing cluster-wide.
    const scopes: (string | undefined)[] = this.opts.watchNamespaces?.length ? this.opts.watchNamespaces : [undefined];
    const base = `/apis/${API_GROUP}/${VERSION}`;
    const restart = (resource: string) => () => this.metrics.informerRestarts.inc({ resource });
    const watch = <T extends KubernetesObject>(
      resource: string,
      path: (ns: string | undefined) => string,
      list: (ns: string | undefined) => ListPromise<T>,
      handlers: InformerHandlers<T>,
      labelSelector?: string,
    ) =>
      new InformerSet(
        scopes.map(
          (ns) => new ResilientInformer<T>(resource, kc, path(ns), list(ns), handlers, { log: this.opts.log, onRestart: restart(resource), ...(labelSelector ? { labelSelector } : {}) }),
        ),
      );

    // Both custom resources are watched the same way; a change enqueues the SipCluster concerned.
    const crInformer = <T extends KubernetesObject>(plural: string, enqueue: (obj: T) => void) =>
      watch<T>(
        plural,
        (ns) => (ns ? `${base}/namespaces/${ns}/${plural}` : `${base}/${plural}`),
        (ns) => () =>
          (ns
            ? this.custom.listNamespacedCustomObject({ group: API_GROUP, version: VERSION, namespace: ns, plural })
            : this.custom.listClusterCustomObject({ group: API_GROUP, version: VERSION, plural })) as Promise<KubernetesListObject<T>>,
        { onChange: enqueue, onDelete: enqueue },
      );
    const enqueueCluster = (c: SipClusterResource) => queue.add(clusterKey(c.metadata.namespace, c.metadata.name));
    this.clusters = crInformer<SipClusterResource & KubernetesObject>(CRD_PLURALS.SipCluster, enqueueCluster);
    this.dns = crInformer<SipDNResource & KubernetesObject>(CRD_PLURALS.SipDN, (dn) => queue.add(clusterKey(dn.metadata.namespace, dn.spec.cluster)));
    const enqueueInstance = (w: Workload) => {
      const instance = w.metadata?.labels?.['app.kubernetes.io/instance'];
      if (instance && w.metadata?.namespace) queue.add(clusterKey(w.metadata.namespace, instance));
    };
    const handlers = { onChange: enqueueInstance, onDelete: enqueueInstance };
    this.deployments = watch<Workload>(
      'deployments',
      (ns) => (ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments'),
      (ns) => () => (ns ? this.apps.listNamespacedDeployment({ namespace: ns, labelSelector: MANAGED }) : this.apps.listDeploymentForAllNamespaces({ labelSelector: MANAGED })),
      handlers,
      MANAGED,
    );
    this.statefulSets = watch<Workload>(
      'statefulsets',
      (ns) => (ns ? `/apis/apps/v1/namespaces/${ns}/statefulsets` : '/apis/apps/v1/statefulsets'),
      (ns) => () => (ns ? this.apps.listNamespacedStatefulSet({ namespace: ns, labelSelector: MANAGED }) : this.apps.listStatefulSetForAllNamespaces({ labelSelector: MANAGED })),
      handlers,
      MANAGED,
    );
    this.informers = [this.clusters, this.dns, this.deployments, this.statefulSets] as InformerSet<KubernetesObject>[];
    // DNs and workloads first: a cluster's first reconcile should see them.
    const informers = this.informers;
    for (const i of [this.dns, this.deployments, this.statefulSets, this.clusters]) await i.start();
    if (this.queue !== queue) {
      // Leadership ended while the informers were starting.
      await Promise.all(informers.map((i) => i.stop()));
      return;
    }
    const resyncMs = this.opts.resyncMs ?? 300_000;
    this.resyncTimer = setInterval(() => {
      for (const c of this.clusters?.list() ?? []) enqueueCluster(c);
    }, resyncMs);
    this.workers = this.work(queue);
  }

  private async follow(): Promise<void> {
    this.metrics.leader.set(0);
    clearInterval(this.resyncTimer);
    this.queue?.shutdown();
    this.queue = undefined;
    await Promise.all(this.informers.map((i) => i.stop()));
    this.informers = [];
    await this.workers;
    this.workers = undefined;
  }

  private async work(queue: WorkQueue): Promise<void> {
    for (;;) {
      this.metrics.queueDepth.set(queue.depth);
      const key = await queue.get();
      if (key === undefined) return;
      const end = this.metrics.duration.startTimer();
      try {
        await this.reconcile(key);
        queue.forget(key);
        this.metrics.reconciles.inc({ result: 'success' });
      } catch (err) {
        const code = statusCode(err);
        this.metrics.reconciles.inc({ result: 'error' });
        this.metrics.errors.inc({ reason: code === 409 ? 'conflict' : code ? `http_${code}` : 'other' });
        const delay = queue.addRateLimited(key);
        this.opts.log.warn({ key, err: describeError(err), retryInMs: delay }, 'reconcile failed');
      } finally {
        end();
        queue.done(key);
        this.metrics.queueDepth.set(queue.depth);
      }
    }
  }

  /** One reconcile of one SipCluster key. Throws to be retried with backoff. */
  async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const cached = this.clusters?.get(name, namespace);
    if (!cached) return;
    let cluster: SipClusterResource = structuredClone(cached);
    const natsUrl = cluster.spec.nats.url ?? this.opts.settings.defaultNatsUrl;
    const bucket = cluster.spec.nats.configBucket;

    if (cluster.metadata.deletionTimestamp) {
      if (!cluster.metadata.finalizers?.includes(FINALIZER)) return;
      await this.opts.configStore.remove(natsUrl, bucket, name);
      await this.event(cluster, 'Normal', 'ConfigRemoved', `removed the configuration of ${name} from the NATS KV bucket ${bucket}`);
      cluster.metadata.finalizers = cluster.metadata.finalizers.filter((f) => f !== FINALIZER);
      await this.replaceCluster(cluster);
      return;
    }
    if (!cluster.metadata.finalizers?.includes(FINALIZER)) {
      cluster.metadata.finalizers = [...(cluster.metadata.finalizers ?? []), FINALIZER];
      cluster = await this.replaceCluster(cluster);
    }

    const plan = planCluster(cluster, this.dns?.list(namespace) ?? [], this.opts.settings);
    // Objects are applied even when NATS is unreachable, and the other way round: each failure is reported.
    const failures: string[] = [];
    try {
      await this.opts.configStore.publish(natsUrl, bucket, plan.config.cluster, plan.config.dns);
    } catch (err) {
      failures.push(`publishing the configuration to NATS (${natsUrl}, bucket ${bucket}) failed: ${(err as Error).message}`);
    }
    const applied: string[] = [];
    for (const obj of plan.objects) {
      const label = `${obj.kind}/${obj.metadata?.name}`;
      try {
        const result = await applyObject(this.objects, obj as KubernetesObject);
        if (result !== 'unchanged') {
          this.metrics.applied.inc({ kind: obj.kind ?? '', action: result });
          applied.push(`${result} ${label}`);
        }
      } catch (err) {
        failures.push(`applying ${label} failed: ${describeError(err)}`);
      }
    }
    const pruned = await pruneStale(this.objects, cluster, plan.objects);
    for (const { kind, name: objName } of pruned.deleted) {
      this.metrics.applied.inc({ kind, action: 'deleted' });
      applied.push(`deleted ${kind}/${objName}`);
    }
    failures.push(...pruned.failures);
    const failure = failures.length > 0 ? failures.join('; ') : undefined;
    if (applied.length > 0) await this.event(cluster, 'Normal', 'Applied', applied.join(', '));
    if (failure) await this.event(cluster, 'Warning', 'ReconcileFailed', failure);

    const status = clusterStatus(
      cluster,
      {
        // Behind the SIP edge, signaling is a StatefulSet (operator/edge.ts).
        signaling: (this.deployments?.get(objectName(cluster, 'signaling'), namespace) ?? this.statefulSets?.get(objectName(cluster, 'signaling'), namespace)) as Deployment | StatefulSet | undefined,
        media: this.statefulSets?.get(objectName(cluster, 'media'), namespace) as StatefulSet | undefined,
        gateway: this.deployments?.get(objectName(cluster, 'gateway'), namespace) as Deployment | undefined,
      },
      plan.accepted.length,
      failure,
      new Date(),
      plan.refused,
    );
    if (!sameStatus(cluster.status, status)) {
      const wasReady = cluster.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      await this.custom.replaceNamespacedCustomObjectStatus({ group: API_GROUP, version: VERSION, namespace, plural: CRD_PLURALS.SipCluster, name, body: { ...cluster, status } });
      const ready = status.conditions?.find((c) => c.type === 'Ready');
      if (ready && (ready.status === 'True') !== wasReady) await this.event(cluster, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message);
    }
    await this.updateDnStatuses(plan.accepted, plan.rejected);
    if (failure) throw new Error(failure);
  }

  private async replaceCluster(cluster: SipClusterResource): Promise<SipClusterResource> {
    const { namespace, name } = cluster.metadata;
    return (await this.custom.replaceNamespacedCustomObject({ group: API_GROUP, version: VERSION, namespace, plural: CRD_PLURALS.SipCluster, name, body: cluster })) as SipClusterResource;
  }

  private async updateDnStatuses(accepted: SipDNResource[], rejected: ClusterPlan['rejected']): Promise<void> {
    const wanted: [SipDNResource, Omit<Condition, 'lastTransitionTime'>][] = [
      ...accepted.map((dn): [SipDNResource, Omit<Condition, 'lastTransitionTime'>] => [dn, { type: 'Ready', status: 'True', reason: 'Published', message: 'in the config bucket', observedGeneration: dn.metadata.generation }]),
      ...rejected.map(({ dn, refusal, reason }): [SipDNResource, Omit<Condition, 'lastTransitionTime'>] => [dn, { type: 'Ready', status: 'False', reason: refusal, message: reason, observedGeneration: dn.metadata.generation }]),
    ];
    for (const [dn, cond] of wanted) {
      const before = dn.status?.conditions?.find((c) => c.type === 'Ready');
      if (dn.status?.observedGeneration === dn.metadata.generation && before?.status === cond.status && before.message === cond.message) continue;
      const condition: Condition = { ...cond, lastTransitionTime: before?.status === cond.status ? before.lastTransitionTime : new Date().toISOString() };
      try {
        await this.custom.replaceNamespacedCustomObjectStatus({
          group: API_GROUP,
          version: VERSION,
          namespace: dn.metadata.namespace,
          plural: CRD_PLURALS.SipDN,
          name: dn.metadata.name,
          body: { ...dn, status: { observedGeneration: dn.metadata.generation, conditions: [condition] } },
        });
      } catch (err) {
        // A stale DN (409) is written again on the next reconcile its change triggers.
        this.opts.log.debug({ dn: dn.metadata.name, err: describeError(err) }, 'SipDN status not written');
      }
    }
  }

  private async event(cluster: SipClusterResource, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${cluster.metadata.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`, namespace: cluster.metadata.namespace },
      involvedObject: { apiVersion: cluster.apiVersion, kind: 'SipCluster', name: cluster.metadata.name, namespace: cluster.metadata.namespace, uid: cluster.metadata.uid },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: 'huddle-operator' },
      reportingComponent: 'huddle-operator',
      reportingInstance: this.opts.identity,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.core.createNamespacedEvent({ namespace: cluster.metadata.namespace, body });
    } catch (err) {
      this.opts.log.warn({ reason, err: describeError(err) }, 'could not record an Event');
    }
  }
}
