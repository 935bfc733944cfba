/**
 * The media contract on NATS: bridge.create on the queue subject (any media-controller may take
 * a new bridge), every op on this instance's own subject (a bridge lives where it was created),
 * replies as MediaReply, events on media.evt.<kind>.
 */
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { checker } from '../common/config/check.js';
import { decodeJson, encodeJson } from '../common/nats/codec.js';
import { MediaCommand, type MediaEvent, type MediaReply } from '../common/nats/media-contract.js';
import { QueueGroups, Subjects } from '../common/nats/subjects.js';
import { MediaFailure, type MediaController } from './controller.js';

const checkCommand = checker(MediaCommand);

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
  private readonly subs: Subscription[] = [];

  constructor(private readonly opts: MediaApiOptions) {
    const { nc, location, instance } = opts;
    this.subs.push(nc.subscribe(Subjects.mediaCommand(location), { queue: QueueGroups.mediaController, callback: (err, msg) => {
          if (!err) void this.onMessage(msg, true);
        },
      }));
    this.subs.push(nc.subscribe(Subjects.mediaInstanceCommand(location, instance), { callback: (err, msg) => {
          if (!err) void this.onMessage(msg, false);
        },
      }));
  }

  private async onMessage(msg: Msg, viaQueue: boolean): Promise<void> {
    const { instance, controller, log } = this.opts;
    let op = 'invalid';
    let reply: MediaReply;
    try {
      let body: unknown;
      try {
        body = decodeJson(msg.data);
      } catch (err) {
        throw new MediaFailure('BadCommand', (err as Error).message);
      }
      if (!checkCommand(body)) {
        const e = checkCommand.error();
        throw new MediaFailure('BadCommand', `not a media command: ${e ? `${e.instancePath || '(command)'} ${e.message ?? ''}` : 'invalid'}`);
      }
      op = body.op;
      if (viaQueue && body.op !== 'bridge.create') {
        throw new MediaFailure('BadCommand', `${body.op} goes to the instance that owns the bridge (${Subjects.mediaInstanceCommand(this.opts.location, '<instance>')})`);
      }
      const result = await controller.handle(body);
      reply = { ok: true, instance, ...result };
    } catch (err) {
      const failure = err instanceof MediaFailure ? err : new MediaFailure('Internal', (err as Error).message);
      if (failure.code === 'Internal') log.error({ op, err: (err as Error).stack }, 'media command failed');
      else log.info({ op, code: failure.code, err: failure.message }, 'media command refused');
      reply = { ok: false, instance, error: { code: failure.code, message: failure.message } };
    }
    this.opts.onCommand?.(op, reply.ok ? 'ok' : reply.error.code);
    if (msg.reply) msg.respond(encodeJson(reply));
  }

  /** Stops taking commands (in-flight ones still answer). */
  async close(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.drain()));
  }
}
