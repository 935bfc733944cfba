/**
 * media-controller as a component: rtpengine pool + TypeScript mixer + music library, driven by
 * the media contract on NATS.
 */
import { bucketReplicas, openBucket } from '../common/nats/buckets.js';
import { encodeJson, subscribeChecked } from '../common/nats/codec.js';
import { checker } from '../common/config/check.js';
import { MediaControllerAlive } from '../common/nats/media-contract.js';
import { MediaKeys, Subjects } from '../common/nats/subjects.js';
import type { ComponentContext, ComponentFactory } from '../common/process/component.js';
import type { Component } from '../common/process/lifecycle.js';
import { kvBridgeStore } from './bridge-store.js';
import { MediaController } from './controller.js';
import { registerMediaMetrics, type MediaView } from './metrics.js';
import { TsMixer } from './mixer/ts-mixer.js';
import { MusicLibrary } from './music.js';
import { MediaApi, publishMediaEvent } from './nats-api.js';
import { RtpenginePool } from './rtpengine.js';
import { traceAs } from '../common/process/tracing.js';

export interface MediaComponentOptions {
  /** Address the bridge's RTP sockets bind to; rtpengine sends there. */
  bridgeHost: string;
  pingIntervalMs?: number;
  commandTimeoutMs?: number;
  failAfter?: number;
  /** How often the instance tells signaling it is alive (signaling gives up after three silent intervals). */
  aliveIntervalMs?: number;
  /** How long a stopping instance waits for other instances to adopt its bridges (default 3000 ms). */
  handOverTimeoutMs?: number;
}

export interface RunningMediaController extends Component {
  readonly controller: MediaController;
  readonly pool: RtpenginePool;
}

export async function createMediaController(ctx: ComponentContext, options: MediaComponentOptions): Promise<RunningMediaController> {
  const { log, nc, instance } = ctx;
  traceAs(nc, 'media-controller');
  const location = ctx.config.cluster.spec.location;
  const metrics = registerMediaMetrics(ctx.registry, () => view);
  const pool = new RtpenginePool({
    addresses: ctx.rtpengines,
    log,
    ...(options.pingIntervalMs !== undefined ? { pingIntervalMs: options.pingIntervalMs } : {}),
    ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
    ...(options.failAfter !== undefined ? { failAfter: options.failAfter } : {}),
  });
  const bridges = await openBucket(nc, MediaKeys.bucket, { history: 1, replicas: bucketReplicas(ctx.config.cluster.spec), log });
  const mixer = new TsMixer({ host: options.bridgeHost, onTick: (ms) => metrics.observeTick(ms) });
  const controller = new MediaController({
    instance,
    pool,
    mixer,
    music: new MusicLibrary(),
    publish: (event) => publishMediaEvent(nc, location, event),
    store: kvBridgeStore(bridges, location),
    log,
  });
  const view: MediaView = {
    legs: () => controller.legCount,
    bridges: () => controller.bridgeCount,
    musicSessions: () => controller.musicSessions(),
    mixerTotals: () => mixer.totals,
    rtpengines: () => pool.addresses.map((ng) => ({ ng, health: pool.health(ng), legs: pool.legCount(ng) })),
  };
  await pool.start();
  ctx.addReadiness('rtpengine', () => pool.addresses.some((ng) => pool.health(ng) === 'up') || `no rtpengine answering (${pool.addresses.join(', ') || 'none configured'})`);
  const api = new MediaApi({ nc, location, instance, controller, log, onCommand: (op, result) => metrics.command(op, result) });
  const startedAt = Date.now();
  const aliveIntervalMs = options.aliveIntervalMs ?? 500;
  const announce = (gone: boolean): void => {
    const message: MediaControllerAlive = { instance, startedAt, intervalMs: aliveIntervalMs, bridges: controller.bridgeCount, ...(gone ? { gone } : {}) };
    try {
      nc.publish(Subjects.mediaAlive(location, instance), encodeJson(message));
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'liveness not published');
    }
  };
  announce(false);
  const alive = setInterval(() => announce(false), aliveIntervalMs);
  // The site's other instances, until when each counts as alive (three of its intervals): a lone
  // instance that stops has nobody to hand its bridges to, and destroys them at once.
  const others = new Map<string, number>();
  const othersSub = subscribeChecked(nc, Subjects.mediaAliveAll(location), checker(MediaControllerAlive), (heard) => {
    if (heard.instance === instance) return;
    if (heard.gone) others.delete(heard.instance);
    else others.set(heard.instance, Date.now() + 3 * heard.intervalMs);
  });
  const anotherAlive = () => [...others.values()].some((aliveUntil) => aliveUntil > Date.now());
  log.info({ location, instance, rtpengines: ctx.rtpengines, bridgeHost: options.bridgeHost }, 'media-controller started');
  return {
    name: 'media-controller',
    controller,
    pool,
    stop: async () => {
      // New bridges go to the other instances; the calls being set up on ours finish first.
      await api.stopTakingBridges();
      const deadline = Date.now() + SetUpWaitMs;
      while (!controller.settled(SetUpQuietMs) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      clearInterval(alive);
      // No command reaches this instance any more; `gone` has signaling move its bridges to another
      // instance at once (or release their calls when none can take them). Audio flows through ours
      // until rtpengine points each leg at the adopter.
      await api.drain();
      if (!(await controller.stored(StoreSettleMs))) log.warn('bridge writes still waiting for JetStream; an adopter may read a bridge as it was before them');
      announce(true);
      const { adopted, destroyed } = await controller.handOver(anotherAlive() ? (options.handOverTimeoutMs ?? 3000) : 0);
      othersSub.unsubscribe();
      log.info({ adopted, destroyed }, 'bridges handed over');
      await mixer.stop();
      pool.stop();
    },
  };
}

/** How long a stopping instance waits for its bridges' last writes before it says it is gone. */
const StoreSettleMs = 1500;
/** How long a stopping instance lets the calls being set up on its bridges finish, at most. */
const SetUpWaitMs = 3000;
/** A bridge without a command for this long is no longer being set up. */
const SetUpQuietMs = 500;

export const startMediaController: ComponentFactory = (ctx) =>
  createMediaController(ctx, { bridgeHost: process.env.HUDDLE_MEDIA_BRIDGE_HOST ?? process.env.POD_IP ?? '127.0.0.1' });
