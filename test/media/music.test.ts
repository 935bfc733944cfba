import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveMusic } from '../../common/config/load.js';
import type { TonePhone } from '../support/tone-phone.js';
import { toneFrequency } from '../support/tone-phone.js';
import { MediaHarness } from './harness.js';

const HEAR_MS = 15_000;
const WINDOW = 600;
const sorted = (xs: (number | null)[]) => JSON.stringify([...xs].sort((x, y) => x! - y!));

describe('media-controller: music and listen/talk flags through real rtpengine', () => {
  let h: MediaHarness;
  let a: TonePhone;
  let b: TonePhone;
  let c: TonePhone;
  let musicFile: string;
  let tmp: string;
  const bridgeId = 'conf-music';

  beforeAll(async () => {
    h = await MediaHarness.start();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-music-'));
    musicFile = resolveMusic(h.musicRoot, h.live.cluster.spec.options['music-listen-disconnect']);
    await h.ok({ op: 'bridge.create', bridgeId });
    a = await h.phone(toneFrequency(0));
    b = await h.phone(toneFrequency(1));
    c = await h.phone(toneFrequency(2));
    await h.joinByOffer(bridgeId, 'a', a);
    await h.joinByCreate(bridgeId, 'b', b);
    await h.joinByOffer(bridgeId, 'c', c);
    await c.waitFor((x) => sorted(x.tones) === sorted([a.frequency, b.frequency]), HEAR_MS, WINDOW);
  });
  afterAll(async () => {
    await h?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const isolate = async (file: string | null) => {
    await h.ok({ op: 'leg.flags', bridgeId, legId: 'c', listen: false, talk: false });
    return h.send({ op: 'leg.music.play', bridgeId, legId: 'c', file });
  };
  const restore = async () => {
    await h.ok({ op: 'leg.music.stop', bridgeId, legId: 'c' });
    await h.ok({ op: 'leg.flags', bridgeId, legId: 'c', listen: true, talk: true });
    await c.waitFor((x) => sorted(x.tones) === sorted([a.frequency, b.frequency]) && !x.music, HEAR_MS, WINDOW);
    await a.waitFor((x) => sorted(x.tones) === sorted([b.frequency, c.frequency]), HEAR_MS, WINDOW);
    await b.waitFor((x) => sorted(x.tones) === sorted([a.frequency, c.frequency]), HEAR_MS, WINDOW);
  };
  /** c is out of the conference: a and b hear only each other. */
  const othersWithoutC = async () => {
    await a.waitFor((x) => sorted(x.tones) === sorted([b.frequency]) && !x.music, HEAR_MS, WINDOW);
    await b.waitFor((x) => sorted(x.tones) === sorted([a.frequency]) && !x.music, HEAR_MS, WINDOW);
  };

  it('a listen-disconnected party hears only music and is heard by no one; restore brings it back', async () => {
    expect((await isolate(musicFile)).ok).toBe(true);
    await c.waitFor((x) => x.music && x.tones.length === 0, HEAR_MS, 1000);
    await othersWithoutC();
    const q = await h.ok({ op: 'bridge.query', bridgeId });
    expect(q.legs?.find((l) => l.legId === 'c')).toMatchObject({ listen: false, talk: false, music: 'file' });
    await restore();
  });

  it('file null (sip-enable-moh false) gives silence: no music, no conference', async () => {
    expect((await isolate(null)).ok).toBe(true);
    await c.waitFor((x) => x.silence && !x.music && x.tones.length === 0 && x.packets > 0, HEAR_MS, WINDOW);
    await othersWithoutC();
    await restore();
  });

  it('a missing music file: MusicFileUnreadable and a music-error event, the party still isolated', async () => {
    const missing = path.join(tmp, 'no-such-music.wav');
    const reply = await isolate(missing);
    expect(reply).toMatchObject({ ok: false, error: { code: 'MusicFileUnreadable' } });
    const event = await h.waitForEvent((e) => e.kind === 'music-error', 5000);
    expect(event).toMatchObject({ kind: 'music-error', bridgeId, legId: 'c', file: missing });
    await c.waitFor((x) => x.silence && x.tones.length === 0 && x.packets > 0, HEAR_MS, WINDOW);
    await othersWithoutC();
    // The file appears (an operator fixes the option): the next play picks it up.
    copyFileSync(musicFile, missing);
    expect((await h.send({ op: 'leg.music.play', bridgeId, legId: 'c', file: missing })).ok).toBe(true);
    await c.waitFor((x) => x.music && x.tones.length === 0, HEAR_MS, 1000);
    await restore();
  });

  it('an unreadable (not WAV) file is refused the same way', async () => {
    const junk = path.join(tmp, 'junk.wav');
    writeFileSync(junk, 'this is not audio');
    expect(await isolate(junk)).toMatchObject({ ok: false, error: { code: 'MusicFileUnreadable' } });
    await h.waitForEvent((e) => e.kind === 'music-error' && e.file === junk, 5000);
    await c.waitFor((x) => x.silence && x.tones.length === 0 && x.packets > 0, HEAR_MS, WINDOW);
    await restore();
  });
});
