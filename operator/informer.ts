/**
 * client-node informers re-list by themselves on 410 Gone but stop for good on any other error
 * (a 500, a refused connection): this wrapper starts them again with capped exponential backoff.
 */
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface InformerHandlers<T> {
  onChange(obj: T): void;
  onDelete(obj: T): void;
}

export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer: Informer<T> & ObjectCache<T>;
  private stopped = true;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private synced = false;

  constructor(
    readonly resource: string,
    kc: KubeConfig,
    path: string,
    list: ListPromise<T>,
    handlers: InformerHandlers<T>,
    private readonly opts: { log: Logger; onRestart: () => void; labelSelector?: string; maxBackoffMs?: number },
  ) {
    this.informer = makeInformer(kc, path, list, opts.labelSelector);
    this.informer.on('add', handlers.onChange);
    this.informer.on('update', handlers.onChange);
    this.informer.on('delete', handlers.onDelete);
    this.informer.on('connect', () => {
      this.synced = true;
      this.failures = 0;
    });
    this.informer.on('error', (err: unknown) => this.restartLater(err));
  }

  /** True once the first list succeeded. */
  get hasSynced(): boolean {
    return this.synced;
  }

  list(namespace?: string): T[] {
    return [...this.informer.list(namespace)];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start().catch((err: unknown) => this.restartLater(err));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer.stop();
  }

  private restartLater(err: unknown): void {
    if (this.stopped || this.timer) return;
    const delay = Math.min(this.opts.maxBackoffMs ?? 30_000, 250 * 2 ** this.failures);
    this.failures += 1;
    this.opts.log.warn({ resource: this.resource, err: (err as Error | undefined)?.message, delayMs: delay }, 'informer stopped; restarting');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.opts.onRestart();
      this.informer.start().catch((e: unknown) => this.restartLater(e));
    }, delay);
  }
}

/**
 * The informers of one resource over the namespaces the operator watches (one each; a single one
 * when it watches all namespaces), read as one cache.
 */
export class InformerSet<T extends KubernetesObject> {
  constructor(private readonly members: ResilientInformer<T>[]) {}

  get hasSynced(): boolean {
    return this.members.every((m) => m.hasSynced);
  }

  list(namespace?: string): T[] {
    return this.members.flatMap((m) => m.list(namespace));
  }

  get(name: string, namespace?: string): T | undefined {
    for (const m of this.members) {
      const found = m.get(name, namespace);
      if (found) return found;
    }
    return undefined;
  }

  async start(): Promise<void> {
    for (const m of this.members) await m.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }
}
