/**
 * The TypeScript bridge: one UDP socket per party facing its rtpengine leg, one shared 20 ms tick
 * for every bridge in the process. Each tick pulls one frame per party from its jitter buffer,
 * sums the talkers once, and sends every listener the sum minus itself (N-1), clipped and encoded
 * in the listener's codec. Two parties is the same path (each hears the other), so flags and music
 * behave identically in a call and in a conference.
 *
 * Hot path: no allocation of ours per packet or tick (frames, sums and outgoing packets are
 * preallocated; codecs are lookup tables). Node allocates the received datagram itself.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import { DecodeTablesByPayloadType, EncodeTables, PayloadTypes, SilenceByte, type Codec } from './g711.js';
import { FRAME_SAMPLES, JitterBuffer } from './jitter.js';
import type { BridgeParty, MediaBridge, MixerEngine, MixerTotals, PartyCounters } from './types.js';

const TICK_MS = 20;
const RTP_HEADER = 12;
/** Outgoing packets rotate through this many buffers so a send still queued in libuv is never overwritten. */
const OUT_BUFFERS = 4;
/** After this many missed ticks we stop catching up and restart the schedule (the process was stalled). */
const MAX_CATCH_UP = 5;

export interface TsMixerOptions {
  /** Address the party sockets bind to: rtpengine must reach it. */
  host: string;
  /** Called once per tick with how late it ran, in ms (for the lateness histogram). */
  onTick?: (latenessMs: number) => void;
}

class RtpParty implements BridgeParty {
  readonly counters: PartyCounters = { packetsIn: 0, packetsOut: 0, packetsDropped: 0 };
  listen = true;
  talk = true;
  music: 'none' | 'file' | 'silence' = 'none';
  /** This tick's decoded input and how many of its samples really arrived. */
  readonly input = new Int16Array(FRAME_SAMPLES);
  heardSamples = 0;
  private readonly jitter = new JitterBuffer();
  private readonly out: Buffer[] = [];
  private outIndex = 0;
  /** The listener's codec as the send path uses it (set by setRemote; PCMU until then). */
  private pt = PayloadTypes.PCMU;
  private enc = EncodeTables.PCMU;
  private silence = SilenceByte.PCMU;
  private connected = false;
  private readonly ssrc = randomInt(1, 0xffffffff);
  private seq = randomInt(0, 0xffff);
  private ts = randomInt(0, 0xffffffff);
  private first = true;
  private musicSamples: Int16Array | null = null;
  private musicPos = 0;

  constructor(
    readonly id: string,
    private readonly socket: dgram.Socket,
    readonly local: { host: string; port: number },
    private readonly totals: MixerTotals,
  ) {
    for (let i = 0; i < OUT_BUFFERS; i++) {
      // V=2 and our SSRC never change: write them once, send() fills in the rest of the header.
      const buf = Buffer.alloc(RTP_HEADER + FRAME_SAMPLES);
      buf[0] = 0x80;
      buf.writeUInt32BE(this.ssrc, 8);
      this.out.push(buf);
    }
    socket.on('message', (msg) => this.receive(msg));
    // Sends have no callback (hot path): failures surface here; a dead peer is rtpengine's to report.
    socket.on('error', () => {
      this.counters.packetsDropped++;
      this.totals.packetsDropped++;
    });
  }

  private receive(msg: Buffer): void {
    const len = msg.length;
    if (len < RTP_HEADER || msg[0]! >> 6 !== 2) return this.drop();
    const table = DecodeTablesByPayloadType[msg[1]! & 0x7f];
    // RTCP (rtcp-mux) and telephone-event share the socket; they are not audio to mix.
    if (!table) return;
    let offset = RTP_HEADER + (msg[0]! & 0x0f) * 4;
    if (msg[0]! & 0x10) {
      if (offset + 4 > len) return this.drop();
      offset += 4 + msg.readUInt16BE(offset + 2) * 4;
    }
    let end = len;
    if (msg[0]! & 0x20) end -= msg[len - 1]!;
    if (end <= offset) return this.drop();
    this.counters.packetsIn++;
    this.totals.packetsIn++;
    if (!this.jitter.push(msg.readUInt32BE(8), msg.readUInt32BE(4), msg, offset, end - offset, table)) this.drop();
  }

  private drop(): void {
    this.counters.packetsDropped++;
    this.totals.packetsDropped++;
  }

  async setRemote(host: string, port: number, codec: Codec): Promise<void> {
    this.pt = PayloadTypes[codec];
    this.enc = EncodeTables[codec];
    this.silence = SilenceByte[codec];
    if (this.connected) {
      const peer = this.socket.remoteAddress();
      if (peer.address === host && peer.port === port) return;
      this.connected = false;
      this.socket.disconnect();
    }
    // A connected socket skips the per-send address lookup and accepts only the leg's rtpengine.
    await new Promise<void>((resolve, reject) => {
      this.socket.connect(port, host, (err?: Error) => (err ? reject(err) : resolve()));
    });
    this.connected = true;
  }

  setFlags(listen: boolean, talk: boolean): void {
    this.listen = listen;
    this.talk = talk;
  }

  playMusic(samples: Int16Array | null): void {
    this.musicSamples = samples && samples.length > 0 ? samples : null;
    this.musicPos = 0;
    this.music = this.musicSamples ? 'file' : 'silence';
  }

  stopMusic(): void {
    this.musicSamples = null;
    this.music = 'none';
  }

  pullInput(): void {
    this.heardSamples = this.jitter.pull(this.input);
  }

  /** Sends this tick's frame: music, silence, or the bridge sum minus our own voice. */
  send(sum: Int32Array): void {
    if (!this.connected) return;
    const buf = this.out[this.outIndex]!;
    this.outIndex = (this.outIndex + 1) % OUT_BUFFERS;
    buf[1] = this.pt | (this.first ? 0x80 : 0);
    buf.writeUInt16BE(this.seq, 2);
    buf.writeUInt32BE(this.ts, 4);
    this.first = false;
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME_SAMPLES) >>> 0;
    const enc = this.enc;
    const music = this.musicSamples;
    if (music) {
      let pos = this.musicPos;
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        buf[RTP_HEADER + i] = enc[music[pos]! + 32768]!;
        if (++pos === music.length) pos = 0;
      }
      this.musicPos = pos;
    } else if (this.music === 'silence' || !this.listen) {
      buf.fill(this.silence, RTP_HEADER);
    } else {
      const own = this.talk && this.heardSamples > 0;
      const input = this.input;
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        let v = own ? sum[i]! - input[i]! : sum[i]!;
        if (v > 32767) v = 32767;
        else if (v < -32768) v = -32768;
        buf[RTP_HEADER + i] = enc[v + 32768]!;
      }
    }
    this.socket.send(buf);
    this.counters.packetsOut++;
    this.totals.packetsOut++;
  }

  async close(): Promise<void> {
    // A closed socket throws on send: make sure no tick tries.
    this.connected = false;
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

class MixBridge implements MediaBridge {
  private readonly members = new Map<string, RtpParty>();
  private list: RtpParty[] = [];
  private readonly sum = new Int32Array(FRAME_SAMPLES);

  constructor(
    readonly id: string,
    private readonly onDestroy: (b: MixBridge) => void,
  ) {}

  get parties(): ReadonlyMap<string, BridgeParty> {
    return this.members;
  }

  add(party: BridgeParty): void {
    if (!(party instanceof RtpParty)) throw new Error('party was not created by this mixer');
    this.members.set(party.id, party);
    this.list = [...this.members.values()];
  }

  remove(partyId: string): BridgeParty | undefined {
    const party = this.members.get(partyId);
    if (!party) return undefined;
    this.members.delete(partyId);
    this.list = [...this.members.values()];
    return party;
  }

  tick(): void {
    const parties = this.list;
    const sum = this.sum;
    sum.fill(0);
    for (const p of parties) {
      p.pullInput();
      if (p.talk && p.heardSamples > 0) {
        const input = p.input;
        for (let i = 0; i < FRAME_SAMPLES; i++) sum[i]! += input[i]!;
      }
    }
    for (const p of parties) p.send(sum);
  }

  async destroy(): Promise<void> {
    this.onDestroy(this);
    const parties = this.list;
    this.members.clear();
    this.list = [];
    await Promise.all(parties.map((p) => p.close()));
  }
}

export class TsMixer implements MixerEngine {
  readonly totals: MixerTotals = { packetsIn: 0, packetsOut: 0, packetsDropped: 0, ticks: 0, worstLatenessMs: 0 };
  private readonly bridges = new Set<MixBridge>();
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(private readonly opts: TsMixerOptions) {}

  createBridge(id: string): MediaBridge {
    const bridge = new MixBridge(id, (b) => this.bridges.delete(b));
    this.bridges.add(bridge);
    this.ensureRunning();
    return bridge;
  }

  async createParty(id: string): Promise<BridgeParty> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, this.opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RtpParty(id, socket, { host: this.opts.host, port: socket.address().port }, this.totals);
  }

  resetWorstLateness(): void {
    this.totals.worstLatenessMs = 0;
  }

  private ensureRunning(): void {
    if (this.timer) return;
    this.next = performance.now() + TICK_MS;
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.run(), Math.max(0, this.next - performance.now()));
    // Bridges hold sockets that keep the process alive; the clock alone must not.
    this.timer.unref();
  }

  private run(): void {
    if (this.bridges.size === 0) {
      this.timer = undefined;
      return;
    }
    try {
      let now = performance.now();
      let caughtUp = 0;
      while (now >= this.next && caughtUp < MAX_CATCH_UP) {
        const lateness = now - this.next;
        if (lateness > this.totals.worstLatenessMs) this.totals.worstLatenessMs = lateness;
        this.opts.onTick?.(lateness);
        for (const bridge of this.bridges) bridge.tick();
        this.totals.ticks++;
        this.next += TICK_MS;
        caughtUp++;
        now = performance.now();
      }
      if (now - this.next > TICK_MS * MAX_CATCH_UP) this.next = now + TICK_MS;
    } finally {
      // Whatever one tick did, the clock of every other conference keeps running.
      this.schedule();
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all([...this.bridges].map((b) => b.destroy()));
  }
}
