/**
 * One media-controller under test: real nats-server, real rtpengine(s), the configuration from
 * config/local.yaml in the config bucket, commands and events over NATS exactly as signaling
 * sends and receives them.
 */
import path from 'node:path';
import { Registry } from 'prom-client';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { loadConfigFile } from '../../common/config/load.js';
import { decodeJson } from '../../common/nats/codec.js';
import { LiveConfig, openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import { connectNats } from '../../common/nats/connect.js';
import { MediaRpc, type MediaCommand, type MediaEvent, type MediaReply } from '../../common/nats/media-contract.js';
import { call } from '../../common/nats/rpc.js';
import { Subjects } from '../../common/nats/subjects.js';
import type { ReadinessCheck } from '../../common/process/http.js';
import { createLogger } from '../../common/process/logger.js';
import { createMediaController, type RunningMediaController } from '../../media-controller/component.js';
import { startTestNats, startTestRtpengine, type TestNats, type TestRtpengine } from '../support/infra.js';
import { TonePhone } from '../support/tone-phone.js';

export const CONFIG_FILE = path.resolve(import.meta.dirname, '../../config/local.yaml');

export class MediaHarness {
  readonly events: MediaEvent[] = [];
  readonly phones: TonePhone[] = [];
  instance = 'media-test-1';
  private eventSub: Subscription | undefined;

  private constructor(
    readonly nats: TestNats,
    readonly rtpengines: TestRtpengine[],
    readonly nc: NatsConnection,
    readonly live: LiveConfig,
    readonly registry: Registry,
    readonly media: RunningMediaController,
    readonly location: string,
    readonly musicRoot: string,
    /** Readiness checks the component registered. */
    readonly readiness: Map<string, ReadinessCheck>,
  ) {}

  static async start(opts: { rtpengines?: number; pingIntervalMs?: number; failAfter?: number } = {}): Promise<MediaHarness> {
    const nats = await startTestNats();
    const rtpengines: TestRtpengine[] = [];
    try {
      for (let i = 0; i < (opts.rtpengines ?? 1); i++) rtpengines.push(await startTestRtpengine(100));
      const config = loadConfigFile(CONFIG_FILE);
      const nc = await connectNats(nats.url, 'media-test');
      const kv = await openConfigBucket(nc);
      await publishConfig(kv, config.cluster, config.dns);
      const live = await LiveConfig.watch(kv, config.cluster.metadata.name);
      const registry = new Registry();
      const log = createLogger('media-test', process.env.TEST_LOG_LEVEL ?? 'silent');
      const instance = 'media-test-1';
      const readiness = new Map<string, ReadinessCheck>();
      const media = await createMediaController(
        { config: live, musicRoot: config.musicRoot, nc, registry, log, addReadiness: (name, check) => readiness.set(name, check), rtpengines: rtpengines.map((r) => r.ng), instance },
        { bridgeHost: '127.0.0.1', pingIntervalMs: opts.pingIntervalMs ?? 200, commandTimeoutMs: 1000, failAfter: opts.failAfter ?? 2 },
      );
      const h = new MediaHarness(nats, rtpengines, nc, live, registry, media, config.cluster.spec.location, config.musicRoot, readiness);
      h.eventSub = nc.subscribe(Subjects.mediaEventAll(h.location), {
        callback: (err, msg) => {
          if (!err) h.events.push(decodeJson(msg.data) as MediaEvent);
        },
      });
      await nc.flush();
      return h;
    } catch (err) {
      for (const r of rtpengines) await r.stop();
      await nats.stop();
      throw err;
    }
  }

  /** Sends a command as signaling does: bridge.create to the queue subject, the rest to the owning instance. */
  async send(cmd: MediaCommand): Promise<MediaReply> {
    const subject = cmd.op === 'bridge.create' ? Subjects.mediaCommand(this.location) : Subjects.mediaInstanceCommand(this.location, this.instance);
    return call(this.nc, subject, MediaRpc, cmd, { timeoutMs: 10_000 });
  }

  /** Like send, but fails unless the reply is ok. */
  async ok(cmd: MediaCommand): Promise<Extract<MediaReply, { ok: true }>> {
    const reply = await this.send(cmd);
    if (!reply.ok) throw new Error(`${cmd.op} failed: ${reply.error.code}: ${reply.error.message}`);
    return reply;
  }

  async phone(frequency: number | null): Promise<TonePhone> {
    const p = await TonePhone.start({ frequency });
    this.phones.push(p);
    return p;
  }

  /**
   * The phone hangs up: it stops sending. Tests must do this once a phone's leg is gone: rtpengine
   * reuses ports, and a phone still sending to an old port would inject its tone into a new call.
   */
  async hangUp(...phones: TonePhone[]): Promise<void> {
    for (const p of phones) await p.close();
  }

  /** The phone offers (inbound call): leg.offer. */
  async joinByOffer(bridgeId: string, legId: string, phone: TonePhone): Promise<void> {
    const reply = await this.ok({ op: 'leg.offer', bridgeId, legId, sdp: phone.offer() });
    phone.accept(reply.sdp ?? '');
  }

  /** We offer to the phone (outbound call): leg.create then leg.answer. */
  async joinByCreate(bridgeId: string, legId: string, phone: TonePhone): Promise<void> {
    const reply = await this.ok({ op: 'leg.create', bridgeId, legId });
    await this.ok({ op: 'leg.answer', bridgeId, legId, sdp: phone.answer(reply.sdp ?? '') });
  }

  async waitForEvent(predicate: (e: MediaEvent) => boolean, timeoutMs: number): Promise<MediaEvent> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.events.find(predicate);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no matching media event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`);
  }

  async stop(): Promise<void> {
    for (const p of this.phones) await p.close();
    await this.media.stop();
    this.eventSub?.unsubscribe();
    this.live.stop();
    await this.nc.drain();
    for (const r of this.rtpengines) await r.stop();
    await this.nats.stop();
  }
}
