/** Injectable time source for the transaction timers, so each timer can be unit-tested without real waits. */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
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
