/** Injectable time source for the transaction timers, so each timer can be unit-tested without real waits. */

export interface TimerHandle {
  cancel(): void;
}

/** What a timer that is never cancelled ends. */
export interface Expirable {
  expire(): void;
}

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
  /**
   * Calls `item.expire()` after `ms`, for the long fixed waits that only end something (Timers D,
   * I, J, K, L, M): no handle and no closure per timer. What ended earlier ignores its expiry.
   */
  expireAfter(ms: number, item: Expirable): void;
}

/**
 * The stack's timers use a handful of delays (multiples of T1, T2, T4), and timers of one delay
 * expire in the order they were set. So each delay gets one FIFO and one Node timer for its head:
 * setting or cancelling a timer is an array write, not a Timeout object per SIP timer.
 */
class DelayQueue {
  private readonly at: number[] = [];
  /** A callback (cancellable through a handle) or an Expirable (never cancelled); undefined once fired or cancelled. */
  private readonly due: (Expirable | (() => void) | undefined)[] = [];
  /** Index of the first pending entry; entries before it have fired or were cancelled. */
  private head = 0;
  /** Sequence number of due[0], so handles stay valid when the arrays are compacted. */
  private base = 0;
  private armed = false;

  constructor(private readonly ms: number) {}

  /** Queues an entry; returns its sequence number for cancel(). */
  add(entry: Expirable | (() => void)): number {
    const seq = this.base + this.due.length;
    this.at.push(performance.now() + this.ms);
    this.due.push(entry);
    if (!this.armed) this.arm();
    return seq;
  }

  cancel(seq: number): void {
    const i = seq - this.base;
    // Dropping the callback releases what it holds (a transaction, a dialog) at once.
    if (i >= this.head && i < this.due.length) this.due[i] = undefined;
  }

  private arm(): void {
    while (this.head < this.due.length && this.due[this.head] === undefined) this.head++;
    if (this.head === this.due.length) {
      this.base += this.due.length;
      this.at.length = 0;
      this.due.length = 0;
      this.head = 0;
      this.armed = false;
      return;
    }
    this.armed = true;
    setTimeout(() => this.fire(), Math.max(0, this.at[this.head]! - performance.now())).unref();
  }

  private fire(): void {
    const now = performance.now();
    try {
      while (this.head < this.due.length && this.at[this.head]! <= now) {
        const entry = this.due[this.head];
        this.due[this.head] = undefined;
        this.head++;
        if (typeof entry === 'function') entry();
        else entry?.expire();
      }
    } finally {
      if (this.head > 1024 && this.head * 2 > this.due.length) {
        this.at.splice(0, this.head);
        this.due.splice(0, this.head);
        this.base += this.head;
        this.head = 0;
      }
      this.arm();
    }
  }
}

class QueuedTimer implements TimerHandle {
  constructor(
    private readonly queue: DelayQueue,
    private readonly seq: number,
  ) {}

  cancel(): void {
    this.queue.cancel(this.seq);
  }
}

const delayQueues = new Map<number, DelayQueue>();

function delayQueue(ms: number): DelayQueue {
  const delay = Math.max(0, Math.round(ms));
  let q = delayQueues.get(delay);
  if (!q) {
    q = new DelayQueue(delay);
    delayQueues.set(delay, q);
  }
  return q;
}

/** Wall clock; timers do not keep the process alive (unref). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const q = delayQueue(ms);
    return new QueuedTimer(q, q.add(fn));
  },
  expireAfter(ms, item) {
    delayQueue(ms).add(item);
  },
};

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A manual clock: time moves only through advance(). Timers fire in due order. */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private pending: Pending[] = [];

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.pending.push(p);
    return { cancel: () => (p.cancelled = true) };
  }

  expireAfter(ms: number, item: Expirable): void {
    this.setTimer(ms, () => item.expire());
  }

  /** Moves time forward by ms, firing due timers (including ones they schedule) in order. */
  advance(ms: number): void {
    const target = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      this.pending = this.pending.filter((p) => !p.cancelled);
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= target && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.t = target;
  }

  get activeTimers(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }
}
