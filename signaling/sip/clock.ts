/** Injectable time source for the transaction timers, so each timer can be unit-tested without real waits. */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/**
 * The stack's timers use a handful of delays (multiples of T1, T2, T4), and timers of one delay
 * expire in the order they were set. So each delay gets one FIFO and one Node timer for its head:
 * setting or cancelling a timer is an array write, not a Timeout object per SIP timer.
 */
class DelayQueue {
  private readonly at: number[] = [];
  private readonly fns: ((() => void) | undefined)[] = [];
  /** Index of the first pending entry; entries before it have fired or were cancelled. */
  private head = 0;
  /** Sequence number of fns[0], so handles stay valid when the arrays are compacted. */
  private base = 0;
  private armed = false;

  constructor(private readonly ms: number) {}

  add(fn: () => void): QueuedTimer {
    const seq = this.base + this.fns.length;
    this.at.push(performance.now() + this.ms);
    this.fns.push(fn);
    if (!this.armed) this.arm();
    return new QueuedTimer(this, seq);
  }

  cancel(seq: number): void {
    const i = seq - this.base;
    // Dropping the callback releases what it holds (a transaction, a dialog) at once.
    if (i >= this.head && i < this.fns.length) this.fns[i] = undefined;
  }

  private arm(): void {
    while (this.head < this.fns.length && this.fns[this.head] === undefined) this.head++;
    if (this.head === this.fns.length) {
      this.base += this.fns.length;
      this.at.length = 0;
      this.fns.length = 0;
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
      while (this.head < this.fns.length && this.at[this.head]! <= now) {
        const fn = this.fns[this.head];
        this.fns[this.head] = undefined;
        this.head++;
        fn?.();
      }
    } finally {
      if (this.head > 1024 && this.head * 2 > this.fns.length) {
        this.at.splice(0, this.head);
        this.fns.splice(0, this.head);
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

/** Wall clock; timers do not keep the process alive (unref). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const delay = Math.max(0, Math.round(ms));
    let q = delayQueues.get(delay);
    if (!q) {
      q = new DelayQueue(delay);
      delayQueues.set(delay, q);
    }
    return q.add(fn);
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
