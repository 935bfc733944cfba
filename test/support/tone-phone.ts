/**
 * Test phones that listen: an RTP endpoint on 127.0.0.1 that speaks SDP (offer/answer, PCMU and
 * PCMA), sends its own sine tone every 20 ms, and tells which party tones and whether the hold
 * music it hears, by Goertzel detection over the last second of received audio. Usable alone
 * (media tests) or behind the SIP test phone (it only needs SDP in and out).
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { parse, write, type SessionDescription } from 'sdp-transform';
import { DecodeTables, EncodeTables, PayloadTypes, type Codec } from '../../media-controller/mixer/g711.js';
import { rms, toneShare } from './goertzel.js';

/** The notes of config/music/on_hold.wav. */
export const MUSIC_NOTES = [523.25, 659.25, 783.99] as const;

/** Every party tone (toneFrequency(0..15)). */
export const TONE_CANDIDATES: readonly number[] = (() => {
  const list: number[] = [];
  for (let f = 350; list.length < 16; f += 150) {
    if (MUSIC_NOTES.every((n) => Math.abs(n - f) > 60)) list.push(f);
  }
  return list;
})();

/** The tone of party k (0-based): 350 + k*150 Hz, skipping frequencies near the music notes. */
export function toneFrequency(k: number): number {
  const f = TONE_CANDIDATES[k];
  if (f === undefined) throw new Error(`no tone for party ${k} (max ${TONE_CANDIDATES.length})`);
  return f;
}

export interface Heard {
  /** Party tones heard (from the toneFrequency list), ascending. */
  tones: number[];
  /** The hold music is heard. */
  music: boolean;
  /** Nothing audible (or nothing received). */
  silence: boolean;
  /** Packets received in the window. */
  packets: number;
}

export interface TonePhoneOptions {
  /** Hz of the tone we send; null sends silence. */
  frequency: number | null;
  /** Codecs we offer/accept, in preference order. */
  codecs?: Codec[];
  /** Peak amplitude of our tone (16-bit scale). */
  amplitude?: number;
}

const SAMPLE_RATE = 8000;
const FRAME = 160;
const TONE_SHARE = 0.05;
const MUSIC_SHARE = 0.03;
const SILENCE_RMS = 100;
const KEEP_MS = 3000;

interface Received {
  at: number;
  samples: Int16Array;
}

/**
 * What a listener hears from a window of audio: its level (RMS, 16-bit scale) and the share of
 * its energy at a frequency. One rule for tone phones and browsers (test/support/chromium-phone.ts).
 */
export function judgeHeard(level: number, share: (frequency: number) => number, packets: number): Heard {
  if (level < SILENCE_RMS) return { tones: [], music: false, silence: true, packets };
  const tones = TONE_CANDIDATES.filter((f) => share(f) > TONE_SHARE);
  const notes = MUSIC_NOTES.filter((f) => share(f) > MUSIC_SHARE).length;
  return { tones, music: notes >= 2, silence: false, packets };
}

export class TonePhone {
  private readonly received: Received[] = [];
  private remote: { host: string; port: number } | undefined;
  private codec: Codec;
  private timer: NodeJS.Timeout | undefined;
  private phase = 0;
  private seq = randomInt(0, 0xffff);
  private ts = randomInt(0, 0xffffffff);
  private readonly ssrc = randomInt(1, 0xffffffff);
  private readonly packet = Buffer.alloc(12 + FRAME);
  private sdpVersion = 1;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly host: string,
    readonly port: number,
    public frequency: number | null,
    private readonly codecs: Codec[],
    private readonly amplitude: number,
  ) {
    this.codec = codecs[0]!;
    socket.on('message', (msg) => this.receive(msg));
  }

  static async start(opts: TonePhoneOptions): Promise<TonePhone> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    return new TonePhone(socket, '127.0.0.1', socket.address().port, opts.frequency, opts.codecs ?? ['PCMU', 'PCMA'], opts.amplitude ?? 4000);
  }

  /** Our SDP offer (all our codecs). */
  offer(): string {
    return this.sdp(this.codecs);
  }

  /** Answers a remote offer: picks the first offered codec we support and starts sending. */
  answer(remoteOffer: string): string {
    const { host, port, codecs } = remoteMedia(remoteOffer);
    const codec = codecs.find((c) => this.codecs.includes(c));
    if (!codec) throw new Error(`no common codec in offer (offered: ${codecs.join(',') || 'none'})`);
    this.startSending(host, port, codec);
    return this.sdp([codec]);
  }

  /** Applies the answer to our offer and starts sending. */
  accept(remoteAnswer: string): void {
    const { host, port, codecs } = remoteMedia(remoteAnswer);
    const codec = codecs.find((c) => this.codecs.includes(c));
    if (!codec) throw new Error(`answer has none of our codecs (answered: ${codecs.join(',') || 'none'})`);
    this.startSending(host, port, codec);
  }

  get sendingCodec(): Codec {
    return this.codec;
  }

  /** What arrived over the last `windowMs`. */
  heard(windowMs = 1000): Heard {
    const since = Date.now() - windowMs;
    const chunks = this.received.filter((r) => r.at >= since);
    const total = chunks.reduce((n, c) => n + c.samples.length, 0);
    const samples = new Int16Array(total);
    let o = 0;
    for (const c of chunks) {
      samples.set(c.samples, o);
      o += c.samples.length;
    }
    return judgeHeard(rms(samples), (f) => toneShare(samples, f, SAMPLE_RATE), chunks.length);
  }

  /** The longest time between two packets received in the last 3 s, in ms: the audio gap of a failover. */
  longestGapMs(): number {
    let longest = 0;
    for (let i = 1; i < this.received.length; i++) longest = Math.max(longest, this.received[i]!.at - this.received[i - 1]!.at);
    return longest;
  }

  /**
   * The longest time between `from` and `to` (Date.now() values) without a received frame carrying
   * `frequency`, in ms (about 20 when that party was heard throughout). Frames are kept 3 s.
   */
  longestToneGapMs(frequency: number, from: number, to = Date.now()): number {
    let last = from;
    let longest = 0;
    for (const r of this.received) {
      if (r.at < from || r.at > to || !carries(r.samples, frequency)) continue;
      longest = Math.max(longest, r.at - last);
      last = r.at;
    }
    return Math.max(longest, to - last);
  }

  /** When the first frame carrying `frequency` arrived at or after `since` (Date.now() values). */
  toneOnsetAt(frequency: number, since: number): number | undefined {
    return this.received.find((r) => r.at >= since && carries(r.samples, frequency))?.at;
  }

  /** How many frames received at or after `since` carry `frequency` (a party that must not be heard). */
  framesWithTone(frequency: number, since: number): number {
    return this.received.filter((r) => r.at >= since && carries(r.samples, frequency)).length;
  }

  /** Forgets what was received so far (the next heard() only reflects audio from now on). */
  clear(): void {
    this.received.length = 0;
  }

  /** Resolves with the first Heard that satisfies `predicate`; rejects after `timeoutMs` naming the last one. */
  async waitFor(predicate: (h: Heard) => boolean, timeoutMs: number, windowMs = 1000): Promise<Heard> {
    const deadline = Date.now() + timeoutMs;
    let last = this.heard(windowMs);
    for (let i = 0; i < 10_000; i++) {
      if (predicate(last)) return last;
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 100));
      last = this.heard(windowMs);
    }
    throw new Error(`phone ${this.port} (tone ${this.frequency ?? 'none'}): condition not met within ${timeoutMs} ms; last heard ${JSON.stringify(last)}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private sdp(codecs: Codec[]): string {
    const session: SessionDescription = {
      version: 0,
      origin: { username: '-', sessionId: this.port, sessionVersion: this.sdpVersion++, netType: 'IN', ipVer: 4, address: this.host },
      name: 'tone-phone',
      connection: { version: 4, ip: this.host },
      timing: { start: 0, stop: 0 },
      media: [
        {
          type: 'audio',
          port: this.port,
          protocol: 'RTP/AVP',
          payloads: codecs.map((c) => PayloadTypes[c]).join(' '),
          rtp: codecs.map((c) => ({ payload: PayloadTypes[c], codec: c, rate: SAMPLE_RATE })),
          fmtp: [],
          ptime: 20,
          direction: 'sendrecv',
        },
      ],
    };
    return write(session);
  }

  private startSending(host: string, port: number, codec: Codec): void {
    this.remote = { host, port };
    this.codec = codec;
    if (this.timer) return;
    this.timer = setInterval(() => this.sendFrame(), 20);
  }

  private sendFrame(): void {
    if (!this.remote || this.closed) return;
    const p = this.packet;
    p[0] = 0x80;
    p[1] = PayloadTypes[this.codec];
    p.writeUInt16BE(this.seq, 2);
    p.writeUInt32BE(this.ts, 4);
    p.writeUInt32BE(this.ssrc, 8);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME) >>> 0;
    const enc = EncodeTables[this.codec];
    const step = this.frequency === null ? 0 : (2 * Math.PI * this.frequency) / SAMPLE_RATE;
    for (let i = 0; i < FRAME; i++) {
      const v = this.frequency === null ? 0 : Math.round(this.amplitude * Math.sin(this.phase));
      this.phase += step;
      p[12 + i] = enc[v + 32768]!;
    }
    this.phase %= 2 * Math.PI;
    this.socket.send(p, this.remote.port, this.remote.host);
  }

  private receive(msg: Buffer): void {
    if (msg.length <= 12 || msg[0]! >> 6 !== 2) return;
    const pt = msg[1]! & 0x7f;
    const table = pt === 0 ? DecodeTables.PCMU : pt === 8 ? DecodeTables.PCMA : undefined;
    if (!table) return;
    const offset = 12 + (msg[0]! & 0x0f) * 4;
    const samples = new Int16Array(Math.max(0, msg.length - offset));
    for (let i = 0; i < samples.length; i++) samples[i] = table[msg[offset + i]!]!;
    const now = Date.now();
    this.received.push({ at: now, samples });
    while (this.received.length > 0 && this.received[0]!.at < now - KEEP_MS) this.received.shift();
  }
}

/** One 20 ms frame is too short for the 1 s criteria of heard(): a clear share of its energy at the tone. */
function carries(samples: Int16Array, frequency: number): boolean {
  return rms(samples) >= SILENCE_RMS && toneShare(samples, frequency, SAMPLE_RATE) > 0.2;
}

function remoteMedia(sdp: string): { host: string; port: number; codecs: Codec[] } {
  const session = parse(sdp);
  const audio = session.media.find((m) => m.type === 'audio');
  if (!audio) throw new Error('SDP without audio');
  const host = audio.connection?.ip ?? session.connection?.ip;
  if (!host) throw new Error('SDP without connection address');
  const codecs: Codec[] = [];
  for (const pt of String(audio.payloads ?? '').split(' ').map(Number)) {
    const name = (audio.rtp.find((r) => r.payload === pt)?.codec ?? (pt === 0 ? 'PCMU' : pt === 8 ? 'PCMA' : '')).toUpperCase();
    if (name === 'PCMU' || name === 'PCMA') codecs.push(name);
  }
  return { host, port: audio.port, codecs };
}
