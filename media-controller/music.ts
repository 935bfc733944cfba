/**
 * Music files for the bridge to inject: WAV (PCM 8/16-bit, G.711 µ-law/A-law; any rate, mono or
 * stereo) decoded once to 8 kHz mono linear samples and cached. The file is looked at on every
 * play, so a changed option or a replaced file applies the next time music starts.
 */
import { readFile, stat } from 'node:fs/promises';
import { DecodeTables } from './mixer/g711.js';

export class MusicFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'MusicFileError';
  }
}

const TARGET_RATE = 8000;

/** Decodes a WAV file's bytes to 8 kHz mono 16-bit samples. Throws with the reason when it cannot. */
export function decodeWav(bytes: Buffer): Int16Array {
  if (bytes.length < 12 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let format = 0;
  let channels = 0;
  let rate = 0;
  let bits = 0;
  let data: Buffer | undefined;
  for (let pos = 12; pos + 8 <= bytes.length; ) {
    const id = bytes.toString('ascii', pos, pos + 4);
    const size = bytes.readUInt32LE(pos + 4);
    const body = bytes.subarray(pos + 8, Math.min(bytes.length, pos + 8 + size));
    if (id === 'fmt ') {
      if (body.length < 16) throw new Error('fmt chunk too short');
      format = body.readUInt16LE(0);
      channels = body.readUInt16LE(2);
      rate = body.readUInt32LE(4);
      bits = body.readUInt16LE(14);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === 0xfffe && body.length >= 26) format = body.readUInt16LE(24);
    } else if (id === 'data') {
      data = body;
    }
    pos += 8 + size + (size & 1);
  }
  if (!format) throw new Error('no fmt chunk');
  if (!data) throw new Error('no data chunk');
  if (channels < 1 || rate < 1000) throw new Error(`unsupported layout: ${channels} channels at ${rate} Hz`);
  const sampleOf = sampleReader(format, bits, data);
  const bytesPerSample = bits / 8;
  const frames = Math.floor(data.length / (bytesPerSample * channels));
  if (frames === 0) throw new Error('no audio samples');
  const mono = new Float64Array(frames);
  for (let f = 0; f < frames; f++) {
    let acc = 0;
    for (let c = 0; c < channels; c++) acc += sampleOf((f * channels + c) * bytesPerSample);
    mono[f] = acc / channels;
  }
  return resample(mono, rate);
}

function sampleReader(format: number, bits: number, data: Buffer): (offset: number) => number {
  if (format === 1 && bits === 16) return (o) => data.readInt16LE(o);
  if (format === 1 && bits === 8) return (o) => (data[o]! - 128) << 8;
  if (format === 6 && bits === 8) return (o) => DecodeTables.PCMA[data[o]!]!;
  if (format === 7 && bits === 8) return (o) => DecodeTables.PCMU[data[o]!]!;
  throw new Error(`unsupported WAV encoding (format ${format}, ${bits} bits): use PCM 16-bit, PCM 8-bit or G.711`);
}

/** Linear interpolation: enough for music on hold heard through G.711. */
function resample(mono: Float64Array, rate: number): Int16Array {
  const length = Math.max(1, Math.floor((mono.length * TARGET_RATE) / rate));
  const out = new Int16Array(length);
  const step = rate / TARGET_RATE;
  for (let i = 0; i < length; i++) {
    const x = i * step;
    const i0 = Math.floor(x);
    const i1 = Math.min(i0 + 1, mono.length - 1);
    const v = mono[i0]! + (mono[i1]! - mono[i0]!) * (x - i0);
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

interface Cached {
  mtimeMs: number;
  size: number;
  samples: Int16Array;
}

export class MusicLibrary {
  private readonly cache = new Map<string, Cached>();

  /** Samples of `file`, from the cache unless the file changed since it was decoded. */
  async load(file: string): Promise<Int16Array> {
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      throw new MusicFileError(file, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const cached = this.cache.get(file);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached.samples;
    let samples: Int16Array;
    try {
      samples = decodeWav(await readFile(file));
    } catch (err) {
      this.cache.delete(file);
      throw new MusicFileError(file, `cannot play ${file}: ${(err as Error).message}`);
    }
    this.cache.set(file, { mtimeMs: info.mtimeMs, size: info.size, samples });
    return samples;
  }
}
