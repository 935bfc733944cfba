/**
 * What the disconnected party (C) must hear, as named conditions: the phones run in a worker
 * thread (bench/listen-disconnect/phones.ts) and a name crosses the thread boundary, a function does not.
 */
import { toneFrequency } from '../../test/support/tone-phone.js';
import type { Window } from '../common/lean-phone.js';

export const TONE = { a: toneFrequency(0), b: toneFrequency(1), c: toneFrequency(2) };
/** The tones a failed condition reports. */
export const SHOW = [TONE.a, TONE.b, TONE.c];
/** A tone counts as heard above this share of the window's energy, music when one note passes MUSIC. */
export const HEARD = 0.1;
export const MUSIC = 0.3;

export const Conditions = {
  /** Music, and neither A nor B. */
  isolated: (w: Window) => w.music() > MUSIC && w.share(TONE.a) < HEARD && w.share(TONE.b) < HEARD,
  /** A and B, and no music. */
  inConference: (w: Window) => w.music() < HEARD && w.share(TONE.a) > HEARD && w.share(TONE.b) > HEARD,
} as const;

export type ConditionName = keyof typeof Conditions;
