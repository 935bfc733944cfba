/**
 * The door new calls pass: samples how loaded signaling is (event loop, media, set-ups, the call
 * model's queue, media ports), asks the pure decision (admission.ts) and counts what it refused.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { SipAdmission } from '../common/config/schema.js';
import { admission, type Load, type Verdict } from './admission.js';
import type { SignalingMetrics } from './metrics.js';

/**
 * The event loop's delay is sampled over windows this long, and judged by the lower of the last
 * two: an overload lasts, whereas one stall (a GC, a burst of other work on a shared machine)
 * fills a single window and must not refuse calls for it.
 */
const WindowMs = 500;

export interface AdmissionGateOptions {
  limits: () => SipAdmission;
  /** The live figures besides the event loop's, read at each new call. */
  load: () => Omit<Load, 'eventLoopDelayMs'>;
  metrics: Pick<SignalingMetrics, 'admissionRefused' | 'setUpTimeouts'>;
}

export class AdmissionGate {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly timer: NodeJS.Timeout;
  private lastDelayMs = 0;
  private judgedDelayMs = 0;

  constructor(private readonly o: AdmissionGateOptions) {
    this.delay.enable();
    this.timer = setInterval(() => {
      const windowMs = this.delay.count > 0 ? this.delay.percentile(99) / 1e6 : 0;
      this.judgedDelayMs = Math.min(this.lastDelayMs, windowMs);
      this.lastDelayMs = windowMs;
      this.delay.reset();
    }, WindowMs);
    this.timer.unref();
  }

  /** The event loop's delay (ms): 99th percentile per window, the lower of the last two windows. */
  get eventLoopDelayMs(): number {
    return this.judgedDelayMs;
  }

  /** Whether a new call (`request`: INVITE or MakeCall) may start now; a refusal is counted by its reason. */
  check(request: 'INVITE' | 'MakeCall'): Verdict {
    const verdict = admission({ ...this.o.load(), eventLoopDelayMs: this.judgedDelayMs }, this.o.limits());
    if (!verdict.admit) this.o.metrics.admissionRefused.inc({ request, reason: verdict.reason });
    return verdict;
  }

  get retryAfterSeconds(): number {
    return this.o.limits().retryAfterSeconds;
  }

  get setUpTimeoutMs(): number {
    return this.o.limits().setUpTimeoutSeconds * 1000;
  }

  /** An INVITE that neither rang nor was answered in time was answered 503. */
  setUpTimedOut(): void {
    this.o.metrics.setUpTimeouts.inc();
  }

  stop(): void {
    clearInterval(this.timer);
    this.delay.disable();
  }
}
