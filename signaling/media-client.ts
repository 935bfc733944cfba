/**
 * Signaling's side of the media contract: sends media commands over NATS to the media-controller
 * that owns each bridge, and turns media events into call-model inputs.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { MediaEvent, MediaRpc, type MediaCommand, type MediaErrorCode, type MediaReply } from '../common/nats/media-contract.js';
import { checker } from '../common/config/check.js';
import { decodeChecked } from '../common/nats/codec.js';
import { RpcBadReply, RpcHandlerFailed, RpcNoResponders, call } from '../common/nats/rpc.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import type { SignalingMetrics } from './metrics.js';

const isMediaEvent = checker(MediaEvent);

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
}

export class MediaClient {
  /** bridgeId -> media-controller instance that created it: later commands must reach the same one. */
  private readonly owners = new Map<string, string>();
  private eventSub: Subscription | undefined;

  constructor(private readonly opts: MediaClientOptions) {}

  /** Sends a command and resolves with the reply's SDP (if any); rejects with MediaCommandError. */
  async send(command: MediaCommand, colocateWith?: string): Promise<MediaReply & { ok: true }> {
    const location = this.opts.location();
    // A new bridge goes to any instance, unless legs must later move between it and an existing one.
    const owner = this.owners.get(command.op === 'bridge.create' ? (colocateWith ?? '') : command.bridgeId);
    if ((command.op !== 'bridge.create' || colocateWith !== undefined) && !owner) {
      this.opts.metrics.mediaCommands.inc({ op: command.op, result: 'BridgeNotFound' });
      throw new MediaCommandError('BridgeNotFound', `no media-controller owns bridge ${command.bridgeId}`, command.op);
    }
    const subject = owner ? Subjects.mediaInstanceCommand(location, owner) : Subjects.mediaCommand(location);
    const end = this.opts.metrics.mediaCommandDuration.startTimer({ op: command.op });
    let reply: MediaReply;
    try {
      reply = await call(this.opts.nc, subject, MediaRpc, command, { timeoutMs: this.opts.timeoutMs ?? 5000 });
    } catch (err) {
      const failure = commandFailure(err as Error);
      this.opts.metrics.mediaCommands.inc({ op: command.op, result: failure.result });
      throw new MediaCommandError(failure.code, failure.message, command.op, { cause: err });
    } finally {
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

  /** The media-controller instance that owns a bridge (kept with the call's state, for whoever carries it on). */
  ownerOf(bridgeId: string): string | undefined {
    return this.owners.get(bridgeId);
  }

  /** Takes over a bridge's owner (restored call), or forgets it (a call this process no longer owns). */
  adopt(bridgeId: string, instance: string | undefined): void {
    if (instance === undefined) this.owners.delete(bridgeId);
    else this.owners.set(bridgeId, instance);
  }

  /** Delivers every valid media event for this site; invalid ones are logged and dropped. */
  onEvents(handler: (event: MediaEvent) => void): void {
    this.eventSub = this.opts.nc.subscribe(Subjects.mediaEventAll(this.opts.location()), {
      queue: QueueGroups.signaling,
      callback: (err, msg) => {
        if (err) return;
        try {
          handler(decodeChecked(msg.data, isMediaEvent));
        } catch (e) {
          this.opts.log.warn({ err: (e as Error).message, subject: msg.subject }, 'media event dropped');
        }
      },
    });
  }

  /** Stops taking media events; those already received are still handled. */
  async drain(): Promise<void> {
    await this.eventSub?.drain();
  }
}

/** How a failed round trip reads for the call model (code) and in the metrics (result). */
function commandFailure(err: Error): { code: MediaCommandError['code']; result: string; message: string } {
  if (err instanceof RpcNoResponders) return { code: 'NoMediaController', result: 'NoMediaController', message: err.message };
  if (err instanceof RpcBadReply) return { code: 'Internal', result: 'BadReply', message: `malformed reply ${JSON.stringify(err.body ?? err.problem).slice(0, 200)}` };
  if (err instanceof RpcHandlerFailed) return { code: 'Internal', result: 'Internal', message: err.reason };
  // RpcTimeout, and a request that could not go out (connection closed or draining): no answer in time.
  return { code: 'Timeout', result: 'Timeout', message: err.message };
}
