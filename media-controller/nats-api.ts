/**
 * The media contract on NATS: bridge.create on the queue subject (any media-controller may take
 * a new bridge), every op on this instance's own subject (a bridge lives where it was created),
 * replies as MediaReply, events on media.evt.<kind>.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { trace, type Attributes } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { encodeJson } from '../common/nats/codec.js';
import { MediaRpc, type MediaCommand, type MediaEvent, type MediaReply } from '../common/nats/media-contract.js';
import { serve, type RpcBadRequest, type Served } from '../common/nats/rpc.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import { inSpan } from '../common/process/tracing.js';
import { MediaFailure, type MediaController } from './controller.js';

const tracer = trace.getTracer('huddle.media-controller');

function commandAttributes(command: MediaCommand): Attributes {
  const c = command as { op: string; bridgeId?: string; legId?: string };
  return { 'media.op': c.op, ...(c.bridgeId ? { 'media.bridge_id': c.bridgeId } : {}), ...(c.legId ? { 'media.leg_id': c.legId } : {}) };
}

export interface MediaApiOptions {
  nc: NatsConnection;
  location: string;
  instance: string;
  controller: MediaController;
  log: Logger;
  onCommand?: (op: string, result: string) => void;
}

export function publishMediaEvent(nc: NatsConnection, location: string, event: MediaEvent): void {
  nc.publish(Subjects.mediaEvent(location, event.kind), encodeJson(event));
}

export class MediaApi {
  private readonly served: Served[];

  constructor(private readonly opts: MediaApiOptions) {
    const { nc, location, instance, log } = opts;
    const options = {
      contract: MediaRpc,
      badRequest: (error: RpcBadRequest) => this.refuse(error),
      onError: (err: Error) => log.error({ err: err.stack }, 'media command not answered'),
    };
    this.served = [
      serve(nc, Subjects.mediaCommand(location), { ...options, queue: QueueGroups.mediaController }, (command) => this.execute(command, true)),
      serve(nc, Subjects.mediaInstanceCommand(location, instance), options, (command) => this.execute(command, false)),
    ];
  }

  /** Stops taking new bridges (the queue subject): they go to the other instances. */
  async stopTakingBridges(): Promise<void> {
    await this.served[0]?.drain();
  }

  /** Stops taking commands and resolves once those taken are answered. */
  async drain(): Promise<void> {
    await Promise.all(this.served.map((s) => s.drain()));
  }

  private async execute(command: MediaCommand, viaQueue: boolean): Promise<MediaReply> {
    const { instance, controller } = this.opts;
    try {
      if (viaQueue && command.op !== 'bridge.create' && command.op !== 'bridge.adopt') {
        throw new MediaFailure('BadCommand', `${command.op} goes to the instance that owns the bridge (${Subjects.mediaInstanceCommand(this.opts.location, '<instance>')})`);
      }
      const result = await inSpan(tracer, `media ${command.op}`, { attributes: commandAttributes(command) }, () => controller.handle(command));
      return this.answered(command.op, { ok: true, instance, ...result });
    } catch (err) {
      const failure = err instanceof MediaFailure ? err : new MediaFailure('Internal', (err as Error).message);
      if (failure.code === 'Internal') this.opts.log.error({ op: command.op, err: (err as Error).stack }, 'media command failed');
      else this.opts.log.info({ op: command.op, code: failure.code, err: failure.message }, 'media command refused');
      return this.answered(command.op, { ok: false, instance, error: { code: failure.code, message: failure.message } });
    }
  }

  /** Not JSON, or not a media command: BadCommand. */
  private refuse(error: RpcBadRequest): MediaReply {
    const e = error.schemaError;
    const message = error.body === undefined ? error.problem : `not a media command: ${e ? `${e.instancePath || '(command)'} ${e.message ?? ''}` : 'invalid'}`;
    this.opts.log.info({ op: 'invalid', code: 'BadCommand', err: message }, 'media command refused');
    return this.answered('invalid', { ok: false, instance: this.opts.instance, error: { code: 'BadCommand', message } });
  }

  private answered(op: string, reply: MediaReply): MediaReply {
    // Inside the serving span: the command's result.
    const span = trace.getActiveSpan();
    if (span?.isRecording()) span.setAttribute('media.result', reply.ok ? 'ok' : reply.error.code);
    this.opts.onCommand?.(op, reply.ok ? 'ok' : reply.error.code);
    return reply;
  }
}
