/**
 * Leader election with a coordination.k8s.io/v1 Lease, so two operator replicas never both
 * reconcile. Acquire or renew is an update carrying the Lease's resourceVersion: when two
 * replicas race, the API server's 409 lets exactly one win.
 */
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError, statusCode } from './apply.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  /** How often the leader renews and a follower retries. */
  retryMs: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void | Promise<void>;
}

export class LeaderElector {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastRenew = 0;

  constructor(
    private readonly api: CoordinationV1Api,
    private readonly opts: LeaderOptions,
    private readonly callbacks: LeaderCallbacks,
    private readonly log: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.running = true;
    void this.tick();
  }

  /** Stops campaigning; a leader gives the Lease up so a standby takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    if (!this.leading) return;
    await this.setLeading(false);
    try {
      const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
      if (lease.spec?.holderIdentity === this.opts.identity) {
        lease.spec = { ...lease.spec, holderIdentity: undefined, renewTime: undefined, acquireTime: undefined };
        await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'could not release the leader Lease');
    }
  }

  private async tick(): Promise<void> {
    if (!this.running) return;
    let held = false;
    try {
      held = await this.tryAcquireOrRenew();
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'leader election attempt failed');
    }
    if (!this.running) return;
    if (held) this.lastRenew = Date.now();
    // A leader that cannot renew within the lease duration must assume another replica took over.
    const stillLeading = held || (this.leading && Date.now() - this.lastRenew < this.opts.leaseDurationSeconds * 1000 * 0.66);
    if (stillLeading !== this.leading) await this.setLeading(stillLeading);
    if (this.running) this.timer = setTimeout(() => void this.tick(), this.opts.retryMs);
  }

  private async setLeading(value: boolean): Promise<void> {
    this.leading = value;
    this.log.info({ lease: `${this.opts.namespace}/${this.opts.name}`, leader: value }, value ? 'became leader' : 'stopped leading');
    try {
      await (value ? this.callbacks.onStartedLeading() : this.callbacks.onStoppedLeading());
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'leadership callback failed');
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity, leaseDurationSeconds } = this.opts;
    const now = new Date();
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
        });
        return true;
      } catch (createErr) {
        if (statusCode(createErr) === 409) return false;
        throw createErr;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < now.getTime();
    if (holder && holder !== identity && !expired) return false;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: now,
      ...(holder !== identity ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false;
      throw err;
    }
  }
}
