/**
 * RFC 3261 timers, one table (§17, Table 4: https://datatracker.ietf.org/doc/html/rfc3261#appendix-A):
 * T1, T2 and T4 are configured (SipCluster spec.sip.timers); every other timer is derived from
 * them here, so no state machine computes one of its own. Deviations from Table 4 are flagged.
 */

/** The three base timers, in milliseconds. */
export interface TimerConfig {
  /** RTT estimate (default 500 ms). */
  readonly t1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s). */
  readonly t2: number;
  /** Maximum duration a message will remain in the network (default 5 s). */
  readonly t4: number;
}

export const DEFAULT_TIMERS: TimerConfig = { t1: 500, t2: 4000, t4: 5000 };

/** The configured T1/T2/T4 (SipStackOptions.timers), defaults for those not given. */
export function timerConfig(given: { t1Ms?: number; t2Ms?: number; t4Ms?: number } = {}): TimerConfig {
  return { t1: given.t1Ms ?? DEFAULT_TIMERS.t1, t2: given.t2Ms ?? DEFAULT_TIMERS.t2, t4: given.t4Ms ?? DEFAULT_TIMERS.t4 };
}

/** 64·T1: how long a transaction (or a 2xx awaiting its ACK) is given before it is abandoned. */
export function sixtyFourT1(t: TimerConfig): number {
  return 64 * t.t1;
}

/** Retransmission intervals start at T1 (Timers A, E, G, and the UAS core's 2xx, §13.3.1.4). */
export function firstRetransmit(t: TimerConfig): number {
  return t.t1;
}

/** Timer A, INVITE request retransmit: "the value of timer A MUST be doubled" each time (§17.1.1.2), without a cap. */
export function nextTimerA(interval: number): number {
  return 2 * interval;
}

/** Timer B, INVITE transaction timeout: 64·T1. */
export function timerB(t: TimerConfig): number {
  return sixtyFourT1(t);
}

/**
 * Timer D, wait time for response retransmits: "> 32 s for UDP, 0 s for TCP/SCTP".
 * Deviation: 32 s exactly at the default T1, and 64·T1 when T1 is configured larger, so the wait
 * still covers the server's Timer G retransmissions.
 */
export function timerD(t: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : Math.max(32_000, sixtyFourT1(t));
}

/** Timer E, non-INVITE request retransmit: doubles up to T2, and is T2 once a provisional came (§17.1.2.2). */
export function nextTimerE(t: TimerConfig, interval: number, proceeding: boolean): number {
  return proceeding ? t.t2 : Math.min(2 * interval, t.t2);
}

/** Timer F, non-INVITE transaction timeout: 64·T1. */
export function timerF(t: TimerConfig): number {
  return sixtyFourT1(t);
}

/** Timer G, INVITE response retransmit (and the UAS core's 2xx, §13.3.1.4): doubles up to T2. */
export function nextTimerG(t: TimerConfig, interval: number): number {
  return Math.min(2 * interval, t.t2);
}

/** Timer H, wait time for ACK receipt: 64·T1. */
export function timerH(t: TimerConfig): number {
  return sixtyFourT1(t);
}

/** Timer I, wait time for ACK retransmits: T4 for UDP, 0 s for TCP/SCTP. */
export function timerI(t: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : t.t4;
}

/** Timer J, wait time for non-INVITE request retransmits: 64·T1 for UDP, 0 s for TCP/SCTP. */
export function timerJ(t: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : sixtyFourT1(t);
}

/** Timer K, wait time for response retransmits: T4 for UDP, 0 s for TCP/SCTP. */
export function timerK(t: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : t.t4;
}

/** Timer L (RFC 6026 §8.7), wait time for accepted INVITE request retransmits: 64·T1. */
export function timerL(t: TimerConfig): number {
  return sixtyFourT1(t);
}

/** Timer M (RFC 6026 §8.4), wait time for retransmission of 2xx to INVITE or additional 2xx from other branches: 64·T1. */
export function timerM(t: TimerConfig): number {
  return sixtyFourT1(t);
}
