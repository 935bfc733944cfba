/**
 * The shell around the pure call model. Every input (a T-Library request, a SIP fact, a media
 * fact) runs through one serial queue, and the model's outputs are carried out in the order given,
 * so the model sees a consistent world: T-Library events are published, media commands sent to
 * media-controller, SIP actions handed to the B2BUA, conference states to the RFC 4575 notifier.
 */
import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { TlibOrigin } from '../common/nats/tlib-contract.js';
import { ErrorCodes, errorEvent } from '../common/tlib/errors.js';
import type { TEvent, TRequest } from '../common/tlib/messages.js';
import type { CallModel, ModelInput, ModelOutput } from './model/index.js';
import { MediaCommandError, failureFact, undoesRequest, type FailedMediaCommand, type MediaClient } from './media-client.js';
import type { B2bua, SipAction, SipFact, SipFactQueue } from './b2bua.js';
import type { ConferenceEventNotifier } from './conference-events.js';
import { inSpan } from '../common/process/tracing.js';
import type { CallLog } from './call-log.js';
import type { CdrPublisher } from './cdr-publisher.js';

/** A T-Library request about a call that another replica owns now (found while writing its state): nothing was done. */
export class NotOwner extends Error {
  constructor() {
    super('the call is owned by another signaling replica now');
    this.name = 'NotOwner';
  }
}

/** Weight of the latest job in the average job time: about the last twenty count. */
const JobTimeWeight = 0.05;

/** Most outputs answer nothing; one shared empty list spares an allocation per output. */
const NO_REPLIES: readonly TEvent[] = [];
const tracer = trace.getTracer('huddle.signaling');

export interface CallModelShellOptions {
  model: Pick<CallModel, 'handle' | 'registrationsOf' | 'resync'>;
  media: MediaClient;
  b2bua: Pick<B2bua, 'carryOut' | 'connectFailed' | 'releaseAll'> & Partial<Pick<B2bua, 'callIdOf'>>;
  conferenceEvents: Pick<ConferenceEventNotifier, 'stateChanged' | 'endAll'>;
  publish: (dn: string, event: TEvent, origin?: TlibOrigin) => void;
  /** Writes one info line per call lifecycle step of the model's outputs. */
  callLog?: CallLog;
  /** Stores a call's detail record when it ends (in the background: the call never waits for it). */
  cdr?: Pick<CdrPublisher, 'publish'>;
  /** Sees each SIP action before it is carried out (call set-up time). */
  onSipAction?: (out: SipAction) => void;
  log: Logger;
  /**
   * Call state in JetStream: `persist` writes the groups an input changed before its outputs are
   * carried out, and resolves false when another replica owns one of them (then none is carried
   * out); `settle` writes what carrying them out changed on the SIP side.
   */
  replication?: {
    persist(input: ModelInput, outputs: readonly ModelOutput[]): Promise<boolean>;
    settle(input: ModelInput, outputs: readonly ModelOutput[]): Promise<void>;
  };
}

export class CallModelShell implements SipFactQueue {
  private queue: Promise<void> = Promise.resolve();
  /** When each unfinished job was queued, oldest first (jobs finish in queue order). */
  private readonly queuedAt: number[] = [];
  /** Average time one job holds the queue (ms), its awaited media and state writes included. */
  private jobAverageMs = 0;

  constructor(private readonly o: CallModelShellOptions) {}

  /** Jobs queued and not yet finished (admission control refuses new calls past a depth). */
  get depth(): number {
    return this.queuedAt.length;
  }

  /**
   * How long a new input would wait (ms): the queued jobs at their recent average time each, or
   * the age of the oldest unfinished one when that is longer (a job stuck on a slow reply).
   */
  get waitMs(): number {
    const oldest = this.queuedAt[0];
    if (oldest === undefined) return 0;
    return Math.max(this.queuedAt.length * this.jobAverageMs, performance.now() - oldest);
  }

  /** A T-Library request from a gateway; resolves with the events answering it at once. */
  tlibRequest(request: TRequest, origin: TlibOrigin): Promise<TEvent[]> {
    return this.enqueue(() => this.input({ kind: 'tlib.request', request, origin }));
  }

  /** A gateway stopped or went silent: its clients' registrations end. */
  gatewayGone(gateway: string): void {
    void this.enqueue(() => this.input({ kind: 'tlib.gatewayGone', gateway }));
  }

  /** Bridges that died with their media-controller: their calls are released. */
  bridgesLost(bridgeIds: readonly string[], instance: string, reason: string): void {
    for (const bridgeId of bridgeIds) void this.enqueue(() => this.input({ kind: 'media.bridgeLost', bridgeId, instance, reason }));
  }

  /** Bridges another media-controller adopted: their legs' flags and music are applied again. */
  bridgesRebuilt(bridgeIds: readonly string[], instance: string): void {
    for (const bridgeId of bridgeIds) void this.enqueue(() => this.input({ kind: 'media.bridgeRebuilt', bridgeId, instance }));
  }

  /** A fact from media-controller: a leg failed, music ended or failed, an rtpengine was lost or is back. */
  mediaEvent(input: Extract<ModelInput, { kind: 'media.event' }>): void {
    void this.enqueue(() => this.input(input));
  }

  serially(job: () => SipFact | undefined | Promise<SipFact | undefined>): void {
    void this.enqueue(async () => {
      const fact = await job();
      if (fact) await this.input(fact);
    });
  }

  /** Runs `job` alone in the queue (call state taken over or dropped). */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.enqueue(job);
  }

  /** Carries out outputs that came from the model outside an input (a DN's resync). */
  async perform(outputs: readonly ModelOutput[]): Promise<void> {
    await this.enqueue(() => this.execute(outputs));
  }

  /**
   * Sends the DNs `select` names (those still registered) their current state, as after a
   * takeover: events on their way to their desktops may have been lost in a NATS failover.
   */
  resync(select: () => string[]): Promise<string[]> {
    return this.enqueue(async () => {
      const dns = select().filter((dn) => this.o.model.registrationsOf(dn).length > 0);
      await this.execute(dns.flatMap((dn) => this.o.model.resync(dn)));
      return dns;
    });
  }

  /** A SIP fact for the model, in the queue. */
  fact(fact: SipFact): void {
    void this.enqueue(() => this.input(fact));
  }

  /** Ends every call (BYE/CANCEL) and conference subscription; used when stopping. */
  async drain(): Promise<void> {
    await this.enqueue(async () => {
      this.o.b2bua.releaseAll(503);
      this.o.conferenceEvents.endAll();
    });
  }

  /** Runs `job` after every job queued before it; a failed job is logged and does not stop the queue. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    this.queuedAt.push(performance.now());
    const run = this.queue.then(async () => {
      const started = performance.now();
      try {
        return await job();
      } finally {
        this.jobAverageMs += JobTimeWeight * (performance.now() - started - this.jobAverageMs);
        this.queuedAt.shift();
      }
    });
    this.queue = run.then(
      () => undefined,
      (err: Error) => this.o.log.error({ err: err.stack }, 'signaling job failed'),
    );
    return run;
  }

  /** Hands the model one input and carries out its outputs; resolves with the replies among them. */
  private async input(input: ModelInput): Promise<TEvent[]> {
    const outputs = this.o.model.handle(input);
    if (this.o.callLog && this.o.log.isLevelEnabled('info')) for (const step of this.o.callLog.lines(outputs)) this.o.log.info(step, `call ${step.step}`);
    const replication = this.o.replication;
    if (!replication) return this.execute(outputs);
    if (!(await replication.persist(input, outputs))) {
      if (input.kind === 'tlib.request') throw new NotOwner();
      return [];
    }
    const replies = await this.execute(outputs);
    await replication.settle(input, outputs);
    return replies;
  }

  /**
   * Carries out outputs in order, a pipelined run of media commands at a time; resolves with the
   * T-Library replies met, also those of the inputs the outputs led to (a SIP fact).
   */
  private async execute(outputs: readonly ModelOutput[]): Promise<TEvent[]> {
    const replies: TEvent[] = [];
    const failures: MediaFailures = { failed: [], answered: false };
    for (let i = 0; i < outputs.length; ) {
      const run = pipelinedMediaRun(outputs, i);
      for (const met of await Promise.all(run.map((out) => this.carryOutOrReport(out, failures)))) replies.push(...met);
      i += run.length;
    }
    // The model is told what did not happen (a lost bridge, a failed leg), after this input.
    for (const failed of failures.failed) {
      const fact = failureFact(failed);
      if (fact) void this.enqueue(() => this.input(fact));
    }
    return replies;
  }

  private async carryOutOrReport(out: ModelOutput, failures: MediaFailures): Promise<readonly TEvent[]> {
    try {
      // A media change that did not happen is never reported as done: the answer becomes EventError, other events are held back.
      const undone = failures.failed.find(undoesRequest);
      if (undone && out.kind === 'tlib.event') {
        if (!out.origin || failures.answered) return NO_REPLIES;
        failures.answered = true;
        return [mediaErrorEvent(out.event, undone)];
      }
      return await this.carryOut(out);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, output: out.kind }, 'output failed');
      if (out.kind === 'media' && err instanceof MediaCommandError) failures.failed.push({ command: out.command, error: err });
      // A leg whose SIP or media set-up failed is reported to the model as failed or released.
      return out.kind === 'sip.connect' ? this.input(this.o.b2bua.connectFailed(out, err as Error)) : NO_REPLIES;
    }
  }

  /** Carries out one output; resolves with the replies it is or led to. */
  private async carryOut(out: ModelOutput): Promise<readonly TEvent[]> {
    switch (out.kind) {
      case 'tlib.event':
        this.o.publish(out.to, out.event, out.origin);
        return NO_REPLIES;
      case 'tlib.reply':
        return [out.event];
      case 'media':
        await this.o.media.send(out.command, out.colocateWith);
        return NO_REPLIES;
      case 'sip.connect':
      case 'sip.ringing':
      case 'sip.answer':
      case 'sip.reject':
      case 'sip.release':
      case 'sip.remoteAnswer':
      case 'sip.partiesReport': {
        this.o.onSipAction?.(out);
        const legId = 'legId' in out ? out.legId : undefined;
        const fact = await inSpan(tracer, out.kind, { attributes: legId ? { 'huddle.leg_id': legId } : {} }, async (span) => {
          const done = await this.o.b2bua.carryOut(out);
          const callId = span.isRecording() && legId ? this.o.b2bua.callIdOf?.(legId) : undefined;
          if (callId) span.setAttribute('sip.call_id', callId);
          return done;
        });
        return fact ? this.input(fact) : NO_REPLIES;
      }
      case 'conference.state':
        this.o.conferenceEvents.stateChanged(out);
        return NO_REPLIES;
      case 'report':
        this.o.log[out.level]({ code: out.code, connId: out.connId, legId: out.legId }, out.message);
        return NO_REPLIES;
      case 'cdr':
        this.o.cdr?.publish(out.record);
        return NO_REPLIES;
    }
  }
}

/** The media commands of one input that failed, and whether the requester has had its EventError. */
interface MediaFailures {
  failed: FailedMediaCommand[];
  answered: boolean;
}

/** EventError 58 (out of service) answering a request whose media change failed. */
function mediaErrorEvent(answer: TEvent, failed: FailedMediaCommand): TEvent {
  const about = { ReferenceID: answer.ReferenceID, ThisDN: answer.ThisDN, ConnID: answer.ConnID, Time: answer.Time };
  return errorEvent(ErrorCodes.OutOfService, `the media change on call ${answer.ConnID ?? ''} failed (${failed.command.op}: ${failed.error.code})`, about);
}

/**
 * The outputs from `start` that may be carried out together: consecutive media commands on one
 * existing bridge. The media-controller queues a bridge's commands in arrival order, and NATS
 * keeps one connection's order, so sending them without waiting for each reply keeps their
 * effect in order and saves a round trip each (ListenDisconnect: leg.flags then leg.music.play).
 * bridge.create (its owner is known only from its reply) and leg.move (it touches a second
 * bridge's queue) go alone; anything else (events, SIP) waits for the commands before it.
 */
export function pipelinedMediaRun(outputs: readonly ModelOutput[], start: number): ModelOutput[] {
  const first = outputs[start]!;
  const bridgeOf = (out: ModelOutput): string | undefined =>
    out.kind === 'media' && out.command.op !== 'bridge.create' && out.command.op !== 'leg.move' ? out.command.bridgeId : undefined;
  const bridge = bridgeOf(first);
  if (bridge === undefined) return [first];
  let end = start + 1;
  while (end < outputs.length && bridgeOf(outputs[end]!) === bridge) end++;
  return outputs.slice(start, end);
}
