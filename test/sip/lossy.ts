import type { Transport } from '../../signaling/sip/index.js';

/**
 * A lossy link for tests: wraps a transport and drops every `every`-th outgoing message whose
 * start line begins with one of `prefixes` (e.g. "SIP/2.0 200", "INVITE"), at most `max` in all.
 */
export function dropEvery(every: number, prefixes: string[], max = Infinity): { wrap: (t: Transport) => Transport; dropped: () => number } {
  let seen = 0;
  let dropped = 0;
  const wrap = (t: Transport): Transport => {
    const send = t.send.bind(t);
    t.send = (data, dest, onError) => {
      const head = data.toString('latin1', 0, 16);
      if (dropped < max && prefixes.some((p) => head.startsWith(p)) && ++seen % every === 0) {
        dropped++;
        return;
      }
      send(data, dest, onError);
    };
    return t;
  };
  return { wrap, dropped: () => dropped };
}
