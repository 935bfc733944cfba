/**
 * Many phones in one process for benchmarks: one SIP stack (ours) answering and placing calls for
 * every user, and per party a lean RTP endpoint (PCMU only). The tone of each endpoint is one
 * precomputed 20 ms frame (tones are multiples of 50 Hz, so a frame holds whole periods) and one
 * shared timer sends every endpoint's frame; received packets are only counted, except on an
 * endpoint being watched, where each packet is decoded and the last 40 ms are checked by Goertzel
 * detection. That keeps hundreds of parties affordable on a small machine.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parse } from 'sdp-transform';
import { DecodeTables, EncodeTables } from '../../media-controller/mixer/g711.js';
import { createSipStack, type Dialog, type ServerRequest, type SipStack } from '../../signaling/sip/index.js';
import { toneShare } from '../../test/support/goertzel.js';
import { MUSIC_NOTES } from '../../test/support/tone-phone.js';

const FRAME = 160;
const WINDOW_FRAMES = 2;
/** Sequence steps this large, forward or back, are a new source (re-anchored media), not loss (RFC 3550 A.1). */
const MAX_SEQ_GAP = 3000;
const MAX_MISORDER = 100;

/** What a watched endpoint heard over its last 40 ms. */
export interface Window {
  /** Share (0..1) of the window's energy at `frequency`. */
  share(frequency: number): number;
  /** The largest share of one of the hold music notes. */
  music(): number;
}

interface Watch {
  check: (w: Window) => boolean;
  resolve: (atMs: number) => void;
}

export class RtpEndpoint {
  packets = 0;
  /**
   * Packets the sender's sequence numbers say were sent to us (RFC 3550 A.3): the gaps count, a
   * duplicate or late packet does not, and a jump (a new source) counts one.
   */
  expected = 0;
  sent = 0;
  private lastSeq = -1;
  /** performance.now() of the first frame sent with the tone set by the last setFrequency. */
  toneSentAt = NaN;
  private toneChanged = false;
  private remote: { host: string; port: number } | undefined;
  private seq = randomInt(0, 0xffff);
  private ts = randomInt(0, 0xffffffff);
  private readonly ssrc = randomInt(1, 0xffffffff);
  private readonly packet = Buffer.alloc(12 + FRAME);
  private readonly window = new Int16Array(FRAME * WINDOW_FRAMES);
  private filled = 0;
  private watch: Watch | undefined;
  private sdpVersion = 1;

  constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
    private tone: number,
  ) {
    this.fill(tone);
    this.packet[0] = 0x80;
    this.packet[1] = 0;
    this.packet.writeUInt32BE(this.ssrc, 8);
    socket.on('message', (msg) => this.receive(msg));
  }

  get frequency(): number {
    return this.tone;
  }

  /** Sends `frequency` from the next frame on (its send time becomes toneSentAt). */
  setFrequency(frequency: number): void {
    this.fill(frequency);
    this.tone = frequency;
    this.toneChanged = true;
  }

  get answered(): boolean {
    return this.remote !== undefined;
  }

  offer(): string {
    return this.sdp();
  }

  /** Answers an offer (PCMU required) and starts sending. */
  answer(offer: string): string {
    this.remote = pcmuPeer(offer);
    return this.sdp();
  }

  accept(answer: string): void {
    this.remote = pcmuPeer(answer);
  }

  /** Sends one frame (called by the bank's shared timer). */
  sendFrame(): void {
    if (!this.remote) return;
    this.packet.writeUInt16BE(this.seq, 2);
    this.packet.writeUInt32BE(this.ts, 4);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + FRAME) >>> 0;
    this.sent++;
    if (this.toneChanged) {
      this.toneChanged = false;
      this.toneSentAt = performance.now();
    }
    this.socket.send(this.packet, this.remote.port, this.remote.host);
  }

  /**
   * Resolves with the performance.now() of the packet after which the last 40 ms satisfy `check`
   * (only packets from now on count); rejects after `timeoutMs`.
   */
  until(check: (w: Window) => boolean, timeoutMs: number, show: readonly number[] = []): Promise<number> {
    if (this.watch) return Promise.reject(new Error(`endpoint ${this.port} is already watched`));
    this.filled = 0;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watch = undefined;
        reject(new Error(`endpoint ${this.port}: condition not met within ${timeoutMs} ms; last 40 ms: ${this.describe(show)}`));
      }, timeoutMs);
      this.watch = {
        check,
        resolve: (at) => {
          clearTimeout(timer);
          this.watch = undefined;
          resolve(at);
        },
      };
    });
  }

  close(): void {
    this.watch = undefined;
    this.socket.close();
  }

  private fill(frequency: number): void {
    if (frequency % 50 !== 0) throw new Error(`tone ${frequency} Hz is not a multiple of 50 Hz: a 20 ms frame would not hold whole periods`);
    const enc = EncodeTables.PCMU;
    for (let i = 0; i < FRAME; i++) this.packet[12 + i] = enc[Math.round(4000 * Math.sin((2 * Math.PI * frequency * i) / 8000)) + 32768]!;
  }

  private receive(msg: Buffer): void {
    this.packets++;
    if (msg.length >= 12) {
      const seq = msg.readUInt16BE(2);
      const step = this.lastSeq < 0 ? 1 : (seq - this.lastSeq) & 0xffff;
      // A step back of up to MAX_MISORDER is a duplicate or a late packet; a longer one, as a long step forward, a new source.
      if (step !== 0 && step <= 0x10000 - MAX_MISORDER) {
        this.expected += step < MAX_SEQ_GAP ? step : 1;
        this.lastSeq = seq;
      }
    }
    const watch = this.watch;
    if (!watch || msg.length <= 12 || (msg[1]! & 0x7f) !== 0) return;
    const at = performance.now();
    const offset = 12 + (msg[0]! & 0x0f) * 4;
    const n = Math.min(FRAME, msg.length - offset);
    this.window.copyWithin(0, FRAME);
    const table = DecodeTables.PCMU;
    for (let i = 0; i < FRAME; i++) this.window[FRAME * (WINDOW_FRAMES - 1) + i] = i < n ? table[msg[offset + i]!]! : 0;
    this.filled = Math.min(WINDOW_FRAMES, this.filled + 1);
    if (this.filled < WINDOW_FRAMES) return;
    if (watch.check(this.view())) watch.resolve(at);
  }

  private view(): Window {
    const samples = this.window;
    return {
      share: (f) => toneShare(samples, f, 8000),
      music: () => Math.max(...MUSIC_NOTES.map((f) => toneShare(samples, f, 8000))),
    };
  }

  private describe(show: readonly number[]): string {
    if (this.filled < WINDOW_FRAMES) return `only ${this.filled} packet(s) received`;
    const w = this.view();
    return `music ${w.music().toFixed(2)}, ${show.map((f) => `${f} Hz ${w.share(f).toFixed(2)}`).join(', ')}`;
  }

  private sdp(): string {
    return [
      'v=0',
      `o=- ${this.port} ${this.sdpVersion++} IN IP4 127.0.0.1`,
      's=lean',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      `m=audio ${this.port} RTP/AVP 0`,
      'a=rtpmap:0 PCMU/8000',
      'a=ptime:20',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }
}

function pcmuPeer(sdp: string): { host: string; port: number } {
  const session = parse(sdp);
  const audio = session.media.find((m) => m.type === 'audio');
  const host = audio?.connection?.ip ?? session.connection?.ip;
  if (!audio || !host) throw new Error('SDP without audio or connection address');
  if (!String(audio.payloads ?? '').split(' ').includes('0')) throw new Error(`SDP without PCMU: ${String(audio.payloads)}`);
  return { host, port: audio.port };
}

/** Every phone of a benchmark: users by DN, one SIP stack, one send timer. */
export class PhoneBank {
  private readonly endpoints = new Map<string, RtpEndpoint>();
  /** Calls this bank placed, by caller: their dialog and the callee. */
  private readonly placed = new Map<string, { dialog: Dialog; to: string }>();
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private sentTicks = 0;

  private constructor(readonly stack: SipStack) {
    stack.onRequest((req) => this.onRequest(req));
  }

  static async start(): Promise<PhoneBank> {
    const stack = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], userAgent: 'huddle-bench-phones' });
    const bank = new PhoneBank(stack);
    bank.started = performance.now();
    // An absolute 20 ms schedule: a late timer sends the frames it owes (at most 5), not fewer.
    bank.timer = setInterval(() => bank.tick(), 10);
    return bank;
  }

  get sipPort(): number {
    return this.stack.addresses[0]!.port;
  }

  /** A party `user` sending `frequency`. */
  async add(user: string, frequency: number): Promise<RtpEndpoint> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 256 * 1024 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    const ep = new RtpEndpoint(socket, socket.address().port, frequency);
    this.endpoints.set(user, ep);
    return ep;
  }

  endpoint(user: string): RtpEndpoint {
    const ep = this.endpoints.get(user);
    if (!ep) throw new Error(`no phone ${user}`);
    return ep;
  }

  /**
   * `from` dials `to` through the server at `server` (host:port); resolves once answered. With
   * `proxy` (host:port), the request URI names `server` and the INVITE goes to `proxy`.
   */
  async call(from: string, to: string, server: string, proxy?: string): Promise<void> {
    const ep = this.endpoint(from);
    const destination = proxy ? { protocol: 'udp' as const, host: proxy.slice(0, proxy.lastIndexOf(':')), port: Number(proxy.slice(proxy.lastIndexOf(':') + 1)) } : undefined;
    const res = await this.stack.invite(`sip:${to}@${server}`, { from: `sip:${from}@127.0.0.1`, contactUser: from, body: ep.offer(), destination }).result;
    if (!res.ok) throw new Error(`${from} -> ${to}: ${res.status} ${res.reason}`);
    ep.accept(res.response.body.toString());
    this.track(res.dialog, ep);
    this.placed.set(from, { dialog: res.dialog, to });
  }

  /** Ends the call `from` placed and removes both its parties (when the callee is a phone of this bank too). */
  async hangUp(from: string): Promise<void> {
    const call = this.placed.get(from);
    if (!call) throw new Error(`${from} placed no call`);
    this.placed.delete(from);
    for (const user of [from, call.to]) {
      this.endpoints.get(user)?.close();
      this.endpoints.delete(user);
    }
    const res = await call.dialog.bye();
    if (res.status !== 200) throw new Error(`${from}: BYE answered ${res.status} ${res.reason}`);
  }

  /** Packets received so far by every endpoint. */
  packetCounts(): number[] {
    return [...this.endpoints.values()].map((e) => e.packets);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.stack.close(200);
    for (const ep of this.endpoints.values()) ep.close();
  }

  private tick(): void {
    const due = Math.floor((performance.now() - this.started) / 20);
    const owed = Math.min(5, due - this.sentTicks);
    this.sentTicks = due;
    for (let k = 0; k < owed; k++) for (const ep of this.endpoints.values()) ep.sendFrame();
  }

  private onRequest(req: ServerRequest): void {
    if (req.method === 'OPTIONS') return req.respond(200);
    if (req.method !== 'INVITE') return req.respond(405);
    const uri = req.message.requestUri;
    const ep = uri.scheme === 'tel' ? undefined : this.endpoints.get(uri.user ?? '');
    if (!ep) return req.respond(404);
    let answer: string;
    try {
      answer = ep.answer(req.message.body.toString());
    } catch {
      return req.respond(488);
    }
    const dialog = req.accept({ body: answer, contact: this.stack.contact(uri.scheme === 'tel' ? undefined : uri.user) });
    this.track(dialog, ep);
  }

  /** In-dialog requests: re-INVITEs get our SDP (same port), the rest 200. */
  private track(dialog: Dialog, ep: RtpEndpoint): void {
    dialog.onRequest((req) => {
      if (req.method !== 'INVITE') return req.respond(200);
      const offer = req.message.body.toString();
      if (offer.length === 0) return req.respond(200, { body: ep.offer() });
      try {
        req.respond(200, { body: ep.answer(offer) });
      } catch {
        req.respond(488);
      }
    });
  }
}
