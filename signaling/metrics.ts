/**
 * Prometheus metrics of signaling, on the registry the component is given. The SIP stack keeps
 * its own (signaling/sip/metrics.ts). Gauges read the live figures at scrape time.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { RequestNames } from '../common/tlib/enums.js';
import type { ModelOutput } from './model/index.js';

const KNOWN_REQUESTS: ReadonlySet<string> = new Set(RequestNames);

/** The request label: a T-Library request name, or `other` for any name that is none (so a forged envelope cannot create series). */
export function tlibRequestLabel(name: string): string {
  return KNOWN_REQUESTS.has(name) ? name : 'other';
}

/** Live figures the gauges read; zero until the component has built what they come from. */
export interface SignalingView {
  registrations(): number;
  calls(): number;
  conferences(): number;
  registeredDns(): number;
  legs(): number;
  /** What admission control judges new calls by. */
  eventLoopDelayMs(): number;
  mediaLatencyMs(): number;
  legsSettingUp(): number;
  queueDepth(): number;
  queueWaitMs(): number;
}

export interface SignalingMetrics {
  tlibRequests: Counter<'request' | 'result'>;
  tlibRequestDuration: Histogram<'request'>;
  mediaCommands: Counter<'op' | 'result'>;
  mediaCommandDuration: Histogram<'op'>;
  listenDisconnects: Counter;
  listenReconnects: Counter;
  /** Call group records written to JetStream, and their bytes and write time. */
  callStateWrites: Counter;
  callStateBytes: Counter;
  callStateWriteDuration: Histogram;
  /** Times incoming calls to their first 180 or 200 (huddle_call_setup_seconds). */
  callSetup: CallSetupClock;
  /** New calls refused by admission control, by request (INVITE, MakeCall) and reason. */
  admissionRefused: Counter<'request' | 'reason'>;
  /** Incoming INVITEs answered 503 because they neither rang nor were answered in time. */
  setUpTimeouts: Counter;
  /** Call detail records stored in the site's CDR stream, and those that were not. */
  cdrStored: Counter;
  cdrNotStored: Counter<'reason'>;
  /** Points the gauges at the running component. */
  watch(view: SignalingView): void;
}

export function signalingMetrics(registry: Registry): SignalingMetrics {
  let view: SignalingView | undefined;
  const gauge = (name: string, help: string, read: (v: SignalingView) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(view ? read(view) : 0);
      },
    });
  gauge('huddle_sip_registrations', 'Live registrar bindings', (v) => v.registrations());
  gauge('huddle_calls_active', 'Calls this signaling replica owns (in its call model)', (v) => v.calls());
  gauge('huddle_conferences_active', 'Calls that are conferences', (v) => v.conferences());
  gauge('huddle_signaling_registered_dns', 'DNs registered by T-Library clients', (v) => v.registeredDns());
  gauge('huddle_sip_legs_active', 'SIP legs the B2BUA holds', (v) => v.legs());
  gauge('huddle_signaling_event_loop_delay_seconds', "The event loop's delay as admission control judges it: 99th percentile per 0.5 s, the lower of the last two windows", (v) => v.eventLoopDelayMs() / 1000);
  gauge('huddle_signaling_media_latency_seconds', 'Media command latency: recent average, or the oldest unanswered command if older (admission control)', (v) => v.mediaLatencyMs() / 1000);
  gauge('huddle_signaling_legs_setting_up', 'SIP legs being set up: INVITEs not yet taken, legs without a confirmed dialog (admission control)', (v) => v.legsSettingUp());
  gauge('huddle_signaling_model_queue_depth', "Inputs waiting in the call model's queue (admission control)", (v) => v.queueDepth());
  gauge('huddle_signaling_model_queue_wait_seconds', "How long a new input would wait in the call model's queue (admission control)", (v) => v.queueWaitMs() / 1000);
  return {
    tlibRequests: new Counter({
      name: 'huddle_signaling_tlib_requests_total',
      help: 'T-Library requests handled by signaling, by request and result (ok or the EventError code)',
      labelNames: ['request', 'result'],
      registers: [registry],
    }),
    tlibRequestDuration: new Histogram({
      name: 'huddle_signaling_tlib_request_duration_seconds',
      help: 'Time signaling takes to answer a T-Library request',
      labelNames: ['request'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    mediaCommands: new Counter({
      name: 'huddle_signaling_media_commands_total',
      help: 'Media commands sent by signaling, by op and result',
      labelNames: ['op', 'result'],
      registers: [registry],
    }),
    mediaCommandDuration: new Histogram({
      name: 'huddle_signaling_media_command_duration_seconds',
      help: 'Time from a media command to its reply',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    listenDisconnects: new Counter({
      name: 'huddle_listen_disconnects_total',
      help: 'Parties listen-disconnected (EventListenDisconnected answering a request)',
      registers: [registry],
    }),
    listenReconnects: new Counter({
      name: 'huddle_listen_reconnects_total',
      help: 'Parties listen-reconnected',
      registers: [registry],
    }),
    callStateWrites: new Counter({
      name: 'huddle_call_state_writes_total',
      help: 'Call group records written to the huddle-calls bucket',
      registers: [registry],
    }),
    callStateBytes: new Counter({
      name: 'huddle_call_state_written_bytes_total',
      help: 'Bytes of call group records written to the huddle-calls bucket',
      registers: [registry],
    }),
    callStateWriteDuration: new Histogram({
      name: 'huddle_call_state_write_duration_seconds',
      help: 'Time of one compare-and-set write of a call group',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    callSetup: new CallSetupClock(
      new Histogram({
        name: 'huddle_call_setup_seconds',
        help: 'Post-dial delay of incoming calls: from signaling taking the INVITE up to the caller\'s first 180 or 200',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      }),
    ),
    admissionRefused: new Counter({
      name: 'huddle_signaling_admission_refused_total',
      help: 'New calls refused by admission control (INVITE 503, MakeCall EventError), by request and reason',
      labelNames: ['request', 'reason'],
      registers: [registry],
    }),
    cdrStored: new Counter({
      name: 'huddle_cdr_stored_total',
      help: 'Call detail records stored in the site\'s CDR stream',
      registers: [registry],
    }),
    cdrNotStored: new Counter({
      name: 'huddle_cdr_not_stored_total',
      help: 'Call detail records lost: JetStream did not take them within 30 s (failed), or too many were waiting (overflow)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    setUpTimeouts: new Counter({
      name: 'huddle_signaling_setup_timeouts_total',
      help: 'Incoming INVITEs answered 503 because they neither rang nor were answered within spec.sip.admission.setUpTimeoutSeconds',
      registers: [registry],
    }),
    watch: (running) => {
      view = running;
    },
  };
}

/**
 * Call set-up time as the caller sees it: from the inbound leg the model makes for an INVITE to the
 * first 180 or 200 sent on it. Ringing ends the measure, so how long people take to answer is not
 * in it. Legs released before either are forgotten; the map is capped so a leg never answered nor
 * released (its call handed to another replica) cannot grow it for ever.
 */
export class CallSetupClock {
  private readonly started = new Map<string, number>();

  constructor(
    private readonly histogram: Histogram,
    private readonly now: () => number = () => performance.now(),
    private readonly cap = 10_000,
  ) {}

  /** Every SIP action the call model's shell carries out. */
  sipAction(out: ModelOutput): void {
    switch (out.kind) {
      case 'sip.connect':
        if (out.direction !== 'inbound') return;
        if (this.started.size >= this.cap) this.started.delete(this.started.keys().next().value as string);
        this.started.set(out.legId, this.now());
        return;
      case 'sip.ringing':
      case 'sip.answer': {
        const at = this.started.get(out.legId);
        if (at === undefined) return;
        this.started.delete(out.legId);
        this.histogram.observe((this.now() - at) / 1000);
        return;
      }
      case 'sip.release':
        this.started.delete(out.legId);
        return;
      default:
        return;
    }
  }

  /** Legs waiting for their first 180 or 200. */
  get pending(): number {
    return this.started.size;
  }
}
