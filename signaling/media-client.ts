/**
 * Signaling's side of the media contract: sends media commands over NATS to the media-controller
 * that owns each bridge, and turns media events into call-model inputs.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { MediaEvent, MediaReply, type MediaCommand, type MediaErrorCode } from '../common/nats/media-contract.js';
import { checker } from '../common/config/check.js';
import { decodeJson, encodeJson } from '../common/nats/codec.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import { injectTrace } from '../common/nats/trace.js';

const isMediaReply = checker(MediaReply);
const isMediaEvent = checker(MediaEvent);

export class MediaCommandError extends Error {
  constructor(
    readonly code: MediaErrorCode | 'Timeout' | 'NoMediaController',
    message: string,
    readonly command: MediaCommand['op'],
  ) {
    super(`${command}: ${code}: ${message}`);
    this.name = 'MediaCommandError';
  }
}

export interface MediaClientOptions {
  nc: NatsConnection;
  location: () => string;
  log: Logger;
  registry: Registry;
  timeoutMs?: number;
}

export class MediaClient {
  /** bridgeId -> media-controller instance that created it: later commands must reach the same one. */
  private readonly owners = new Map<string, string>();
  private eventSub: Subscription | undefined;
  private readonly commands: Counter<'op' | 'result'>;
  private readonly latency: Histogram<'op'>;

  constructor(private readonly opts: MediaClientOptions) {
    this.commands = new Counter({
      name: 'huddle_signaling_media_commands_total',
      help: 'Media commands sent by signaling, by op and result',
      labelNames: ['op', 'result'],
      registers: [opts.registry],
    });
    this.latency = new Histogram({
      name: 'huddle_signaling_media_command_duration_seconds',
      help: 'Time from a media command to its reply',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [opts.registry],
    });
  }

  /** Sends a command and resolves with the reply's SDP (if any); rejects with MediaCommandError. */
  async send(command: MediaCommand, colocateWith?: string): Promise<MediaReply & { ok: true }> {
    const location = this.opts.location();
    // A new bridge goes to any instance, unless legs must later move between it and an existing one.
    const owner = this.owners.get(command.op === 'bridge.create' ? (colocateWith ?? '') : command.bridgeId);
    if ((command.op !== 'bridge.create' || colocateWith !== undefined) && !owner) {
      this.commands.inc({ op: command.op, result: 'BridgeNotFound' });
      throw new MediaCommandError('BridgeNotFound', `no media-controller owns bridge ${command.bridgeId}`, command.op);
    }
    const subject = owner ? Subjects.mediaInstanceCommand(location, owner) : Subjects.mediaCommand(location);
    const end = this.latency.startTimer({ op: command.op });
    let raw: unknown;
    try {
      const msg = await this.opts.nc.request(subject, encodeJson(command), { timeout: this.opts.timeoutMs ?? 5000, headers: injectTrace() });
      raw = decodeJson(msg.data);
    } catch (err) {
      const text = (err as Error).message;
      const code = /no responders/i.test(text) ? 'NoMediaController' : 'Timeout';
      this.commands.inc({ op: command.op, result: code });
      throw new MediaCommandError(code, text, command.op);
    } finally {
      end();
    }
    if (!isMediaReply(raw)) {
      this.commands.inc({ op: command.op, result: 'BadReply' });
      throw new MediaCommandError('Internal', `malformed reply ${JSON.stringify(raw).slice(0, 200)}`, command.op);
    }
    const reply = raw;
    if (!reply.ok) {
      this.commands.inc({ op: command.op, result: reply.error.code });
      throw new MediaCommandError(reply.error.code, reply.error.message, command.op);
    }
    this.commands.inc({ op: command.op, result: 'ok' });
    if (command.op === 'bridge.create') this.owners.set(command.bridgeId, reply.instance);
    if (command.op === 'bridge.destroy') this.owners.delete(command.bridgeId);
    return reply;
  }

  /** Delivers every valid media event for this site; invalid ones are logged and dropped. */
  onEvents(handler: (event: MediaEvent) => void): void {
    this.eventSub = this.opts.nc.subscribe(Subjects.mediaEventAll(this.opts.location()), {
      queue: QueueGroups.signaling,
      callback: (err, msg) => {
        if (err) return;
        try {
          const event = decodeJson(msg.data);
          if (!isMediaEvent(event)) throw new Error(`does not match the media contract: ${isMediaEvent.problem()}`);
          handler(event);
        } catch (e) {
          this.opts.log.warn({ err: (e as Error).message, subject: msg.subject }, 'media event dropped');
        }
      },
    });
  }

  close(): void {
    this.eventSub?.unsubscribe();
  }
}
