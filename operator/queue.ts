/**
 * A work queue of cluster keys in the manner of client-go's: a key is queued at most once, is
 * never processed by two workers at the same time (re-added while processing, it is queued again
 * when done), failures are retried with per-key exponential backoff, and a token bucket bounds
 * the overall rate of reconciles.
 */
export interface QueueOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Token bucket: sustained reconciles per second and burst size. */
  ratePerSecond: number;
  burst: number;
}

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = { baseDelayMs: 200, maxDelayMs: 60_000, ratePerSecond: 10, burst: 50 };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private waiters: (() => void)[] = [];
  private tokens: number;
  private lastRefill = Date.now();
  private closed = false;

  constructor(private readonly opts: QueueOptions = DEFAULT_QUEUE_OPTIONS) {
    this.tokens = opts.burst;
  }

  get depth(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.closed || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.wake();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.add(key);
    }, delayMs);
    this.timers.add(timer);
  }

  /** Retry after a failure: 200 ms, 400 ms, 800 ms ... up to maxDelayMs. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its next failure starts the backoff again. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Next key to process, or undefined once shut down. */
  async get(): Promise<string | undefined> {
    while (!this.closed) {
      const key = this.queue.shift();
      if (key !== undefined) {
        await this.takeToken();
        this.dirty.delete(key);
        this.processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return undefined;
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.closed) {
      this.queue.push(key);
      this.wake();
    }
  }

  shutdown(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async takeToken(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.opts.ratePerSecond);
      this.lastRefill = now;
      if (this.tokens >= 1 || this.closed) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.opts.ratePerSecond) * 1000)));
    }
  }
}
