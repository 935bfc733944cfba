/**
 * Writes to a JetStream bucket, one after another in the order asked, each waited for at most
 * `waitMs`. JetStream answers in a millisecond, but while a NATS cluster elects a new leader for
 * the bucket (seconds after a server dies, longer on a loaded machine) a call must not stand
 * still: past the wait the caller goes on and the write completes in order behind the others.
 * Order keeps the fence: a compare-and-set write that lands late still follows the one before
 * it, and whoever would claim the record writes to the same bucket, so no claim can slip between.
 */
import { within } from '../process/lifecycle.js';

export interface OrderedWritesOptions {
  waitMs: number;
  /** A write outlasted the wait: the caller went on without it. */
  onDelayed: (waitedMs: number) => void;
  /** A write that failed after the caller went on (the caller saw nothing). */
  onLateFailure: (err: Error) => void;
}

export class OrderedWrites {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  constructor(private readonly o: OrderedWritesOptions) {}

  /** Writes not done yet. */
  get depth(): number {
    return this.pending;
  }

  /**
   * Runs `write` after every write asked before it. Resolves (or rejects) as it does when it is
   * done within the wait; else resolves with `meanwhile`, and `late` gets the write's result.
   * `waitMs` overrides the wait for this write (0: do not wait, e.g. while stopping).
   */
  run<T>(write: () => Promise<T>, meanwhile: T, late: (result: T) => void, waitMs = this.o.waitMs): Promise<T> {
    this.pending++;
    const done = this.tail.then(write).finally(() => this.pending--);
    this.tail = done.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    let waited = false;
    const timeout = new Promise<T>((resolve) => {
      timer = setTimeout(() => {
        waited = true;
        // Not waiting at all was the caller's choice, no delay to tell.
        if (waitMs > 0) this.o.onDelayed(waitMs);
        resolve(meanwhile);
      }, waitMs);
    });
    done.then(
      (result) => {
        if (waited) late(result);
      },
      (err: Error) => {
        if (waited) this.o.onLateFailure(err);
      },
    );
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  }

  /** Resolves true once every write asked so far is done, or false after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean> {
    return within(this.tail, timeoutMs);
  }
}
