/**
 * The media controller's state and command handling, independent of NATS: bridges, their legs,
 * and for each leg the rtpengine call that anchors it. A leg is one rtpengine call with two sides:
 * the phone side (the SDP the phone offered or answered) and the bridge side (our RTP socket).
 * Commands on one bridge run one at a time, in arrival order.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { LegState, MediaCommand, MediaErrorCode, MediaEvent } from '../common/nats/media-contract.js';
import type { BridgeParty, MediaBridge, MixerEngine } from './mixer/types.js';
import { MusicFileError, type MusicLibrary } from './music.js';
import { RtpengineFailure, type RtpenginePool } from './rtpengine.js';
import { BridgeCodecs, SdpError, bridgeSdp, checkPhoneSdp, parseRemote } from './sdp.js';

export class MediaFailure extends Error {
  constructor(
    readonly code: MediaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MediaFailure';
  }
}

/** What a successful command returns (the reply adds ok and instance). */
export interface MediaResult {
  sdp?: string;
  legs?: LegState[];
}

/** One leg as the media bucket keeps it: enough for another instance to re-point its rtpengine call. */
export interface StoredLeg {
  legId: string;
  label?: string;
  callId: string;
  phoneTag: string;
  bridgeTag: string;
  ng: string;
  /** The phone's latest SDP (its offer or answer): re-offered to rtpengine to get the bridge side anew. */
  phoneSdp: string;
  sdpVersion: number;
}

export interface StoredBridge {
  instance: string;
  legs: StoredLeg[];
}

/**
 * Where bridges are kept for adoption (the huddle-media JetStream KV bucket). Writes compare the
 * revision: an instance whose bridge was adopted while it was paused finds out on its next write
 * and lets go of the bridge (fencing), instead of overwriting the adopter's record.
 */
export interface BridgeStore {
  /** Writes if `revision` is still the stored one (undefined: no record yet); the new revision, or undefined when another instance wrote since. */
  save(bridgeId: string, bridge: StoredBridge, revision: number | undefined): Promise<number | undefined>;
  load(bridgeId: string): Promise<{ bridge: StoredBridge; revision: number } | undefined>;
  /** Removes the record if `revision` is still the stored one; false when another instance wrote since. */
  remove(bridgeId: string, revision: number | undefined): Promise<boolean>;
}

/** Commands after which the bridge's stored record must change. */
const Persisted: ReadonlySet<MediaCommand['op']> = new Set(['leg.offer', 'leg.answer', 'leg.reoffer', 'leg.move', 'leg.remove']);

interface Leg {
  id: string;
  label?: string;
  callId: string;
  /** rtpengine tags of the two sides; our own names, unrelated to SIP tags (the call-id is ours too). */
  phoneTag: string;
  bridgeTag: string;
  ng: string;
  party: BridgeParty;
  awaitingAnswer: boolean;
  sdpVersion: number;
  phoneSdp?: string;
  failed?: string;
}

interface Bridge {
  id: string;
  media: MediaBridge;
  legs: Map<string, Leg>;
  queue: Promise<unknown>;
  /** Revision of our last write of the bridge in the store. */
  revision?: number;
  /** When it last got a command (Date.now()). */
  touchedAt?: number;
}

/** rtpengine flags for the SDP it writes towards our bridge: plain RTP. */
const TOWARDS_BRIDGE = {
  replace: ['origin', 'session-connection'],
  ICE: 'remove',
  'transport-protocol': 'RTP/AVP',
};
/**
 * Added only for a phone without G.711: transcoding puts every packet of the leg through
 * rtpengine's codec pipeline (measured ~35% more CPU per relayed packet than a plain relay).
 */
const TRANSCODE_TO_G711 = { codec: { transcode: ['PCMU', 'PCMA'] } };

export interface MediaControllerOptions {
  instance: string;
  pool: RtpenginePool;
  mixer: MixerEngine;
  music: MusicLibrary;
  publish: (event: MediaEvent) => void;
  store: BridgeStore;
  log: Logger;
}

export class MediaController {
  private readonly bridges = new Map<string, Bridge>();

  constructor(private readonly opts: MediaControllerOptions) {
    opts.pool.on('lost', (ng) => this.onRtpengineLost(ng));
    opts.pool.on('back', (ng) => opts.publish({ kind: 'rtpengine-back', instance: opts.instance, ng }));
    opts.pool.on('sessionsLost', (ng, callIds) => this.onSessionsLost(ng, new Set(callIds)));
    opts.pool.watchSessions((ng) => this.callIdsOn(ng));
  }

  get bridgeCount(): number {
    return this.bridges.size;
  }

  get legCount(): number {
    let n = 0;
    for (const b of this.bridges.values()) for (const leg of b.legs.values()) if (!leg.failed) n++;
    return n;
  }

  musicSessions(): { file: number; silence: number } {
    const counts = { file: 0, silence: 0 };
    for (const b of this.bridges.values()) {
      for (const leg of b.legs.values()) {
        const music = leg.party.music;
        if (music !== 'none' && !leg.failed) counts[music]++;
      }
    }
    return counts;
  }

  /** Runs a command; throws MediaFailure with a contract error code when it cannot. */
  async handle(cmd: MediaCommand): Promise<MediaResult> {
    if (cmd.op === 'bridge.create') return this.createBridge(cmd.bridgeId);
    if (cmd.op === 'bridge.adopt') return this.adoptBridge(cmd.bridgeId);
    const bridge = this.bridge(cmd.bridgeId);
    bridge.touchedAt = Date.now();
    const run = bridge.queue.then(() => this.run(bridge, cmd));
    bridge.queue = run.catch(() => undefined);
    return run;
  }

  private async run(bridge: Bridge, cmd: Exclude<MediaCommand, { op: 'bridge.create' | 'bridge.adopt' }>): Promise<MediaResult> {
    try {
      // A command queued behind bridge.destroy finds the bridge gone.
      if (this.bridges.get(bridge.id) !== bridge) throw new MediaFailure('BridgeNotFound', `bridge ${bridge.id} was destroyed`);
      const result = await this.apply(bridge, cmd);
      if (Persisted.has(cmd.op)) await this.persist(bridge);
      if (cmd.op === 'leg.move') await this.persist(this.bridge(cmd.toBridgeId));
      return result;
    } catch (err) {
      throw asMediaFailure(err);
    }
  }

  private async apply(bridge: Bridge, cmd: Exclude<MediaCommand, { op: 'bridge.create' | 'bridge.adopt' }>): Promise<MediaResult> {
    switch (cmd.op) {
      case 'bridge.destroy':
        await this.destroyBridge(bridge);
        return {};
      case 'bridge.query':
        return { legs: [...bridge.legs.values()].map((leg) => this.legState(leg)) };
      case 'leg.offer':
        return { sdp: await this.legOffer(bridge, cmd.legId, cmd.sdp, cmd.label) };
      case 'leg.create':
        return { sdp: await this.legCreate(bridge, cmd.legId, cmd.label) };
      case 'leg.answer':
        await this.legAnswer(this.leg(bridge, cmd.legId), cmd.sdp);
        return {};
      case 'leg.reoffer':
        return { sdp: await this.legReoffer(this.leg(bridge, cmd.legId), cmd.sdp) };
      case 'leg.move':
        this.legMove(bridge, cmd.legId, cmd.toBridgeId);
        return {};
      case 'leg.remove':
        await this.legRemove(bridge, this.leg(bridge, cmd.legId));
        return {};
      case 'leg.flags':
        this.leg(bridge, cmd.legId).party.setFlags(cmd.listen, cmd.talk);
        return {};
      case 'leg.music.play':
        await this.musicPlay(bridge, this.leg(bridge, cmd.legId), cmd.file);
        return {};
      case 'leg.music.stop':
        this.leg(bridge, cmd.legId).party.stopMusic();
        return {};
    }
  }

  /**
   * Writes what another instance needs to adopt the bridge; a failed write costs only that. When
   * another instance wrote it since, it adopted the bridge: this one lets go of it (its rtpengine
   * calls are the adopter's now) and the command fails.
   */
  private async persist(bridge: Bridge, claim = false): Promise<void> {
    const legs: StoredLeg[] = [];
    for (const leg of bridge.legs.values()) {
      if (leg.failed || leg.phoneSdp === undefined) continue;
      const { id: legId, label, callId, phoneTag, bridgeTag, ng, phoneSdp, sdpVersion } = leg;
      legs.push({ legId, ...(label !== undefined ? { label } : {}), callId, phoneTag, bridgeTag, ng, phoneSdp, sdpVersion });
    }
    let revision: number | undefined;
    try {
      revision = await this.opts.store.save(bridge.id, { instance: this.opts.instance, legs }, bridge.revision);
    } catch (err) {
      this.opts.log.warn({ bridge: bridge.id, err: (err as Error).message }, 'bridge not saved for adoption');
      return;
    }
    if (revision !== undefined) {
      bridge.revision = revision;
      return;
    }
    if (claim) {
      // The instance we adopt from wrote once more before it died or paused: the adopter wins.
      const latest = await this.opts.store.load(bridge.id);
      if (latest) bridge.revision = latest.revision;
      else delete bridge.revision;
      return this.persist(bridge, true);
    }
    await this.letGo(bridge);
    throw new MediaFailure('BridgeNotFound', `bridge ${bridge.id} was adopted by another media-controller`);
  }

  /** Forgets a bridge another instance adopted: our sockets close, its rtpengine calls stay. */
  private async letGo(bridge: Bridge): Promise<void> {
    this.opts.log.warn({ bridge: bridge.id }, 'bridge adopted by another instance: letting go');
    this.bridges.delete(bridge.id);
    await Promise.all([...bridge.legs.values()].map((leg) => this.releaseLeg(bridge, leg, false)));
    bridge.legs.clear();
    await bridge.media.destroy();
  }

  /**
   * Takes over a bridge another instance created (it died): a new mixer bridge, and each stored
   * leg's rtpengine call re-offered from the phone side with the phone's last SDP, so rtpengine
   * keeps the phone side as it is and sends the bridge side to our new socket. A leg that cannot
   * be re-pointed fails (leg-failed); the others carry on.
   */
  private async adoptBridge(id: string): Promise<MediaResult> {
    if (this.bridges.has(id)) throw new MediaFailure('BridgeExists', `bridge ${id} exists`);
    const loaded = await this.opts.store.load(id);
    const stored = loaded?.bridge;
    const bridge: Bridge = { id, media: this.opts.mixer.createBridge(id), legs: new Map(), queue: Promise.resolve(), ...(loaded ? { revision: loaded.revision } : {}) };
    this.bridges.set(id, bridge);
    await Promise.all(
      (stored?.legs ?? []).map(async (s) => {
        try {
          await this.adoptLeg(bridge, s);
        } catch (err) {
          const reason = `not adopted from ${stored?.instance ?? 'unknown'}: ${(err as Error).message}`;
          this.opts.log.warn({ bridge: id, leg: s.legId, err: reason }, 'leg not adopted');
          this.opts.publish({ kind: 'leg-failed', instance: this.opts.instance, bridgeId: id, legId: s.legId, reason });
        }
      }),
    );
    await this.persist(bridge, true);
    this.opts.log.warn({ bridge: id, from: stored?.instance, legs: bridge.legs.size }, 'bridge adopted');
    return { legs: [...bridge.legs.values()].map((leg) => this.legState(leg)) };
  }

  private async adoptLeg(bridge: Bridge, s: StoredLeg): Promise<void> {
    const party = await this.opts.mixer.createParty(s.legId);
    const leg: Leg = {
      id: s.legId,
      ...(s.label !== undefined ? { label: s.label } : {}),
      callId: s.callId,
      phoneTag: s.phoneTag,
      bridgeTag: s.bridgeTag,
      ng: s.ng,
      party,
      awaitingAnswer: false,
      sdpVersion: s.sdpVersion + 1,
      phoneSdp: s.phoneSdp,
    };
    try {
      await this.phoneOffered(leg, s.phoneSdp, checkPhoneSdp(s.phoneSdp).g711, true);
    } catch (err) {
      await party.close();
      throw err;
    }
    this.opts.pool.attach(leg.ng);
    bridge.legs.set(leg.id, leg);
    bridge.media.add(party);
  }

  private createBridge(id: string): MediaResult {
    if (this.bridges.has(id)) throw new MediaFailure('BridgeExists', `bridge ${id} exists`);
    this.bridges.set(id, { id, media: this.opts.mixer.createBridge(id), legs: new Map(), queue: Promise.resolve() });
    return {};
  }

  private bridge(id: string): Bridge {
    const bridge = this.bridges.get(id);
    if (!bridge) throw new MediaFailure('BridgeNotFound', `no bridge ${id} on ${this.opts.instance}`);
    return bridge;
  }

  private leg(bridge: Bridge, legId: string): Leg {
    const leg = bridge.legs.get(legId);
    if (!leg) throw new MediaFailure('LegNotFound', `no leg ${legId} in bridge ${bridge.id}`);
    return leg;
  }

  private legState(leg: Leg): LegState {
    return {
      legId: leg.id,
      ...(leg.label !== undefined ? { label: leg.label } : {}),
      listen: leg.party.listen,
      talk: leg.party.talk,
      music: leg.party.music,
      rtpengine: leg.ng,
      packetsIn: leg.party.counters.packetsIn,
      packetsOut: leg.party.counters.packetsOut,
    };
  }

  /** A new leg's rtpengine call and bridge socket; undone if `setup` fails. */
  private async newLeg(bridge: Bridge, legId: string, label: string | undefined, setup: (leg: Leg) => Promise<string>): Promise<string> {
    if (bridge.legs.has(legId)) throw new MediaFailure('LegExists', `leg ${legId} exists in bridge ${bridge.id}`);
    const ng = this.opts.pool.pick();
    const party = await this.opts.mixer.createParty(legId);
    const tag = randomUUID();
    const leg: Leg = {
      id: legId,
      ...(label !== undefined ? { label } : {}),
      callId: `huddle-${tag}`,
      phoneTag: `phone-${tag.slice(0, 8)}`,
      bridgeTag: `bridge-${tag.slice(0, 8)}`,
      ng,
      party,
      awaitingAnswer: false,
      sdpVersion: 1,
    };
    try {
      const sdp = await setup(leg);
      this.opts.pool.attach(ng);
      bridge.legs.set(legId, leg);
      bridge.media.add(party);
      return sdp;
    } catch (err) {
      await party.close();
      this.opts.pool.delete(ng, leg.callId).catch(() => undefined);
      throw err;
    }
  }

  private legOffer(bridge: Bridge, legId: string, sdp: string, label: string | undefined): Promise<string> {
    const { g711 } = checkPhoneSdp(sdp);
    return this.newLeg(bridge, legId, label, async (leg) => {
      const answer = await this.phoneOffered(leg, sdp, g711, false);
      leg.phoneSdp = sdp;
      return answer;
    });
  }

  /** The phone offered (first or again): rtpengine offers to the bridge, the bridge answers, rtpengine answers the phone. */
  private async phoneOffered(leg: Leg, sdp: string, g711: boolean, again: boolean): Promise<string> {
    const { pool } = this.opts;
    const tags = { 'call-id': leg.callId, 'from-tag': leg.phoneTag, ...(again ? { 'to-tag': leg.bridgeTag } : {}) };
    const offer = await pool.offer(leg.ng, { ...tags, sdp, ...TOWARDS_BRIDGE, ...(g711 ? {} : TRANSCODE_TO_G711) });
    const remote = parseRemote(requireSdp(offer.sdp, leg.ng));
    const codec = remote.codecs[0]!;
    const answerSdp = bridgeSdp(leg.party.local.host, leg.party.local.port, [codec], leg.sdpVersion++);
    const answer = await pool.answer(leg.ng, { 'call-id': leg.callId, 'from-tag': leg.phoneTag, 'to-tag': leg.bridgeTag, sdp: answerSdp, replace: TOWARDS_BRIDGE.replace });
    await leg.party.setRemote(remote.host, remote.port, codec);
    return requireSdp(answer.sdp, leg.ng);
  }

  private legCreate(bridge: Bridge, legId: string, label: string | undefined): Promise<string> {
    return this.newLeg(bridge, legId, label, async (leg) => {
      const offerSdp = bridgeSdp(leg.party.local.host, leg.party.local.port, BridgeCodecs, leg.sdpVersion++);
      const offer = await this.opts.pool.offer(leg.ng, { 'call-id': leg.callId, 'from-tag': leg.bridgeTag, sdp: offerSdp, replace: TOWARDS_BRIDGE.replace });
      leg.awaitingAnswer = true;
      return requireSdp(offer.sdp, leg.ng);
    });
  }

  private async legAnswer(leg: Leg, sdp: string): Promise<void> {
    if (!leg.awaitingAnswer) throw new MediaFailure('BadCommand', `leg ${leg.id} is not waiting for an answer`);
    checkPhoneSdp(sdp);
    const answer = await this.opts.pool.answer(leg.ng, { 'call-id': leg.callId, 'from-tag': leg.bridgeTag, 'to-tag': leg.phoneTag, sdp, replace: TOWARDS_BRIDGE.replace });
    const remote = parseRemote(requireSdp(answer.sdp, leg.ng));
    await leg.party.setRemote(remote.host, remote.port, remote.codecs[0]!);
    leg.awaitingAnswer = false;
    leg.phoneSdp = sdp;
  }

  private async legReoffer(leg: Leg, sdp: string): Promise<string> {
    if (leg.failed) throw new MediaFailure('RtpengineUnavailable', `leg ${leg.id} failed: ${leg.failed}`);
    const { g711 } = checkPhoneSdp(sdp);
    const answer = await this.phoneOffered(leg, sdp, g711, true);
    leg.awaitingAnswer = false;
    leg.phoneSdp = sdp;
    return answer;
  }

  private legMove(bridge: Bridge, legId: string, toBridgeId: string): void {
    const leg = this.leg(bridge, legId);
    const target = this.bridge(toBridgeId);
    if (target.legs.has(legId)) throw new MediaFailure('LegExists', `leg ${legId} exists in bridge ${toBridgeId}`);
    bridge.legs.delete(legId);
    target.legs.set(legId, leg);
    if (!leg.failed) {
      bridge.media.remove(leg.party.id);
      target.media.add(leg.party);
    }
  }

  private async legRemove(bridge: Bridge, leg: Leg): Promise<void> {
    bridge.legs.delete(leg.id);
    await this.releaseLeg(bridge, leg);
  }

  private async releaseLeg(bridge: Bridge, leg: Leg, deleteCall = true): Promise<void> {
    if (leg.failed) return;
    bridge.media.remove(leg.party.id);
    await leg.party.close();
    this.opts.pool.release(leg.ng);
    if (!deleteCall) return;
    try {
      await this.opts.pool.delete(leg.ng, leg.callId);
    } catch (err) {
      this.opts.log.warn({ leg: leg.id, ng: leg.ng, err: (err as Error).message }, 'rtpengine delete failed');
    }
  }

  private async musicPlay(bridge: Bridge, leg: Leg, file: string | null): Promise<void> {
    if (file === null) {
      leg.party.playMusic(null);
      return;
    }
    try {
      leg.party.playMusic(await this.opts.music.load(file));
    } catch (err) {
      if (!(err instanceof MusicFileError)) throw err;
      // The party must not hear the conference it was taken out of: silence until music.stop.
      leg.party.playMusic(null);
      this.opts.publish({ kind: 'music-error', instance: this.opts.instance, bridgeId: bridge.id, legId: leg.id, file, reason: err.message });
      throw new MediaFailure('MusicFileUnreadable', err.message);
    }
  }

  /**
   * Destroys a bridge with its legs' rtpengine calls, unless another instance adopted it while this
   * one was given up for lost (paused): then those calls are the adopter's, and only our sockets go.
   */
  private async destroyBridge(bridge: Bridge): Promise<void> {
    this.bridges.delete(bridge.id);
    const ours = await this.opts.store.remove(bridge.id, bridge.revision).catch((err: Error) => {
      this.opts.log.warn({ bridge: bridge.id, err: err.message }, 'stored bridge not removed');
      return true;
    });
    if (!ours) this.opts.log.warn({ bridge: bridge.id }, 'bridge adopted elsewhere: its rtpengine calls are left to the adopter');
    await Promise.all([...bridge.legs.values()].map((leg) => this.releaseLeg(bridge, leg, ours)));
    bridge.legs.clear();
    await bridge.media.destroy();
  }

  private onRtpengineLost(ng: string): void {
    this.opts.publish({ kind: 'rtpengine-lost', instance: this.opts.instance, ng });
    this.failLegs(ng, () => true, `rtpengine ${ng} stopped answering`);
  }

  /** rtpengine answers but forgot these calls (it restarted between pings): their legs carry no media. */
  private onSessionsLost(ng: string, callIds: ReadonlySet<string>): void {
    this.failLegs(ng, (leg) => callIds.has(leg.callId), `rtpengine ${ng} no longer has the leg's call (restarted)`);
  }

  private failLegs(ng: string, which: (leg: Leg) => boolean, reason: string): void {
    const { instance, publish } = this.opts;
    for (const bridge of this.bridges.values()) {
      for (const leg of bridge.legs.values()) {
        if (leg.ng !== ng || leg.failed || !which(leg)) continue;
        leg.failed = reason;
        bridge.media.remove(leg.party.id);
        this.opts.pool.release(ng);
        leg.party.close().catch(() => undefined);
        publish({ kind: 'leg-failed', instance, bridgeId: bridge.id, legId: leg.id, reason });
      }
    }
  }

  private callIdsOn(ng: string): string[] {
    const callIds: string[] = [];
    for (const bridge of this.bridges.values()) for (const leg of bridge.legs.values()) if (leg.ng === ng && !leg.failed) callIds.push(leg.callId);
    return callIds;
  }

  /**
   * Whether the calls on our bridges are set up: no leg waits for its answer and no bridge got a
   * command within `quietMs` (a call being set up gets its next leg within that). Only bridges of
   * set-up calls are worth handing over: a leg not yet answered cannot be adopted.
   */
  settled(quietMs: number): boolean {
    const since = Date.now() - quietMs;
    for (const bridge of this.bridges.values()) {
      if ((bridge.touchedAt ?? 0) > since) return false;
      for (const leg of bridge.legs.values()) if (leg.awaitingAnswer || leg.phoneSdp === undefined) return false;
    }
    return true;
  }

  /**
   * Stopping while signaling has other instances adopt our bridges (we announced `gone`): waits,
   * for at most `timeoutMs`, until the store shows each bridge written by another instance, and
   * lets go of those (sockets closed, rtpengine calls left: they are the adopter's now). Bridges
   * nobody adopted by then are destroyed with their rtpengine calls. Resolves with the counts.
   */
  async handOver(timeoutMs: number): Promise<{ adopted: number; destroyed: number }> {
    const deadline = Date.now() + timeoutMs;
    let adopted = 0;
    while (this.bridges.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all(
        [...this.bridges.values()].map(async (bridge) => {
          const stored = await this.opts.store.load(bridge.id).catch(() => 'unknown' as const);
          if (stored === 'unknown') return;
          const elsewhere = stored === undefined ? bridge.revision !== undefined : stored.revision !== bridge.revision;
          if (!elsewhere || !this.bridges.has(bridge.id)) return;
          adopted++;
          await this.letGo(bridge);
        }),
      );
    }
    const destroyed = this.bridges.size;
    await this.drain();
    return { adopted, destroyed };
  }

  /** Destroys every bridge (deleting its rtpengine calls). */
  async drain(): Promise<void> {
    await Promise.all([...this.bridges.values()].map((b) => b.queue.then(() => this.destroyBridge(b))));
  }
}

function requireSdp(sdp: string | undefined, ng: string): string {
  if (!sdp) throw new RtpengineFailure('RtpengineError', ng, 'reply carries no SDP');
  return sdp;
}

function asMediaFailure(err: unknown): MediaFailure {
  if (err instanceof MediaFailure) return err;
  if (err instanceof RtpengineFailure || err instanceof SdpError) return new MediaFailure(err.code, err.message);
  return new MediaFailure('Internal', (err as Error).message ?? String(err));
}
