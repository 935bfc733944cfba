import { Counter, Gauge, Registry } from 'prom-client';
import { SIP_METHODS } from './grammar.js';
import type { SourceRateLimiter } from './rate-limit.js';

/**
 * The SIP methods of the IANA registry: the only method label values. Any other name a peer sends
 * counts as `other`, so strangers cannot create metric series (one per made-up method).
 */
const KNOWN_METHODS: ReadonlySet<string> = new Set(SIP_METHODS);

export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

/**
 * SIP stack metrics. Per-message counts and live totals are plain integers folded into
 * prom-client at scrape time (collect): label hashing on every message would cost more than parsing it.
 */
export class SipMetrics {
  readonly registry: Registry;
  /** Live transactions by kind and confirmed dialogs; read by the gauges at scrape time. */
  readonly live = { ict: 0, nict: 0, ist: 0, nist: 0, dialogs: 0 };
  private readonly requests = new Map<string, number>();
  private readonly responses = new Map<string, number>();
  private readonly retransmissions = new Map<string, number>();
  private readonly parseErrors = new Map<string, number>();
  private rateLimiter: SourceRateLimiter | undefined;

  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[], source: Map<string, number>) =>
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [key, value] of source) {
            const values = key.split('\u0000');
            const labels = Object.fromEntries(labelNames.map((l, i) => [l, values[i] ?? ''])) as Record<L, string>;
            this.inc(labels, value);
          }
        },
      });
    counter('huddle_sip_requests_total', 'SIP requests by direction and method (retransmissions excluded)', ['direction', 'method'], this.requests);
    counter('huddle_sip_responses_total', 'SIP responses by direction, CSeq method and status code', ['direction', 'method', 'code'], this.responses);
    counter('huddle_sip_retransmissions_total', 'SIP retransmissions sent (out) and absorbed (in)', ['direction', 'method'], this.retransmissions);
    counter('huddle_sip_parse_errors_total', 'Messages rejected by the parser', ['transport'], this.parseErrors);
    const live = this.live;
    new Gauge({
      name: 'huddle_sip_transactions_active',
      help: 'Live SIP transactions by kind (ict, nict, ist, nist)',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const kind of ['ict', 'nict', 'ist', 'nist'] as const) this.set({ kind }, live[kind]);
      },
    });
    const limiter = () => this.rateLimiter;
    new Gauge({
      name: 'huddle_sip_rate_limited_sources',
      help: 'Source addresses blocked now for sending requests over the per-source rate (spec.sip.rateLimit)',
      registers,
      collect() {
        this.set(limiter()?.blockedSources(Date.now()) ?? 0);
      },
    });
    new Counter({
      name: 'huddle_sip_rate_limited_messages_total',
      help: 'Messages refused (dropped, or answered 503 when spec.sip.rateLimit.action is reject) because their source was blocked',
      registers,
      collect() {
        this.reset();
        this.inc(limiter()?.dropped ?? 0);
      },
    });
    new Gauge({
      name: 'huddle_sip_dialogs_active',
      help: 'Confirmed SIP dialogs',
      registers,
      collect() {
        this.set(live.dialogs);
      },
    });
  }

  /** The per-source limiter whose figures the rate-limit metrics read at scrape time. */
  watchRateLimiter(limiter: SourceRateLimiter): void {
    this.rateLimiter = limiter;
  }

  private static add(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  request(direction: 'in' | 'out', method: string): void {
    SipMetrics.add(this.requests, direction + '\u0000' + methodLabel(method));
  }

  response(direction: 'in' | 'out', method: string, code: number): void {
    SipMetrics.add(this.responses, direction + '\u0000' + methodLabel(method) + '\u0000' + code);
  }

  retransmission(direction: 'in' | 'out', method: string): void {
    SipMetrics.add(this.retransmissions, direction + '\u0000' + methodLabel(method));
  }

  parseError(transport: string): void {
    SipMetrics.add(this.parseErrors, transport);
  }
}
