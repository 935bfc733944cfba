/**
 * The media controller's state and command handling, independent of NATS: bridges, their legs,
 * and for each leg the rtpengine call party that anchors it. A leg has two sides in rtpengine:
 * the phone side (the SDP the phone offered or answered) and the bridge side (our RTP socket).
 * The second leg of a bridge joins the first leg's rtpengine call, so that a bridge of two plain
 * parties is relayed by rtpengine alone: their phone sides are paired with each other (direct)
 * and the mixer is left out. The bridge takes them back (each phone side paired with its bridge
 * side again) as soon as that no longer holds. Commands on one bridge run one at a time, in
 * arrival order.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { LegState, MediaCommand, MediaErrorCode, MediaEvent } from '../common/nats/media-contract.js';
import { OrderedWrites } from '../common/nats/ordered-writes.js';
import type { Codec } from './mixer/g711.js';
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
  /** Since version 2: the phone side is paired with the other phone's; codec and relayed tell whether it may be. */
  direct?: boolean;
  codec?: Codec;
  relayed?: boolean;
  /** A browser's phone side (ICE, DTLS-SRTP); absent in records of older instances: told by phoneSdp. */
  webrtc?: boolean;
}

/** Version 2 adds direct legs; a record without a version is 1 (every leg paired with its bridge side). */
export const StoredBridgeVersion = 2;

export interface StoredBridge {
  version?: number;
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

/** How long a command waits for its bridge's write to the store (see persistInOrder). */
const StoreWaitMs = 1000;

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
  /** The G.711 codec of the bridge side; when relayed, the phone's own codec too. */
  codec?: Codec;
  /** rtpengine relays the phone's G.711 as is (no transcoding). */
  relayed: boolean;
  /** The phone side is paired with the other phone's in rtpengine: the party is out of the mixer. */
  direct: boolean;
  /** The phone is a browser: rtpengine speaks ICE, DTLS-SRTP and rtcp-mux on its phone side. */
  webrtc: boolean;
  /**
   * Its direct partner's phone side was deleted in rtpengine, and their dialogue with it: rtpengine
   * may hold nothing of this leg any more (the call is ending), so its absence there is no restart.
   */
  orphaned?: boolean;
  /** Offered to straight from this phone side of the other party (leg.create next to a plain party): its answer goes there. */
  offeredBy?: string;
}

interface Bridge {
  id: string;
  media: MediaBridge;
  legs: Map<string, Leg>;
  queue: Promise<unknown>;
  /** Its writes to the store, in order; a command waits for its write at most StoreWaitMs. */
  writes: OrderedWrites;
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
 * Towards a browser (we offer; measured with Chromium on rtpengine 10.5): the WebRTC profile and
 * rtpengine's own ICE candidates, no SDES keys (a=crypto would carry them in the clear), rtcp-mux
 * even if the offer it answers lacked it, and a=mid. rtpengine offers a=setup:actpass whatever
 * `DTLS` says, so the browser answers active and starts the handshake. A browser's own offer needs
 * nothing beyond TOWARDS_BRIDGE: rtpengine answers it in kind (ICE, DTLS-SRTP, rtcp-mux).
 */
const TOWARDS_WEBRTC = {
  'transport-protocol': 'UDP/TLS/RTP/SAVPF',
  ICE: 'force',
  SDES: ['off'],
  'rtcp-mux': ['offer', 'require'],
  flags: ['generate mid'],
};
/**
 * Added only for a phone without G.711: transcoding puts every packet of the leg through
 * rtpengine's codec pipeline (measured ~35% more CPU per relayed packet than a plain relay).
 */
const TRANSCODE_TO_G711 = { codec: { transcode: ['PCMU', 'PCMA'] } };
/** Re-pairing a phone side must not change the ports the phone sends to (measured: without it rtpengine may give new ones). */
const KEEP_PORTS = { flags: ['port latching'] };

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
      const target = cmd.op === 'leg.move' ? this.bridge(cmd.toBridgeId) : undefined;
      await this.beforeApply(bridge, cmd, target);
      let result: MediaResult;
      try {
        result = await this.apply(bridge, cmd);
      } catch (err) {
        // Flags or music may be set even so (silence for an unreadable file): the path must follow them.
        await this.settle(bridge).catch((e: Error) => this.opts.log.warn({ bridge: bridge.id, err: e.message }, 'bridge media path not settled'));
        throw err;
      }
      if (cmd.op === 'bridge.destroy') return result;
      const changed = await this.settle(bridge);
      if (Persisted.has(cmd.op) || changed) await this.persistInOrder(bridge);
      if (target) {
        await this.settle(target);
        await this.persistInOrder(target);
      }
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
        return { legs: await this.queryLegs(bridge) };
      case 'leg.offer':
        return { sdp: await this.legOffer(bridge, cmd.legId, cmd.sdp, cmd.label) };
      case 'leg.create':
        return { sdp: await this.legCreate(bridge, cmd.legId, cmd.label, cmd.phone) };
      case 'leg.answer':
        await this.legAnswer(bridge, this.leg(bridge, cmd.legId), cmd.sdp);
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
   * Commands that need the legs in the mixer take them there first: a third party joins, a phone
   * re-offers (its phone side is paired with its bridge side anew), a leg moves between bridges.
   */
  private async beforeApply(bridge: Bridge, cmd: MediaCommand, target: Bridge | undefined): Promise<void> {
    const direct = setUpLegs(bridge).filter((leg) => leg.direct);
    switch (cmd.op) {
      case 'leg.offer':
      case 'leg.create':
        // A lone direct leg waits for the newcomer: the two are paired directly right after.
        if (direct.length === 2) await this.toMixer(bridge, direct);
        return;
      case 'leg.reoffer':
      case 'leg.move':
        if (direct.some((leg) => leg.id === cmd.legId)) await this.toMixer(bridge, direct);
        if (target) {
          const there = setUpLegs(target).filter((leg) => leg.direct);
          if (there.length > 0) await this.toMixer(target, there);
        }
        return;
      default:
        return;
    }
  }

  /**
   * Brings the bridge's media path in line with its legs: two plain parties in one rtpengine call
   * are paired directly; any other state (a third party, a flag off, music) has every leg in the
   * mixer. A lone plain leg stays as it is (the next party pairs with it), and so does a leg still
   * waiting for its phone's answer (it has nothing to re-pair yet). True when it changed.
   */
  private async settle(bridge: Bridge): Promise<boolean> {
    const pair = directPair(liveLegs(bridge));
    if (pair) {
      if (pair[0].direct && pair[1].direct) return false;
      return this.toDirect(bridge, pair);
    }
    const setUp = setUpLegs(bridge);
    const direct = setUp.filter((leg) => leg.direct);
    if (direct.length === 0 || (setUp.length === 1 && plain(setUp[0]!))) return false;
    await this.toMixer(bridge, direct);
    return true;
  }

  /**
   * Pairs the two phone sides with each other in rtpengine (offer from one to the other with
   * their last SDPs; the phones' ports stay: no re-INVITE), after taking both out of the mixer.
   * If rtpengine refuses, the mixer keeps carrying them.
   */
  private async toDirect(bridge: Bridge, [a, b]: [Leg, Leg]): Promise<boolean> {
    const { pool } = this.opts;
    for (const leg of [a, b]) bridge.media.remove(leg.party.id);
    const tags = { 'call-id': a.callId, 'from-tag': a.phoneTag, 'to-tag': b.phoneTag, ...KEEP_PORTS };
    try {
      await pool.offer(a.ng, { ...tags, sdp: a.phoneSdp! });
      await pool.answer(a.ng, { ...tags, sdp: b.phoneSdp! });
    } catch (err) {
      this.opts.log.warn({ bridge: bridge.id, err: (err as Error).message }, 'direct pairing refused: the mixer relays the call');
      await this.toMixer(bridge, [a, b]);
      return false;
    }
    a.direct = true;
    b.direct = true;
    return true;
  }

  /**
   * Pairs each direct leg's phone side with its bridge side again and adds it to the mixer, whose
   * flags and music are already set. While the first is re-paired the second still sends to it:
   * the first is one allowed to hear the other; when neither is (both isolated), the second's
   * media is blocked in rtpengine for the move, so no packet reaches anyone it must not.
   */
  private async toMixer(bridge: Bridge, legs: Leg[]): Promise<void> {
    const { pool } = this.opts;
    let order = legs;
    let blocked: Leg | undefined;
    const [x, y] = legs;
    if (x && y) {
      if (mayHear(y, x)) order = [y, x];
      else if (!mayHear(x, y)) blocked = y;
    }
    if (blocked) await pool.blockMedia(blocked.ng, blocked.callId, blocked.phoneTag);
    try {
      for (const leg of order) {
        await this.phoneOffered(leg, leg.phoneSdp!, leg.relayed, true, KEEP_PORTS);
        leg.direct = false;
      }
    } finally {
      // Added once re-paired, so no phone gets the mix and the other phone's stream at once.
      for (const leg of order) if (!leg.direct) bridge.media.add(leg.party);
      if (blocked) await pool.unblockMedia(blocked.ng, blocked.callId, blocked.phoneTag);
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
      const { id: legId, label, callId, phoneTag, bridgeTag, ng, phoneSdp, sdpVersion, direct, codec, relayed, webrtc } = leg;
      legs.push({ legId, ...(label !== undefined ? { label } : {}), callId, phoneTag, bridgeTag, ng, phoneSdp, sdpVersion, direct, ...(codec ? { codec } : {}), relayed, webrtc });
    }
    let revision: number | undefined;
    try {
      revision = await this.opts.store.save(bridge.id, { version: StoredBridgeVersion, instance: this.opts.instance, legs }, bridge.revision);
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
    const bridge: Bridge = { id, media: this.opts.mixer.createBridge(id), legs: new Map(), queue: Promise.resolve(), writes: this.storeWrites(id), ...(loaded ? { revision: loaded.revision } : {}) };
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
    // A record of version 1 had every leg in the mixer: two plain parties are paired directly now.
    await this.settle(bridge).catch((err: Error) => this.opts.log.warn({ bridge: id, err: err.message }, 'adopted bridge: media path not settled'));
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
      ...(s.codec ? { codec: s.codec } : {}),
      relayed: s.relayed ?? checkPhoneSdp(s.phoneSdp).g711,
      direct: s.direct === true,
      webrtc: s.webrtc ?? checkPhoneSdp(s.phoneSdp).webrtc,
    };
    // A direct leg's audio never stopped (rtpengine relays it alone): only our socket is new, and
    // rtpengine learns it when the leg next goes to the mixer.
    if (!leg.direct) {
      try {
        await this.phoneOffered(leg, s.phoneSdp, leg.relayed, true);
      } catch (err) {
        await party.close();
        throw err;
      }
    }
    this.opts.pool.attach(leg.ng);
    bridge.legs.set(leg.id, leg);
    if (!leg.direct) bridge.media.add(party);
  }

  private createBridge(id: string): MediaResult {
    if (this.bridges.has(id)) throw new MediaFailure('BridgeExists', `bridge ${id} exists`);
    this.bridges.set(id, { id, media: this.opts.mixer.createBridge(id), legs: new Map(), queue: Promise.resolve(), writes: this.storeWrites(id) });
    return {};
  }

  private storeWrites(bridgeId: string): OrderedWrites {
    const log = this.opts.log;
    return new OrderedWrites({
      waitMs: StoreWaitMs,
      onDelayed: (waitedMs) => log.warn({ bridge: bridgeId, waitedMs }, 'bridge write delayed by JetStream; the command goes on and the write follows'),
      onLateFailure: (err) => log.warn({ bridge: bridgeId, err: err.message }, 'delayed bridge write failed'),
    });
  }

  /**
   * persist, after the bridge's earlier writes, waited for at most StoreWaitMs: a command must not
   * outlast signaling's wait for it while JetStream elects a leader. A write that lands late and
   * finds the bridge adopted lets go of it then, as persist does.
   */
  private persistInOrder(bridge: Bridge): Promise<void> {
    return bridge.writes.run(() => this.persist(bridge), undefined, () => undefined);
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

  private legState(leg: Leg, packets: { in: number; out: number } = { in: leg.party.counters.packetsIn, out: leg.party.counters.packetsOut }): LegState {
    return {
      legId: leg.id,
      ...(leg.label !== undefined ? { label: leg.label } : {}),
      listen: leg.party.listen,
      talk: leg.party.talk,
      music: leg.party.music,
      rtpengine: leg.ng,
      direct: leg.direct,
      packetsIn: packets.in,
      packetsOut: packets.out,
    };
  }

  /**
   * The legs with their packet counts. A direct leg's packets never reach our socket: rtpengine
   * counts them (what it received from the phone, and from the phone paired with it), one
   * `query` per rtpengine call.
   */
  private async queryLegs(bridge: Bridge): Promise<LegState[]> {
    const legs = [...bridge.legs.values()];
    const calls = new Map<string, Promise<Map<string, number> | undefined>>();
    for (const leg of legs) {
      const key = `${leg.ng} ${leg.callId}`;
      if (leg.direct && !leg.failed && !calls.has(key)) calls.set(key, this.phonePackets(leg.ng, leg.callId));
    }
    const states: LegState[] = [];
    for (const leg of legs) {
      const counts = leg.direct && !leg.failed ? await calls.get(`${leg.ng} ${leg.callId}`) : undefined;
      const mate = counts && legs.find((other) => other !== leg && other.direct && other.callId === leg.callId);
      states.push(counts ? this.legState(leg, { in: counts.get(leg.phoneTag) ?? 0, out: mate ? (counts.get(mate.phoneTag) ?? 0) : 0 }) : this.legState(leg));
    }
    return states;
  }

  /** Packets rtpengine received per party (tag) of a call; undefined when it cannot say. */
  private async phonePackets(ng: string, callId: string): Promise<Map<string, number> | undefined> {
    try {
      const reply = await this.opts.pool.query(ng, callId);
      const counts = new Map<string, number>();
      for (const [tag, party] of Object.entries((reply.tags ?? {}) as Record<string, { medias?: { streams?: { stats?: { packets?: number } }[] }[] }>)) {
        counts.set(tag, party.medias?.[0]?.streams?.[0]?.stats?.packets ?? 0);
      }
      return counts;
    } catch (err) {
      this.opts.log.debug({ ng, callId, err: (err as Error).message }, 'rtpengine query failed');
      return undefined;
    }
  }

  /** A new leg's rtpengine call and bridge socket; undone if `setup` fails. */
  private async newLeg(bridge: Bridge, legId: string, label: string | undefined, setup: (leg: Leg) => Promise<string>): Promise<string> {
    if (bridge.legs.has(legId)) throw new MediaFailure('LegExists', `leg ${legId} exists in bridge ${bridge.id}`);
    // The second party joins the first one's rtpengine call: the two can then be paired directly.
    const live = liveLegs(bridge);
    const mate = live.length === 1 && this.opts.pool.health(live[0]!.ng) === 'up' ? live[0] : undefined;
    const ng = mate?.ng ?? this.opts.pool.pick();
    const party = await this.opts.mixer.createParty(legId);
    const tag = randomUUID();
    const leg: Leg = {
      id: legId,
      ...(label !== undefined ? { label } : {}),
      callId: mate?.callId ?? `huddle-${tag}`,
      phoneTag: `phone-${tag.slice(0, 8)}`,
      bridgeTag: `bridge-${tag.slice(0, 8)}`,
      ng,
      party,
      awaitingAnswer: false,
      sdpVersion: 1,
      relayed: false,
      direct: false,
      webrtc: false,
    };
    try {
      const sdp = await setup(leg);
      this.opts.pool.attach(ng);
      bridge.legs.set(legId, leg);
      bridge.media.add(party);
      return sdp;
    } catch (err) {
      await party.close();
      await this.deleteInRtpengine([leg]);
      throw err;
    }
  }

  private legOffer(bridge: Bridge, legId: string, sdp: string, label: string | undefined): Promise<string> {
    const { g711, webrtc } = checkPhoneSdp(sdp);
    return this.newLeg(bridge, legId, label, async (leg) => {
      leg.webrtc = webrtc;
      const answer = await this.phoneOffered(leg, sdp, g711, false);
      leg.phoneSdp = sdp;
      return answer;
    });
  }

  /** The phone offered (first or again): rtpengine offers to the bridge, the bridge answers, rtpengine answers the phone. */
  private async phoneOffered(leg: Leg, sdp: string, g711: boolean, again: boolean, extra: object = {}): Promise<string> {
    const { pool } = this.opts;
    const tags = { 'call-id': leg.callId, 'from-tag': leg.phoneTag, ...(again ? { 'to-tag': leg.bridgeTag } : {}) };
    const offer = await pool.offer(leg.ng, { ...tags, sdp, ...TOWARDS_BRIDGE, ...(g711 ? {} : TRANSCODE_TO_G711), ...extra });
    const remote = parseRemote(requireSdp(offer.sdp, leg.ng));
    const codec = remote.codecs[0]!;
    const answerSdp = bridgeSdp(leg.party.local.host, leg.party.local.port, [codec], leg.sdpVersion++);
    const answer = await pool.answer(leg.ng, { 'call-id': leg.callId, 'from-tag': leg.phoneTag, 'to-tag': leg.bridgeTag, sdp: answerSdp, replace: TOWARDS_BRIDGE.replace, ...extra });
    await leg.party.setRemote(remote.host, remote.port, codec);
    leg.codec = codec;
    leg.relayed = g711;
    return requireSdp(answer.sdp, leg.ng);
  }

  private legCreate(bridge: Bridge, legId: string, label: string | undefined, phone: 'rtp' | 'webrtc' | undefined): Promise<string> {
    const live = liveLegs(bridge);
    const webrtc = phone === 'webrtc';
    // A browser is never paired directly (see ready): it is offered from its bridge side.
    const peer = live.length === 1 && ready(live[0]!) && !webrtc ? live[0] : undefined;
    return this.newLeg(bridge, legId, label, async (leg) => {
      leg.webrtc = webrtc;
      if (peer && peer.ng === leg.ng && peer.callId === leg.callId) return this.offerFromPeer(bridge, leg, peer);
      const offerSdp = bridgeSdp(leg.party.local.host, leg.party.local.port, BridgeCodecs, leg.sdpVersion++);
      const offer = await this.opts.pool.offer(leg.ng, { 'call-id': leg.callId, 'from-tag': leg.bridgeTag, sdp: offerSdp, replace: TOWARDS_BRIDGE.replace, ...(webrtc ? TOWARDS_WEBRTC : {}) });
      leg.awaitingAnswer = true;
      return requireSdp(offer.sdp, leg.ng);
    });
  }

  /**
   * The callee of a plain party is offered to straight from that party's phone side, in its
   * codec only: answered, the two are paired directly without a bridge side (which is made when
   * first needed) and without pairing twice. The waiting party leaves the mixer now (it is alone
   * and plain: it hears nothing there either).
   */
  private async offerFromPeer(bridge: Bridge, leg: Leg, peer: Leg): Promise<string> {
    const offer = await this.opts.pool.offer(leg.ng, {
      'call-id': leg.callId,
      'from-tag': peer.phoneTag,
      'to-tag': leg.phoneTag,
      sdp: peer.phoneSdp!,
      ...KEEP_PORTS,
      codec: { mask: ['all'], except: [peer.codec!, 'telephone-event'] },
    });
    bridge.media.remove(peer.party.id);
    peer.direct = true;
    leg.direct = true;
    leg.offeredBy = peer.phoneTag;
    leg.awaitingAnswer = true;
    return requireSdp(offer.sdp, leg.ng);
  }

  private async legAnswer(bridge: Bridge, leg: Leg, sdp: string): Promise<void> {
    if (!leg.awaitingAnswer) throw new MediaFailure('BadCommand', `leg ${leg.id} is not waiting for an answer`);
    checkPhoneSdp(sdp);
    if (leg.offeredBy !== undefined) return this.answerToPeer(bridge, leg, leg.offeredBy, sdp);
    const answer = await this.opts.pool.answer(leg.ng, { 'call-id': leg.callId, 'from-tag': leg.bridgeTag, 'to-tag': leg.phoneTag, sdp, replace: TOWARDS_BRIDGE.replace });
    const remote = parseRemote(requireSdp(answer.sdp, leg.ng));
    await leg.party.setRemote(remote.host, remote.port, remote.codecs[0]!);
    leg.codec = remote.codecs[0]!;
    // We offered G.711 only, untranscoded: what the phone answered is relayed as is.
    leg.relayed = true;
    leg.awaitingAnswer = false;
    leg.phoneSdp = sdp;
  }

  /**
   * The answer pairs the two phones. If the party that offered is no longer a plain direct one
   * (it got flags or music, or left, while this phone rang), both phones' media are blocked until
   * the bridge has taken them to the mixer: the pairing must not let one packet through.
   */
  private async answerToPeer(bridge: Bridge, leg: Leg, offeredBy: string, sdp: string): Promise<void> {
    const { pool } = this.opts;
    const codec = parseRemote(sdp).codecs[0]!;
    const peer = liveLegs(bridge).find((other) => other.phoneTag === offeredBy);
    const blocked = peer?.direct === true && plain(peer) ? [] : [leg, ...(peer ? [peer] : [])];
    for (const l of blocked) await pool.blockMedia(l.ng, l.callId, l.phoneTag);
    try {
      await pool.answer(leg.ng, { 'call-id': leg.callId, 'from-tag': offeredBy, 'to-tag': leg.phoneTag, sdp, ...KEEP_PORTS });
      leg.codec = codec;
      leg.relayed = true;
      leg.awaitingAnswer = false;
      leg.phoneSdp = sdp;
      delete leg.offeredBy;
      if (blocked.length > 0) await this.settle(bridge);
    } finally {
      for (const l of blocked) await pool.unblockMedia(l.ng, l.callId, l.phoneTag);
    }
  }

  private async legReoffer(leg: Leg, sdp: string): Promise<string> {
    if (leg.failed) throw new MediaFailure('RtpengineUnavailable', `leg ${leg.id} failed: ${leg.failed}`);
    const { g711, webrtc } = checkPhoneSdp(sdp);
    leg.webrtc = webrtc;
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
    if (deleteCall) await this.deleteInRtpengine([leg]);
  }

  /**
   * Frees the rtpengine side of legs no longer kept (already out of every bridge): a call no other
   * leg of ours uses is deleted whole (one command), otherwise only these legs' phone sides.
   */
  private async deleteInRtpengine(legs: Leg[]): Promise<void> {
    const calls = new Map<string, Leg[]>();
    for (const leg of legs) {
      if (leg.failed) continue;
      const key = `${leg.ng} ${leg.callId}`;
      calls.set(key, [...(calls.get(key) ?? []), leg]);
    }
    await Promise.all(
      [...calls.values()].map(async (group) => {
        const { ng, callId } = group[0]!;
        // A bridge side left behind (if the leg ever had one) goes with the call.
        const inUse = this.callInUse(ng, callId);
        const tags = inUse ? group.map((leg) => leg.phoneTag) : [undefined];
        // rtpengine deletes a dialogue with either of its tags: a direct partner loses its media too.
        if (inUse && group.some((leg) => leg.direct)) this.orphanPartners(ng, callId);
        await Promise.all(
          tags.map((tag) =>
            this.opts.pool.delete(ng, callId, tag).catch((err: Error) => {
              // The last leg of a direct pair: its dialogue may have gone with its partner's phone side.
              if (group.some((leg) => leg.orphaned) && /unknown call/i.test(err.message)) return;
              this.opts.log.warn({ ng, callId, tag, err: err.message }, 'rtpengine delete failed');
            }),
          ),
        );
      }),
    );
  }

  private orphanPartners(ng: string, callId: string): void {
    for (const leg of this.legsOfCall(ng, callId)) if (leg.direct) leg.orphaned = true;
  }

  private callInUse(ng: string, callId: string): boolean {
    return this.legsOfCall(ng, callId).some((leg) => !leg.failed);
  }

  /** The legs of our bridges that are parties of one rtpengine call. */
  private legsOfCall(ng: string, callId: string): Leg[] {
    const legs: Leg[] = [];
    for (const b of this.bridges.values()) for (const leg of b.legs.values()) if (leg.ng === ng && leg.callId === callId) legs.push(leg);
    return legs;
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
    // After its pending writes; not known in time (JetStream electing a leader) counts as ours, as a failure does.
    const remove = () =>
      this.opts.store.remove(bridge.id, bridge.revision).catch((err: Error) => {
        this.opts.log.warn({ bridge: bridge.id, err: err.message }, 'stored bridge not removed');
        return true;
      });
    const ours = await bridge.writes.run(remove, true, (late) => {
      if (!late) this.opts.log.warn({ bridge: bridge.id }, 'bridge removal found it adopted elsewhere after its rtpengine calls were deleted');
    });
    if (!ours) this.opts.log.warn({ bridge: bridge.id }, 'bridge adopted elsewhere: its rtpengine calls are left to the adopter');
    const legs = [...bridge.legs.values()];
    bridge.legs.clear();
    await Promise.all(legs.map((leg) => this.releaseLeg(bridge, leg, false)));
    if (ours) await this.deleteInRtpengine(legs);
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

  /** The rtpengine calls on `ng` our legs need, each once (the two legs of a direct pair share one). */
  private callIdsOn(ng: string): string[] {
    const callIds = new Set<string>();
    for (const bridge of this.bridges.values()) for (const leg of bridge.legs.values()) if (leg.ng === ng && !leg.failed && !leg.orphaned) callIds.add(leg.callId);
    return [...callIds];
  }

  /**
   * Whether the calls on our bridges are set up: no leg waits for its answer and no bridge got a
   * command within `quietMs` (a call being set up gets its next leg within that). Only bridges of
   * set-up calls are worth handing over: a leg not yet answered cannot be adopted.
   */
  /**
   * Resolves true once every bridge's writes to the store landed (or false after `timeoutMs`): an
   * instance that stops says `gone` only then, so the adopter reads each bridge as it last was.
   */
  async stored(timeoutMs: number): Promise<boolean> {
    const done = await Promise.all([...this.bridges.values()].map((bridge) => bridge.writes.settled(timeoutMs)));
    return done.every(Boolean);
  }

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

function liveLegs(bridge: Bridge): Leg[] {
  return [...bridge.legs.values()].filter((leg) => !leg.failed);
}

/** Live legs whose phone has answered (or offered): those that can be paired either way. */
function setUpLegs(bridge: Bridge): Leg[] {
  return liveLegs(bridge).filter((leg) => !leg.awaitingAnswer);
}

/** Listens, talks, no music: nothing the mixer must do for this party. */
function plain(leg: Leg): boolean {
  return leg.party.listen && leg.party.talk && leg.party.music === 'none';
}

/** May `listener` hear `talker` (as it would in the mixer)? */
function mayHear(listener: Leg, talker: Leg): boolean {
  return listener.party.listen && listener.party.music === 'none' && talker.party.talk;
}

/**
 * Set up, plain and relayed untranscoded: a leg that can be paired with another phone. A browser
 * cannot (yet): pairing must not disturb its DTLS-SRTP session, which stays with its bridge side.
 */
function ready(leg: Leg): boolean {
  return !leg.awaitingAnswer && leg.phoneSdp !== undefined && leg.relayed && leg.codec !== undefined && plain(leg) && !leg.webrtc;
}

/**
 * The two legs rtpengine can relay to each other alone: both set up, plain, in the same rtpengine
 * call (legs that met through leg.move were anchored apart and stay in the mixer), speaking the
 * same G.711 codec without transcoding (rtpengine then forwards packets untouched).
 */
function directPair(live: Leg[]): [Leg, Leg] | undefined {
  const [a, b] = live;
  if (live.length !== 2 || !a || !b) return undefined;
  if (!ready(a) || !ready(b) || a.ng !== b.ng || a.callId !== b.callId || a.codec !== b.codec) return undefined;
  return [a, b];
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
