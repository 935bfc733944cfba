import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EncodeTables } from './mixer/g711.js';
import { MusicFileError, MusicLibrary, decodeWav } from './music.js';

function wav(opts: { format: number; channels: number; rate: number; bits: number; data: Buffer }): Buffer {
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(opts.format, 0);
  fmt.writeUInt16LE(opts.channels, 2);
  fmt.writeUInt32LE(opts.rate, 4);
  fmt.writeUInt32LE((opts.rate * opts.channels * opts.bits) / 8, 8);
  fmt.writeUInt16LE((opts.channels * opts.bits) / 8, 12);
  fmt.writeUInt16LE(opts.bits, 14);
  const chunk = (id: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'ascii');
    head.writeUInt32LE(body.length, 4);
    return Buffer.concat([head, body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const body = Buffer.concat([Buffer.from('WAVE'), chunk('fmt ', fmt), chunk('LIST', Buffer.from('odd')), chunk('data', opts.data)]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'ascii');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

function pcm16(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeInt16LE(v, i * 2));
  return b;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-music-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('decodeWav', () => {
  it('reads 8 kHz 16-bit mono as is (after skipping unknown chunks)', () => {
    expect([...decodeWav(wav({ format: 1, channels: 1, rate: 8000, bits: 16, data: pcm16([1, -2, 300]) }))]).toEqual([1, -2, 300]);
  });

  it('downmixes stereo and resamples 16 kHz to 8 kHz', () => {
    const out = decodeWav(wav({ format: 1, channels: 2, rate: 16000, bits: 16, data: pcm16([100, 300, 100, 300, 500, 700, 500, 700]) }));
    expect([...out]).toEqual([200, 600]);
  });

  it('reads G.711 µ-law and 8-bit PCM WAVs', () => {
    const mu = Buffer.from([EncodeTables.PCMU[1000 + 32768]!]);
    expect(Math.abs(decodeWav(wav({ format: 7, channels: 1, rate: 8000, bits: 8, data: mu }))[0]! - 1000)).toBeLessThan(40);
    expect([...decodeWav(wav({ format: 1, channels: 1, rate: 8000, bits: 8, data: Buffer.from([128, 255]) }))]).toEqual([0, 127 << 8]);
  });

  it('refuses what it cannot play, saying why', () => {
    expect(() => decodeWav(Buffer.from('hello world, not a wav'))).toThrow(/RIFF/);
    expect(() => decodeWav(wav({ format: 1, channels: 1, rate: 8000, bits: 24, data: Buffer.alloc(6) }))).toThrow(/unsupported WAV encoding/);
    expect(() => decodeWav(wav({ format: 1, channels: 1, rate: 8000, bits: 16, data: Buffer.alloc(0) }))).toThrow(/no audio/);
  });
});

describe('MusicLibrary', () => {
  it('caches decoded files and re-reads a file that changed', async () => {
    const lib = new MusicLibrary();
    const file = path.join(dir, 'm.wav');
    writeFileSync(file, wav({ format: 1, channels: 1, rate: 8000, bits: 16, data: pcm16([5, 6]) }));
    const first = await lib.load(file);
    expect(await lib.load(file)).toBe(first);
    writeFileSync(file, wav({ format: 1, channels: 1, rate: 8000, bits: 16, data: pcm16([7, 8, 9]) }));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect([...(await lib.load(file))]).toEqual([7, 8, 9]);
  });

  it('reports a missing or broken file as MusicFileError', async () => {
    const lib = new MusicLibrary();
    await expect(lib.load(path.join(dir, 'missing.wav'))).rejects.toBeInstanceOf(MusicFileError);
    const junk = path.join(dir, 'junk.wav');
    writeFileSync(junk, 'junk');
    await expect(lib.load(junk)).rejects.toThrow(/cannot play/);
  });

  it('decodes the shipped hold music', async () => {
    const samples = await new MusicLibrary().load(path.resolve(import.meta.dirname, '../config/music/on_hold.wav'));
    expect(samples.length).toBe(8000);
  });
});
