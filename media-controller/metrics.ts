/**
 * Prometheus metrics of the media controller. Packet counters are read from the mixer's plain
 * totals at scrape time, so the per-packet path never touches prom-client.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MixerTotals } from './mixer/types.js';
import type { InstanceHealth } from './rtpengine.js';

export interface MediaView {
  legs(): number;
  bridges(): number;
  musicSessions(): { file: number; silence: number };
  mixerTotals(): Readonly<MixerTotals>;
  rtpengines(): { ng: string; health: InstanceHealth; legs: number }[];
}

export interface MediaMetrics {
  observeTick(latenessMs: number): void;
  command(op: string, result: string): void;
}

export function registerMediaMetrics(registry: Registry, view: () => MediaView | undefined): MediaMetrics {
  const lateness = new Histogram({
    name: 'huddle_media_mixer_tick_lateness_seconds',
    help: 'How late each 20 ms mixer tick ran',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
    registers: [registry],
  });
  const commands = new Counter({
    name: 'huddle_media_commands_total',
    help: 'Media commands handled, by op and result (ok or error code)',
    labelNames: ['op', 'result'],
    registers: [registry],
  });
  new Gauge({
    name: 'huddle_media_legs',
    help: 'Legs (parties) anchored on rtpengine and joined to a bridge',
    registers: [registry],
    collect() {
      this.set(view()?.legs() ?? 0);
    },
  });
  new Gauge({
    name: 'huddle_media_bridges',
    help: 'Bridges (calls and conferences) in this process',
    registers: [registry],
    collect() {
      this.set(view()?.bridges() ?? 0);
    },
  });
  new Gauge({
    name: 'huddle_media_music_sessions',
    help: 'Parties hearing music (file) or silence instead of their bridge',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const m = view()?.musicSessions() ?? { file: 0, silence: 0 };
      this.set({ kind: 'file' }, m.file);
      this.set({ kind: 'silence' }, m.silence);
    },
  });
  const packets = (name: string, help: string, pick: (t: Readonly<MixerTotals>) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const totals = view()?.mixerTotals();
        this.reset();
        if (totals) this.inc(pick(totals));
      },
    });
  packets('huddle_media_packets_in_total', 'RTP packets received by bridges', (t) => t.packetsIn);
  packets('huddle_media_packets_out_total', 'RTP packets sent by bridges', (t) => t.packetsOut);
  packets('huddle_media_packets_dropped_total', 'RTP packets dropped (late, malformed, send failures)', (t) => t.packetsDropped);
  new Gauge({
    name: 'huddle_media_rtpengine_up',
    help: '1 if the rtpengine instance answers ping, else 0',
    labelNames: ['ng'],
    registers: [registry],
    collect() {
      for (const r of view()?.rtpengines() ?? []) this.set({ ng: r.ng }, r.health === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'huddle_media_rtpengine_legs',
    help: 'Legs anchored on each rtpengine instance',
    labelNames: ['ng'],
    registers: [registry],
    collect() {
      for (const r of view()?.rtpengines() ?? []) this.set({ ng: r.ng }, r.legs);
    },
  });
  return {
    observeTick: (ms) => lateness.observe(ms / 1000),
    command: (op, result) => commands.inc({ op, result }),
  };
}
