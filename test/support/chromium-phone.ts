/**
 * A browser's media, for real: headless Chromium with a fake microphone playing a tone file, one
 * RTCPeerConnection (ICE, DTLS-SRTP, rtcp-mux, max-bundle, as a softphone page makes it), and what
 * it plays out analysed in the page (a Web Audio AnalyserNode on the remote stream, Goertzel over
 * its samples). It offers and answers SDP for SIP.js (ws-phone.ts `SdpPeer`), so the SIP side can
 * be a SIP.js user agent in Node while the media is the browser's own.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { judgeHeard, MUSIC_NOTES, TONE_CANDIDATES, type Heard } from './tone-phone.js';
import type { SdpPeer } from './ws-phone.js';

export const CHROMIUM = '/usr/bin/chromium';

/** The page: the softphone's media part, with its analysis hooks as globals for page.evaluate. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>huddle WebRTC media test</title>
<script>
let pc;
let analyser;
const packets = [];
const ready = (async () => {
  // Noise suppression learns a steady tone as noise and fades it out within seconds: off, as are the
  // echo canceller and gain control, so the far end hears the tone the file holds.
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  pc = new RTCPeerConnection({ bundlePolicy: 'balanced', rtcpMuxPolicy: 'require' });
  for (const track of mic.getTracks()) pc.addTrack(track, mic);
  pc.ontrack = (e) => listen(e.streams[0] || new MediaStream([e.track]));
  setInterval(async () => {
    let received = 0;
    (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') received += r.packetsReceived; });
    packets.push([Date.now(), received]);
    if (packets.length > 40) packets.shift();
  }, 250);
})();
function listen(stream) {
  // Chromium feeds a remote WebRTC stream to Web Audio only while a media element plays it too.
  const element = new Audio();
  element.muted = true;
  element.srcObject = stream;
  element.play().catch(() => {});
  const audio = new AudioContext();
  analyser = audio.createAnalyser();
  analyser.fftSize = 32768;
  audio.createMediaStreamSource(stream).connect(analyser);
}
function gathered() {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
}
async function offer() {
  await ready;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
}
async function answer(sdp) {
  await ready;
  await pc.setRemoteDescription({ type: 'offer', sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered();
  return pc.localDescription.sdp;
}
async function accept(sdp) {
  await pc.setRemoteDescription({ type: 'answer', sdp });
}
/** Level and per-frequency energy share of the last ~0.68 s played out; packets received over the last second. */
function heard(frequencies) {
  const now = Date.now();
  const old = packets.find(([at]) => at >= now - 1000);
  const last = packets[packets.length - 1];
  const received = old && last ? last[1] - old[1] : 0;
  if (!analyser) return { level: 0, shares: frequencies.map(() => 0), packets: received };
  const x = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(x);
  let energy = 0;
  for (const v of x) energy += v * v;
  const rate = analyser.context.sampleRate;
  const shares = frequencies.map((f) => {
    const coeff = 2 * Math.cos((2 * Math.PI * f) / rate);
    let s1 = 0, s2 = 0;
    for (const v of x) { const s0 = v + coeff * s1 - s2; s2 = s1; s1 = s0; }
    return energy === 0 ? 0 : (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / (x.length * energy);
  });
  return { level: Math.sqrt(energy / x.length) * 32768, shares, packets: received };
}
function connection() {
  return { ice: pc ? pc.iceConnectionState : 'none', peer: pc ? pc.connectionState : 'none' };
}
</script>`;

/** A 16-bit mono PCM WAV of a sine (Chromium loops the file as its microphone). */
export function toneWav(file: string, frequency: number, seconds = 2, rate = 48000, amplitude = 4000): void {
  const n = seconds * rate;
  const wav = Buffer.alloc(44 + n * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + n * 2, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(n * 2, 40);
  // A whole number of periods per file, so the loop has no click.
  const f = Math.round(frequency * seconds) / seconds;
  for (let i = 0; i < n; i++) wav.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * f * i) / rate)), 44 + i * 2);
  writeFileSync(file, wav);
}

export class ChromiumPhone implements SdpPeer {
  private constructor(
    readonly frequency: number,
    private readonly browser: Browser,
    readonly page: Page,
    private readonly server: http.Server,
    private readonly dir: string,
  ) {}

  /** Starts Chromium whose microphone sends `frequency`; fails naming the Debian package when it is missing. */
  static async start(frequency: number): Promise<ChromiumPhone> {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install the Debian package chromium (apt-get install -y chromium)`);
    const dir = mkdtempSync(path.join(tmpdir(), 'huddle-chromium-'));
    const wav = path.join(dir, 'mic.wav');
    toneWav(wav, frequency);
    // getUserMedia needs a secure context: http://127.0.0.1 is one.
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${wav}`,
        '--use-fake-ui-for-media-stream',
        '--autoplay-policy=no-user-gesture-required',
        // Tests run on 127.0.0.1 only: Chromium gathers no loopback ICE candidates unless told to.
        '--allow-loopback-in-peer-connection',
        '--disable-features=WebRtcHideLocalIpsWithMdns',
        '--no-sandbox',
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      return new ChromiumPhone(frequency, browser, page, server, dir);
    } catch (err) {
      await browser.close();
      server.close();
      throw err;
    }
  }

  offer(): Promise<string> {
    return this.page.evaluate('offer()');
  }

  answer(remoteOffer: string): Promise<string> {
    return this.page.evaluate(`answer(${JSON.stringify(remoteOffer)})`);
  }

  async accept(remoteAnswer: string): Promise<void> {
    await this.page.evaluate(`accept(${JSON.stringify(remoteAnswer)})`);
  }

  /** The peer connection's ICE and overall state ('connected' once DTLS-SRTP is up). */
  connection(): Promise<{ ice: string; peer: string }> {
    return this.page.evaluate('connection()');
  }

  /** What the page plays out now (the last ~0.68 s), judged as tone phones judge theirs. */
  async heard(): Promise<Heard> {
    const frequencies = [...TONE_CANDIDATES, ...MUSIC_NOTES];
    const r = await this.page.evaluate<{ level: number; shares: number[]; packets: number }>(`heard(${JSON.stringify(frequencies)})`);
    return judgeHeard(r.level, (f) => r.shares[frequencies.indexOf(f)] ?? 0, r.packets);
  }

  /** Resolves with the first Heard that satisfies `predicate`; rejects after `timeoutMs` naming the last one. */
  async waitFor(predicate: (h: Heard) => boolean, timeoutMs = 8000): Promise<Heard> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.heard();
    for (let i = 0; i < 1000; i++) {
      if (predicate(last)) return last;
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 100));
      last = await this.heard();
    }
    throw new Error(`browser (tone ${this.frequency}): condition not met within ${timeoutMs} ms; last heard ${JSON.stringify(last)}, connection ${JSON.stringify(await this.connection())}`);
  }

  async close(): Promise<void> {
    await this.browser.close();
    await new Promise((resolve) => this.server.close(resolve));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
