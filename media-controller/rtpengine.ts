/**
 * rtpengine driver: a pool of rtpengine instances spoken to over the ng protocol
 * (rtpengine-client). Each instance is pinged; one that stops answering is reported lost (and
 * back when it answers again) so the legs anchored on it can be failed instead of silently dying.
 * An instance that restarts between two pings answers them all, but has forgotten its calls: each
 * ping of an instance holding legs also lists its calls, and those it no longer has are reported
 * (sessionsLost).
 * Commands name the instance explicitly: a leg stays on the rtpengine that anchored it.
 */
import { EventEmitter } from 'node:events';
import { SpanKind, trace, type Attributes } from '@opentelemetry/api';
import { Client, type NgParams, type NgResponse } from 'rtpengine-client';
import type { Logger } from 'pino';
import { inSpan } from '../common/process/tracing.js';

const tracer = trace.getTracer('huddle.rtpengine');

/** An ng command's span: the server, the call and party it names. */
function ngAttributes(ng: string, params: NgParams): Attributes {
  const p = params as { 'call-id'?: unknown; 'from-tag'?: unknown };
  return {
    'server.address': ng,
    ...(typeof p['call-id'] === 'string' ? { 'rtpengine.call_id': p['call-id'] } : {}),
    ...(typeof p['from-tag'] === 'string' ? { 'rtpengine.from_tag': p['from-tag'] } : {}),
  };
}

export type RtpengineErrorCode = 'RtpengineUnavailable' | 'RtpengineError';

export class RtpengineFailure extends Error {
  constructor(
    readonly code: RtpengineErrorCode,
    readonly ng: string,
    message: string,
  ) {
    super(`rtpengine ${ng}: ${message}`);
    this.name = 'RtpengineFailure';
  }
}

export type InstanceHealth = 'unknown' | 'up' | 'down';

interface Instance {
  ng: string;
  host: string;
  port: number;
  client: Client;
  /** Pings and session checks: a short timeout, so a ping lost in a restart does not hold up the next check. */
  prober: Client;
  health: InstanceHealth;
  failures: number;
  legs: number;
}

export interface RtpenginePoolOptions {
  /** ng addresses, host:port. */
  addresses: string[];
  log: Logger;
  pingIntervalMs?: number;
  /** How long a command (or ping) may wait for its reply. */
  commandTimeoutMs?: number;
  /** Consecutive failed pings before an instance is declared lost. */
  failAfter?: number;
  /** How long a ping may wait for its pong (default 500 ms). */
  pingTimeoutMs?: number;
}

export interface RtpenginePoolEvents {
  lost: [ng: string];
  back: [ng: string];
  /** The instance answers but no longer has these calls (it restarted, or dropped them). */
  sessionsLost: [ng: string, callIds: string[]];
}

export class RtpenginePool extends EventEmitter<RtpenginePoolEvents> {
  private readonly instances = new Map<string, Instance>();
  private readonly pingIntervalMs: number;
  private readonly failAfter: number;
  private running = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The rtpengine call-ids anchored on an instance, checked against its own list at each ping. */
  private held: (ng: string) => string[] = () => [];

  constructor(private readonly opts: RtpenginePoolOptions) {
    super();
    this.pingIntervalMs = opts.pingIntervalMs ?? 1000;
    this.failAfter = opts.failAfter ?? 2;
    for (const ng of opts.addresses) {
      const i = ng.lastIndexOf(':');
      const client = new Client({ timeout: opts.commandTimeoutMs ?? 2000 });
      const prober = new Client({ timeout: opts.pingTimeoutMs ?? 500 });
      // Late replies (after a timeout) are reported as errors by the client; they are not fatal.
      for (const c of [client, prober]) c.on('error', (err: Error) => opts.log.debug({ ng, err: err.message }, 'rtpengine client error'));
      this.instances.set(ng, { ng, host: ng.slice(0, i), port: Number(ng.slice(i + 1)), client, prober, health: 'unknown', failures: 0, legs: 0 });
    }
  }

  /** Names the calls each instance should hold, for the check at each ping. */
  watchSessions(held: (ng: string) => string[]): void {
    this.held = held;
  }

  /** Pings every instance once, then keeps pinging in the background. */
  async start(): Promise<void> {
    this.running = true;
    await Promise.all([...this.instances.values()].map((inst) => this.pingOnce(inst)));
    for (const inst of this.instances.values()) this.schedulePing(inst);
  }

  private schedulePing(inst: Instance): void {
    if (!this.running) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.pingOnce(inst).then(() => this.schedulePing(inst));
    }, this.pingIntervalMs);
    timer.unref();
    this.timers.add(timer);
  }

  private async pingOnce(inst: Instance): Promise<void> {
    let ok = false;
    try {
      ok = (await inst.prober.ping(inst.port, inst.host)).result === 'pong';
    } catch {
      ok = false;
    }
    if (!this.running) return;
    if (ok) {
      inst.failures = 0;
      const was = inst.health;
      inst.health = 'up';
      if (was === 'down') {
        this.opts.log.warn({ ng: inst.ng }, 'rtpengine back');
        this.emit('back', inst.ng);
        return;
      }
      await this.checkSessions(inst);
      return;
    }
    inst.failures++;
    if (inst.health !== 'down' && (inst.failures >= this.failAfter || inst.health === 'unknown')) {
      inst.health = 'down';
      this.opts.log.error({ ng: inst.ng }, 'rtpengine lost');
      this.emit('lost', inst.ng);
    }
  }

  /** Lists the instance's calls and reports those it should hold but does not. */
  private async checkSessions(inst: Instance): Promise<void> {
    const expected = this.held(inst.ng);
    if (expected.length === 0) return;
    let listed: unknown;
    try {
      const reply = await inst.prober.list(inst.port, inst.host, { limit: expected.length + 1000 });
      if (reply.result !== 'ok') return;
      listed = reply.calls;
    } catch {
      // No answer: the ping check decides whether the instance is lost.
      return;
    }
    if (!this.running || !Array.isArray(listed)) return;
    const present = new Set(listed.map(String));
    // The list is capped (other controllers' calls share the instance): a call not listed is
    // asked about before it is declared lost.
    const unlisted = expected.filter((callId) => !present.has(callId));
    const missing: string[] = [];
    for (const callId of unlisted) if (await this.forgotten(inst, callId)) missing.push(callId);
    if (!this.running || missing.length === 0) return;
    this.opts.log.error({ ng: inst.ng, missing: missing.length, expected: expected.length }, 'rtpengine lost calls it held (restarted?)');
    this.emit('sessionsLost', inst.ng, missing);
  }

  /** The instance says it has no such call (not: it did not answer). */
  private async forgotten(inst: Instance, callId: string): Promise<boolean> {
    try {
      const reply = await inst.prober.query(inst.port, inst.host, { 'call-id': callId });
      return reply.result === 'error' && /unknown call/i.test(String(reply['error-reason'] ?? ''));
    } catch {
      return false;
    }
  }

  health(ng: string): InstanceHealth {
    return this.instances.get(ng)?.health ?? 'down';
  }

  get addresses(): string[] {
    return [...this.instances.keys()];
  }

  legCount(ng: string): number {
    return this.instances.get(ng)?.legs ?? 0;
  }

  /** The answering instance with the fewest legs, for a new leg. */
  pick(): string {
    let best: Instance | undefined;
    for (const inst of this.instances.values()) {
      if (inst.health !== 'up') continue;
      if (!best || inst.legs < best.legs) best = inst;
    }
    if (!best) throw new RtpengineFailure('RtpengineUnavailable', this.opts.addresses.join(',') || '(none configured)', 'no rtpengine instance is answering');
    return best.ng;
  }

  /** Counts a leg against an instance (for pick) until release. */
  attach(ng: string): void {
    const inst = this.instances.get(ng);
    if (inst) inst.legs++;
  }

  release(ng: string): void {
    const inst = this.instances.get(ng);
    if (inst && inst.legs > 0) inst.legs--;
  }

  private async command(ng: string, name: 'offer' | 'answer' | 'delete' | 'query' | 'statistics' | 'blockMedia' | 'unblockMedia' | 'playMedia', params: NgParams): Promise<NgResponse> {
    const inst = this.instances.get(ng);
    if (!inst) throw new RtpengineFailure('RtpengineUnavailable', ng, 'not a configured instance');
    if (inst.health === 'down') throw new RtpengineFailure('RtpengineUnavailable', ng, 'instance is not answering');
    return inSpan(tracer, `rtpengine ${name}`, { kind: SpanKind.CLIENT, attributes: ngAttributes(ng, params) }, async (span) => {
      let reply: NgResponse;
      try {
        reply = await inst.client[name](inst.port, inst.host, params);
      } catch (err) {
        throw new RtpengineFailure('RtpengineUnavailable', ng, `${name}: ${(err as Error).message}`);
      }
      if (span.isRecording()) span.setAttribute('rtpengine.result', String(reply.result));
      if (reply.result === 'error') throw new RtpengineFailure('RtpengineError', ng, `${name}: ${reply['error-reason'] ?? 'error'}`);
      return reply;
    });
  }

  offer(ng: string, params: NgParams): Promise<NgResponse> {
    return this.command(ng, 'offer', params);
  }

  answer(ng: string, params: NgParams): Promise<NgResponse> {
    return this.command(ng, 'answer', params);
  }

  /** Deletes the whole call, or with `fromTag` only that party of it (the others keep their media and ports). */
  delete(ng: string, callId: string, fromTag?: string): Promise<NgResponse> {
    return this.command(ng, 'delete', { 'call-id': callId, ...(fromTag !== undefined ? { 'from-tag': fromTag } : {}) });
  }

  query(ng: string, callId: string): Promise<NgResponse> {
    return this.command(ng, 'query', { 'call-id': callId });
  }

  statistics(ng: string): Promise<NgResponse> {
    return this.command(ng, 'statistics', {});
  }

  /** Plays a WAV file TO the party whose tag is `fromTag`. */
  playMedia(ng: string, callId: string, fromTag: string, file: string, repeatTimes = 1): Promise<NgResponse> {
    return this.command(ng, 'playMedia', { 'call-id': callId, 'from-tag': fromTag, file, 'repeat-times': repeatTimes });
  }

  /** Stops media sent BY the party whose tag is `fromTag` from being forwarded. */
  blockMedia(ng: string, callId: string, fromTag: string): Promise<NgResponse> {
    return this.command(ng, 'blockMedia', { 'call-id': callId, 'from-tag': fromTag });
  }

  unblockMedia(ng: string, callId: string, fromTag: string): Promise<NgResponse> {
    return this.command(ng, 'unblockMedia', { 'call-id': callId, 'from-tag': fromTag });
  }

  stop(): void {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const inst of this.instances.values()) {
      for (const c of [inst.client, inst.prober]) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    }
  }
}
