/**
 * Signaling's side of the media contract: sends media commands over NATS to the media-controller
 * that owns each bridge, and turns media events into call-model inputs.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { MediaControllerAlive, MediaEvent, MediaRpc, type MediaCommand, type MediaErrorCode, type MediaReply } from '../common/nats/media-contract.js';
import { checker } from '../common/config/check.js';
import { subscribeChecked } from '../common/nats/codec.js';
import { RpcBadReply, RpcHandlerFailed, RpcNoResponders, call } from '../common/nats/rpc.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import type { SignalingMetrics } from './metrics.js';
import type { ModelInput } from './model/index.js';

const isMediaEvent = checker(MediaEvent);
const isMediaAlive = checker(MediaControllerAlive);

/** Failures meaning the media-controller that owns a bridge is gone (or too sick to answer): its bridges are lost. */
const InstanceLost: ReadonlySet<MediaCommandError['code']> = new Set(['NoMediaController', 'Timeout']);

export class MediaCommandError extends Error {
  constructor(
    readonly code: MediaErrorCode | 'Timeout' | 'NoMediaController',
    message: string,
    readonly command: MediaCommand['op'],
    options?: ErrorOptions,
  ) {
    super(`${command}: ${code}: ${message}`, options);
    this.name = 'MediaCommandError';
  }
}

export interface MediaClientOptions {
  nc: NatsConnection;
  location: () => string;
  log: Logger;
  metrics: Pick<SignalingMetrics, 'mediaCommands' | 'mediaCommandDuration'>;
  timeoutMs?: number;
  /** A media-controller silent this long (no liveness announcement) is lost; default 1500 ms. */
  lostAfterMs?: number;
}

/** Bridges that died with their media-controller: the calls on them must end. */
export type BridgesLost = (bridgeIds: string[], instance: string, reason: string) => void;

/** Bridges adopted in parallel from one lost instance. */
const AdoptAtOnce = 16;

/** Bridges another media-controller adopted from a lost one: their legs' flags and music must be applied again. */
export type BridgesRebuilt = (bridgeIds: string[], instance: string) => void;

interface InstanceSeen {
  lastSeen: number;
  startedAt: number;
  intervalMs: number;
  bridges: number;
  /** A probe is under way (late announcements are followed up with one every PROBE_EVERY_MS). */
  probing?: boolean;
  probedAt?: number;
  /** Since when probes found no responder for the instance (it may be reconnecting to another NATS server). */
  unreachableSince?: number;
}

/**
 * An instance NATS finds no responder for this long (three probes) is gone: a killed process. Shorter
 * gaps are a process reconnecting to another server of a NATS cluster, whose subscriptions are
 * away meanwhile.
 */
const UNREACHABLE_MS = 400;
const PROBE_EVERY_MS = 200;
/** An instance still connected but silent this long (paused, stalled) is lost too. */
const SILENT_LOST_MS = 4000;

/** A liveness tick (every 100 ms) this late means this process itself was not running. */
const STALL_MS = 600;

/** Weight of the newest round trip in the media latency average (admission control): about the last ten commands count. */
const LatencyWeight = 0.1;

/**
 * The average speaks for this long after the last reply: once new calls are refused few commands
 * go out, and an average frozen at its worst would refuse calls for ever.
 */
const LatencyMemoryMs = 1000;

export class MediaClient {
  /** bridgeId -> media-controller instance that created it: later commands must reach the same one. */
  private readonly owners = new Map<string, string>();
  private eventSub: Subscription | undefined;
  private aliveSub: Subscription | undefined;
  private aliveCheck: NodeJS.Timeout | undefined;
  /** media-controller instances heard from, by name. */
  private readonly instances = new Map<string, InstanceSeen>();
  /** Bridges lost for good (nobody adopted them), until the model destroys them. */
  private readonly lost = new Map<string, string>();
  /** Bridges being adopted: their commands wait for the outcome. */
  private readonly adopting = new Map<string, Promise<void>>();
  /** Instances given up for lost, with the bridges they may still hold should they speak again. */
  private readonly leftBehind = new Map<string, { startedAt: number; bridgeIds: string[] }>();
  private watchingSince = Date.now();
  private onLost: BridgesLost = () => undefined;
  private onRebuilt: BridgesRebuilt = () => undefined;
  /** Average round trip of recent commands (ms). */
  private latencyAverageMs = 0;
  private lastReplyAt = 0;
  /** Start times of the commands awaiting their reply, oldest first (a Map keeps insertion order). */
  private readonly inFlight = new Map<number, number>();
  private nextCommand = 0;

  constructor(private readonly opts: MediaClientOptions) {}

  private get lostAfterMs(): number {
    return this.opts.lostAfterMs ?? 1500;
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 3000;
  }

  /**
   * Follows the liveness of the site's media-controllers. The bridges of one that says it stopped,
   * restarted (a new startedAt) or went silent for lostAfterMs are adopted by another instance
   * (`onRebuilt`), or, when none can, lost (`onLost`).
   */
  watchInstances(onLost: BridgesLost, onRebuilt: BridgesRebuilt): void {
    this.onLost = onLost;
    this.onRebuilt = onRebuilt;
    this.watchingSince = Date.now();
    this.aliveSub = subscribeChecked(this.opts.nc, Subjects.mediaAliveAll(this.opts.location()), isMediaAlive, (alive) => this.heard(alive));
    let lastTick = Date.now();
    this.aliveCheck = setInterval(() => {
      const now = Date.now();
      const stalled = now - lastTick > STALL_MS;
      lastTick = now;
      // This process was paused (SIGSTOP, a long GC, a starved CPU): the silence it measured is its
      // own. Every instance gets a fresh period; meanwhile the replica learns whether it still owns
      // its calls (a paused replica's bridges are another's by now and must not be touched).
      if (stalled) {
        for (const seen of this.instances.values()) seen.lastSeen = now;
        return;
      }
      for (const [instance, seen] of this.instances) {
        const silent = now - seen.lastSeen;
        const unreachable = seen.unreachableSince !== undefined && now - seen.unreachableSince >= UNREACHABLE_MS;
        if (silent > Math.max(this.lostAfterMs, SILENT_LOST_MS) || (silent > this.lostAfterMs && seen.unreachableSince !== undefined) || unreachable) {
          this.instanceLost(instance, unreachable ? `no responder for ${now - seen.unreachableSince!} ms` : `silent for ${silent} ms`);
        } else if (silent > seen.intervalMs + 100 && !seen.probing && now - (seen.probedAt ?? 0) >= PROBE_EVERY_MS) this.probe(instance, seen);
      }
    }, 100);
    this.aliveCheck.unref();
  }

  private heard(alive: MediaControllerAlive): void {
    const seen = this.instances.get(alive.instance);
    if (alive.gone) {
      this.instanceLost(alive.instance, 'stopped');
      return;
    }
    if (seen && seen.startedAt !== alive.startedAt) this.instanceLost(alive.instance, 'restarted');
    this.destroyLeftBehind(alive);
    this.instances.set(alive.instance, { lastSeen: Date.now(), startedAt: alive.startedAt, intervalMs: alive.intervalMs, bridges: alive.bridges });
  }

  /**
   * One announcement late: a query to the instance tells a dead process (NATS has no responder for
   * its subject any more: lost now, not after lostAfterMs) from a slow one. Only an instance
   * holding bridges is worth it.
   */
  private probe(instance: string, seen: InstanceSeen): void {
    const bridgeId = [...this.owners].find(([, owner]) => owner === instance)?.[0];
    if (bridgeId === undefined) return;
    seen.probing = true;
    const subject = Subjects.mediaInstanceCommand(this.opts.location(), instance);
    const done = (reachable: boolean) => {
      seen.probing = false;
      seen.probedAt = Date.now();
      if (reachable) delete seen.unreachableSince;
      else seen.unreachableSince ??= Date.now();
    };
    call(this.opts.nc, subject, MediaRpc, { op: 'bridge.query', bridgeId }, { timeoutMs: PROBE_EVERY_MS }).then(
      () => done(true),
      (err: unknown) => done(!(err instanceof RpcNoResponders)),
    );
  }

  /**
   * An instance given up for lost speaks again (it was paused or cut off): the bridges it still
   * holds were adopted elsewhere or their calls released, so it destroys them (it deletes the
   * rtpengine calls only of bridges nobody adopted: see MediaController.destroyBridge).
   */
  private destroyLeftBehind(alive: MediaControllerAlive): void {
    const left = this.leftBehind.get(alive.instance);
    if (!left) return;
    this.leftBehind.delete(alive.instance);
    if (left.startedAt !== alive.startedAt) return;
    const subject = Subjects.mediaInstanceCommand(this.opts.location(), alive.instance);
    for (const bridgeId of left.bridgeIds) {
      void call(this.opts.nc, subject, MediaRpc, { op: 'bridge.destroy', bridgeId }, { timeoutMs: this.timeoutMs }).catch(() => undefined);
    }
  }

  private instanceLost(instance: string, reason: string): void {
    const seen = this.instances.get(instance);
    this.instances.delete(instance);
    const bridgeIds: string[] = [];
    for (const [bridgeId, owner] of this.owners) {
      if (owner !== instance) continue;
      this.owners.delete(bridgeId);
      bridgeIds.push(bridgeId);
    }
    this.opts.log.error({ instance, reason, bridges: bridgeIds.length }, 'media-controller lost');
    if (bridgeIds.length === 0) return;
    if (seen) this.leftBehind.set(instance, { startedAt: seen.startedAt, bridgeIds });
    this.adopt(bridgeIds, instance, seen?.startedAt, reason);
  }

  /**
   * Asks another media-controller to adopt the bridges: a live one, the least loaded first (never
   * through the queue: the lost instance may still be subscribed to it, paused), all bridges on
   * the same instance, since legs move between bridges of one instance.
   */
  private adopt(bridgeIds: string[], from: string, fromStartedAt: number | undefined, reason: string): void {
    const location = this.opts.location();
    const candidates = (): string[] =>
      [...this.instances]
        .filter(([name, seen]) => name !== from || seen.startedAt !== fromStartedAt)
        .sort(([, x], [, y]) => x.bridges - y.bridges)
        .map(([name]) => name);
    const adoptOn = async (subject: string, bridgeId: string): Promise<string | undefined> => {
      try {
        // Adopting re-offers every leg to rtpengine: slower than a command, more so for hundreds of bridges at once.
        const reply = await call(this.opts.nc, subject, MediaRpc, { op: 'bridge.adopt', bridgeId }, { timeoutMs: 3 * this.timeoutMs });
        if (reply.ok) {
          this.owners.set(bridgeId, reply.instance);
          return reply.instance;
        }
        this.opts.log.error({ bridgeId, from, err: reply.error.message }, 'bridge not adopted');
      } catch (err) {
        this.opts.log.error({ bridgeId, from, err: (err as Error).message }, 'bridge not adopted');
      }
      return undefined;
    };
    const done = (async () => {
      // A restarted instance (same name) is among the candidates once its announcement is recorded.
      await Promise.resolve();
      const [first, ...rest] = bridgeIds;
      let owner: string | undefined;
      for (const candidate of candidates().slice(0, 3)) {
        owner = await adoptOn(Subjects.mediaInstanceCommand(location, candidate), first!);
        if (owner !== undefined) break;
      }
      const others: (string | undefined)[] = [];
      // A few at a time: the adopter answers each within its time, however many bridges it takes.
      for (let i = 0; i < rest.length; i += AdoptAtOnce) {
        const batch = rest.slice(i, i + AdoptAtOnce);
        others.push(...(owner === undefined ? batch.map(() => undefined) : await Promise.all(batch.map((id) => adoptOn(Subjects.mediaInstanceCommand(location, owner), id)))));
      }
      const adopted = bridgeIds.filter((_, i) => (i === 0 ? owner : others[i - 1]) !== undefined);
      const lost = bridgeIds.filter((id) => !adopted.includes(id));
      for (const id of lost) this.lost.set(id, from);
      if (adopted.length > 0 && owner !== undefined) {
        this.opts.log.warn({ from, to: owner, bridges: adopted.length }, 'bridges adopted');
        this.onRebuilt(adopted, owner);
      }
      if (lost.length > 0) this.onLost(lost, from, reason);
    })();
    for (const bridgeId of bridgeIds) this.adopting.set(bridgeId, done);
    void done.finally(() => {
      for (const bridgeId of bridgeIds) if (this.adopting.get(bridgeId) === done) this.adopting.delete(bridgeId);
    });
  }

  /**
   * How long media commands take now (ms): the recent average, or the age of the oldest command
   * still unanswered when that is longer (a media-controller that stopped answering shows at once).
   */
  latencyMs(): number {
    const now = performance.now();
    const average = now - this.lastReplyAt < LatencyMemoryMs ? this.latencyAverageMs : 0;
    const oldest = this.inFlight.values().next();
    return oldest.done ? average : Math.max(average, now - oldest.value);
  }

  /** Whether a new call may get media: some media-controller is alive (or signaling has only just started listening). */
  available(): boolean {
    return this.instances.size > 0 || Date.now() - this.watchingSince < this.lostAfterMs;
  }

  /**
   * Sends a command and resolves with the reply's SDP (if any); rejects with MediaCommandError. A
   * command its bridge's instance cannot take because it died is sent again once another instance
   * has adopted the bridge (it never ran: the requester gets the outcome on the rebuilt bridge).
   */
  async send(command: MediaCommand, colocateWith?: string, again = false): Promise<MediaReply & { ok: true }> {
    const location = this.opts.location();
    const about = command.op === 'bridge.create' ? (colocateWith ?? '') : command.bridgeId;
    // A bridge being adopted takes its commands once it has its new owner (or is lost).
    await this.adopting.get(about);
    const lostWith = this.lost.get(about);
    if (lostWith !== undefined) {
      // Nothing is left to destroy; anything else cannot be done on a bridge that is gone.
      if (command.op === 'bridge.destroy') {
        this.lost.delete(command.bridgeId);
        return { ok: true, instance: lostWith };
      }
      this.opts.metrics.mediaCommands.inc({ op: command.op, result: 'NoMediaController' });
      throw new MediaCommandError('NoMediaController', `bridge lost with media-controller ${lostWith}`, command.op);
    }
    // A new bridge goes to any instance, unless legs must later move between it and an existing one.
    const owner = this.owners.get(command.op === 'bridge.create' ? (colocateWith ?? '') : command.bridgeId);
    if ((command.op !== 'bridge.create' || colocateWith !== undefined) && !owner) {
      this.opts.metrics.mediaCommands.inc({ op: command.op, result: 'BridgeNotFound' });
      throw new MediaCommandError('BridgeNotFound', `no media-controller owns bridge ${command.bridgeId}`, command.op);
    }
    const subject = owner ? Subjects.mediaInstanceCommand(location, owner) : Subjects.mediaCommand(location);
    const end = this.opts.metrics.mediaCommandDuration.startTimer({ op: command.op });
    const id = this.nextCommand++;
    const sentAt = performance.now();
    this.inFlight.set(id, sentAt);
    let reply: MediaReply;
    try {
      reply = await call(this.opts.nc, subject, MediaRpc, command, { timeoutMs: this.timeoutMs });
      const now = performance.now();
      const took = now - sentAt;
      this.latencyAverageMs = now - this.lastReplyAt < LatencyMemoryMs ? this.latencyAverageMs + LatencyWeight * (took - this.latencyAverageMs) : took;
      this.lastReplyAt = now;
    } catch (err) {
      const failure = commandFailure(err as Error);
      this.opts.metrics.mediaCommands.inc({ op: command.op, result: failure.result });
      // No reply from an instance that still announces itself: the request or its reply was lost
      // (a NATS server failing over), not the instance. A command that may run twice is sent again.
      if (owner && failure.code === 'Timeout' && this.heardWithin(owner, this.lostAfterMs)) {
        if (!again && Repeatable.has(command.op)) return this.send(command, colocateWith, true);
      } else if (owner && InstanceLost.has(failure.code)) {
        this.instanceLost(owner, `${command.op}: ${failure.message}`);
        if (!again) return this.send(command, colocateWith, true);
      }
      throw new MediaCommandError(failure.code, failure.message, command.op, { cause: err });
    } finally {
      this.inFlight.delete(id);
      end();
    }
    if (!reply.ok) {
      this.opts.metrics.mediaCommands.inc({ op: command.op, result: reply.error.code });
      throw new MediaCommandError(reply.error.code, reply.error.message, command.op);
    }
    this.opts.metrics.mediaCommands.inc({ op: command.op, result: 'ok' });
    if (command.op === 'bridge.create') this.owners.set(command.bridgeId, reply.instance);
    if (command.op === 'bridge.destroy') this.owners.delete(command.bridgeId);
    return reply;
  }

  private heardWithin(instance: string, ms: number): boolean {
    const seen = this.instances.get(instance);
    return seen !== undefined && Date.now() - seen.lastSeen <= ms;
  }

  /** The media-controller instance that owns a bridge (kept with the call's state, for whoever carries it on). */
  ownerOf(bridgeId: string): string | undefined {
    return this.owners.get(bridgeId);
  }

  /** Takes over a bridge's owner (restored call), or forgets it (a call this process no longer owns). */
  setOwner(bridgeId: string, instance: string | undefined): void {
    if (instance !== undefined) {
      this.owners.set(bridgeId, instance);
      return;
    }
    // Another replica carries the call now: nothing here may adopt, lose or destroy its bridge.
    this.owners.delete(bridgeId);
    this.lost.delete(bridgeId);
    for (const left of this.leftBehind.values()) left.bridgeIds = left.bridgeIds.filter((id) => id !== bridgeId);
  }

  /** Delivers every valid media event for this site; invalid ones are logged and dropped. */
  onEvents(handler: (event: MediaEvent) => void): void {
    this.eventSub = subscribeChecked(this.opts.nc, Subjects.mediaEventAll(this.opts.location()), isMediaEvent, handler, {
      queue: QueueGroups.signaling,
      onBad: (err, subject) => this.opts.log.warn({ err: err.message, subject }, 'media event dropped'),
    });
  }

  /** Stops taking media events; those already received are still handled. */
  async drain(): Promise<void> {
    clearInterval(this.aliveCheck);
    this.aliveSub?.unsubscribe();
    await this.eventSub?.drain();
  }
}

/** Commands whose second run changes nothing more than the first (flags and music are set, not toggled). */
const Repeatable = new Set<MediaCommand['op']>(['leg.flags', 'leg.music.play', 'leg.music.stop', 'bridge.query']);

/** How a failed round trip reads for the call model (code) and in the metrics (result). */
function commandFailure(err: Error): { code: MediaCommandError['code']; result: string; message: string } {
  if (err instanceof RpcNoResponders) return { code: 'NoMediaController', result: 'NoMediaController', message: err.message };
  if (err instanceof RpcBadReply) return { code: 'Internal', result: 'BadReply', message: `malformed reply ${JSON.stringify(err.body ?? err.problem).slice(0, 200)}` };
  if (err instanceof RpcHandlerFailed) return { code: 'Internal', result: 'Internal', message: err.reason };
  // RpcTimeout, and a request that could not go out (connection closed or draining): no answer in time.
  return { code: 'Timeout', result: 'Timeout', message: err.message };
}

/** A media command the call model sent that did not happen. */
export interface FailedMediaCommand {
  command: MediaCommand;
  error: MediaCommandError;
}

/**
 * Whether a failed command leaves the requester's change undone (it must then get EventError, not
 * success): everything but removing what is going away, and music that could not be read (the
 * party stays isolated, the music-error event tells why).
 */
export function undoesRequest(failed: FailedMediaCommand): boolean {
  const op = failed.command.op;
  return op !== 'leg.remove' && op !== 'bridge.destroy' && failed.error.code !== 'MusicFileUnreadable';
}

/**
 * What the call model must be told after a failed command so that it stops believing in media
 * that is not there: the bridge is lost, or the leg failed. A lost instance is reported by
 * MediaClient itself (BridgesLost), and a bridge never created needs nothing: its legs fail to set up.
 */
export function failureFact(failed: FailedMediaCommand, instance = 'unknown'): ModelInput | undefined {
  const { command, error } = failed;
  if (!undoesRequest(failed) || InstanceLost.has(error.code) || command.op === 'bridge.create') return undefined;
  if (error.code === 'BridgeNotFound' || !('legId' in command)) return { kind: 'media.bridgeLost', bridgeId: command.bridgeId, instance, reason: error.message };
  return { kind: 'media.event', event: { kind: 'leg-failed', instance, bridgeId: command.bridgeId, legId: command.legId, reason: error.message } };
}
