/** Id sources. The model never invents ids itself: they come from ModelEnv.ids. */
import type { IdSource } from './types.js';

/**
 * Deterministic ids from counters: ConnIDs 0000000000000001, 0000000000000002 ...,
 * legs leg-1, leg-2 ..., bridges br-1 ... (tests, and single-process runs that want stable ids).
 * `connIdBase` offsets the ConnIDs so two sites never print the same one.
 */
export function counterIds(connIdBase = 0): IdSource {
  let conn = connIdBase;
  let leg = 0;
  let bridge = 0;
  return {
    connId: () => (++conn).toString(16).padStart(16, '0'),
    legId: () => `leg-${++leg}`,
    bridgeId: () => `br-${++bridge}`,
  };
}
