/**
 * Admission control (pure): whether a new call (an INVITE, a MakeCall) may start, given how loaded
 * signaling is right now. Refusing at the door, before any media is allocated, is what keeps an
 * overload from failing calls half-way (BridgeNotFound, LegNotFound) and from leaving INVITEs
 * without a final answer. Only new calls are judged: established and ringing calls, in-dialog
 * requests and BYE never come here.
 */
import type { SipAdmission } from '../common/config/schema.js';

/** How loaded signaling is at the moment a new call arrives. */
export interface Load {
  /** The event loop's delay, 99th percentile over the last sampling window (ms). */
  eventLoopDelayMs: number;
  /** Media command latency: recent average, or the age of the oldest unanswered command if longer (ms). */
  mediaLatencyMs: number;
  /** SIP legs being set up: INVITEs not yet taken, legs without a confirmed dialog (a two-party call has two). */
  legsSettingUp: number;
  /** Inputs waiting in the call model's serial queue. */
  queueDepth: number;
  /** How long a new input would wait in that queue (ms). */
  queueWaitMs: number;
  /** Legs held on media now. */
  legs: number;
  /** rtpengine ports of every media pod (spec.media.portMin-portMax times spec.media.replicas). */
  mediaPorts: number;
}

/** Why a call was refused; the metrics' `reason` label. */
export const RefusalReasons = ['event_loop_delay', 'media_latency', 'legs_setting_up', 'queue_depth', 'queue_wait', 'media_ports'] as const;
export type RefusalReason = (typeof RefusalReasons)[number];

export type Verdict = { admit: true } | { admit: false; reason: RefusalReason; message: string };

const ADMIT: Verdict = { admit: true };

/** Legs a new two-party call adds (the caller's and the callee's). */
const LegsPerNewCall = 2;

/** The first limit the load is past, cheapest cause first; admitted when none is. */
export function admission(load: Load, limits: SipAdmission): Verdict {
  if (!limits.enabled) return ADMIT;
  if (load.queueDepth >= limits.maxQueueDepth) return refuse('queue_depth', `call model queue ${load.queueDepth} >= ${limits.maxQueueDepth}`);
  if (load.queueWaitMs > limits.maxQueueWaitMs) return refuse('queue_wait', `call model queue wait ${Math.round(load.queueWaitMs)} ms > ${limits.maxQueueWaitMs} ms`);
  if (load.legsSettingUp >= limits.maxLegsSettingUp) return refuse('legs_setting_up', `${load.legsSettingUp} legs setting up >= ${limits.maxLegsSettingUp}`);
  if (load.eventLoopDelayMs > limits.maxEventLoopDelayMs) return refuse('event_loop_delay', `event loop delay ${Math.round(load.eventLoopDelayMs)} ms > ${limits.maxEventLoopDelayMs} ms`);
  if (load.mediaLatencyMs > limits.maxMediaLatencyMs) return refuse('media_latency', `media latency ${Math.round(load.mediaLatencyMs)} ms > ${limits.maxMediaLatencyMs} ms`);
  if (limits.mediaPortsPerLeg > 0) {
    const needed = (load.legs + LegsPerNewCall) * limits.mediaPortsPerLeg;
    if (needed > load.mediaPorts) return refuse('media_ports', `${load.legs} legs hold ${load.legs * limits.mediaPortsPerLeg} of ${load.mediaPorts} media ports`);
  }
  return ADMIT;
}

function refuse(reason: RefusalReason, message: string): Verdict {
  return { admit: false, reason, message: `Overload: ${message}` };
}
