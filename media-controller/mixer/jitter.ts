/**
 * A small jitter buffer, placed by RTP timestamp so any packet size (10/20/30 ms) fits, decoded
 * on arrival into linear samples. Missing samples play as silence. A new SSRC, a timestamp jump
 * or a run of late packets (the sender restarted or its clock drifted) resynchronises instead of
 * going quiet. All storage is allocated once.
 */

/** Samples of 8 kHz audio in one 20 ms tick. */
export const FRAME_SAMPLES = 160;
/** Ring capacity: 240 ms (the logical window packets are accepted into). */
const RING = FRAME_SAMPLES * 12;
/**
 * Storage is a power of two at least RING long, indexed by `ts & SLOT_MASK`: no float modulo per
 * sample, and since it divides 2^32 the index stays continuous across timestamp wraparound.
 */
const SLOTS = 2048;
const SLOT_MASK = SLOTS - 1;
/** Playout starts this far behind the first packet: 40-60 ms of slack depending on tick phase. */
const PREFILL = FRAME_SAMPLES * 2;
/** Consecutive late packets after which we assume the sender's timeline moved. */
const LATE_RESYNC = 3;

export class JitterBuffer {
  private readonly samples = new Int16Array(SLOTS);
  /** The RTP timestamp each ring position holds; a position is valid only if it matches the one read. */
  private readonly stamps = new Uint32Array(SLOTS);
  private started = false;
  private ssrc = 0;
  private playout = 0;
  private lateRun = 0;
  resyncs = 0;
  late = 0;

  /** Stores one packet's payload (G.711 bytes) decoded with `table`. Returns false if it was dropped as late. */
  push(ssrc: number, timestamp: number, payload: Uint8Array, offset: number, length: number, table: Int16Array): boolean {
    if (!this.started || ssrc !== this.ssrc) this.resync(ssrc, timestamp);
    let ahead = (timestamp - this.playout) | 0;
    if (ahead < 0) {
      if (ahead < -RING || ++this.lateRun >= LATE_RESYNC) {
        this.resync(ssrc, timestamp);
        ahead = PREFILL;
      } else {
        this.late++;
        return false;
      }
    }
    if (ahead + length > RING) this.resync(ssrc, timestamp);
    this.lateRun = 0;
    for (let k = 0; k < length; k++) {
      const ts = (timestamp + k) >>> 0;
      const idx = ts & SLOT_MASK;
      this.samples[idx] = table[payload[offset + k]!]!;
      this.stamps[idx] = ts;
    }
    return true;
  }

  /** Fills one tick of samples (silence where nothing arrived) and advances. Returns how many were real. */
  pull(out: Int16Array): number {
    if (!this.started) {
      out.fill(0);
      return 0;
    }
    let got = 0;
    const base = this.playout;
    for (let j = 0; j < FRAME_SAMPLES; j++) {
      const ts = (base + j) >>> 0;
      const idx = ts & SLOT_MASK;
      if (this.stamps[idx] === ts) {
        out[j] = this.samples[idx]!;
        got++;
      } else {
        out[j] = 0;
      }
    }
    this.playout = (base + FRAME_SAMPLES) >>> 0;
    return got;
  }

  private resync(ssrc: number, timestamp: number): void {
    if (this.started) this.resyncs++;
    this.started = true;
    this.ssrc = ssrc;
    this.lateRun = 0;
    this.playout = (timestamp - PREFILL) >>> 0;
    // Stamps from the old timeline must not match the new one: mark every slot as long past.
    this.stamps.fill((this.playout - RING * 2) >>> 0);
  }
}
