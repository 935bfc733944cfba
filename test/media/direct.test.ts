import { Registry } from 'prom-client';
import { Client } from 'rtpengine-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveMusic } from '../../common/config/load.js';
import { MediaRpc } from '../../common/nats/media-contract.js';
import { call } from '../../common/nats/rpc.js';
import { Subjects } from '../../common/nats/subjects.js';
import { createLogger } from '../../common/process/logger.js';
import { createMediaController } from '../../media-controller/component.js';
import { toneFrequency, type TonePhone } from '../support/tone-phone.js';
import { MediaHarness } from './harness.js';

const HEAR_MS = 15_000;
const WINDOW = 600;
/** A party isolated by a command's reply hears nothing of the other from this long after it (the mixer's next tick). */
const ISOLATION_MS = 20;

/** The ng commands that change calls, as rtpengine counts them itself. */
const NG_COUNTERS = ['offer', 'answer', 'delete', 'blkmedia', 'unblkmedia'] as const;

describe('media-controller: two plain parties relayed by rtpengine alone', () => {
  let h: MediaHarness;
  let ng: Client;
  let ngHost: string;
  let ngPort: number;
  beforeAll(async () => {
    h = await MediaHarness.start();
    ng = new Client({ timeout: 2000 });
    const address = h.rtpengines[0]!.ng;
    ngHost = address.slice(0, address.lastIndexOf(':'));
    ngPort = Number(address.slice(address.lastIndexOf(':') + 1));
  });
  afterAll(async () => {
    ng?.close();
    await h?.stop();
  });

  const mixerPackets = async (): Promise<number> => {
    const metrics = await h.registry.metrics();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    return value('huddle_media_packets_in_total') + value('huddle_media_packets_out_total');
  };
  const ngCounts = async (): Promise<Record<string, number>> => {
    const reply = (await ng.statistics(ngPort, ngHost, {})) as { statistics?: { controlstatistics?: Record<string, number> } };
    const stats = reply.statistics?.controlstatistics ?? {};
    return Object.fromEntries(NG_COUNTERS.map((c) => [c, Number(stats[`total${c}count`] ?? 0)]));
  };
  const ngSince = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(NG_COUNTERS.map((c) => [c, after[c]! - before[c]!]).filter(([, n]) => n !== 0));
  const calls = async (): Promise<string[]> => ((await ng.list(ngPort, ngHost, { limit: 100 })) as { calls?: string[] }).calls ?? [];
  const direct = async (bridgeId: string): Promise<boolean[]> => ((await h.ok({ op: 'bridge.query', bridgeId })).legs ?? []).map((l) => l.direct === true);
  /** How long after `at` the far phone first hears the near phone's new tone: one-way delay plus up to one frame. */
  const onsetMs = async (near: TonePhone, far: TonePhone, tone: number): Promise<number> => {
    const own = near.frequency!;
    const at = Date.now();
    near.frequency = tone;
    try {
      await far.waitFor((x) => x.tones.includes(tone), HEAR_MS, 200);
      return far.toneOnsetAt(tone, at)! - at;
    } finally {
      near.frequency = own;
    }
  };

  it('a two-party call: one rtpengine call pairs both phones, no mixer packet; a third party and a hold take it to the mixer and back', async () => {
    const a = await h.phone(toneFrequency(0));
    const b = await h.phone(toneFrequency(1));
    const ngBefore = await ngCounts();
    await h.ok({ op: 'bridge.create', bridgeId: 'call' });
    await h.joinByOffer('call', 'a', a);
    await h.joinByCreate('call', 'b', b);
    const ngSetup = ngSince(ngBefore, await ngCounts());
    await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, WINDOW);
    await b.waitFor((x) => x.tones.length === 1 && x.tones[0] === a.frequency, HEAR_MS, WINDOW);

    // Direct: rtpengine relays, and one of its calls holds both phones, paired with each other.
    expect(await direct('call')).toEqual([true, true]);
    const legs = (await h.ok({ op: 'bridge.query', bridgeId: 'call' })).legs ?? [];
    expect(legs.every((l) => l.packetsIn > 0 && l.packetsOut > 0)).toBe(true);
    const ids = await calls();
    expect(ids).toHaveLength(1);
    const query = (await ng.query(ngPort, ngHost, { 'call-id': ids[0]! })) as unknown as { tags: Record<string, { subscribers?: { tag: string }[] }> };
    const phones = Object.keys(query.tags).filter((t) => t.startsWith('phone-'));
    expect(phones).toHaveLength(2);
    for (const tag of phones) expect(query.tags[tag]!.subscribers?.map((s) => s.tag)).toEqual(phones.filter((t) => t !== tag));
    const mixerBefore = await mixerPackets();
    a.clear();
    b.clear();
    await a.waitFor((x) => x.packets >= 45 && x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, 1000);
    await b.waitFor((x) => x.packets >= 45 && x.tones.length === 1 && x.tones[0] === a.frequency, HEAR_MS, 1000);
    expect(await mixerPackets()).toBe(mixerBefore);
    const directOnset = await onsetMs(a, b, toneFrequency(4));

    // A third party joins: the two go to the mixer, the phones keep their ports (no re-offer to them).
    const c = await h.phone(toneFrequency(2));
    const joinAt = Date.now();
    await h.joinByOffer('call', 'c', c);
    for (const [p, others] of [
      [a, [b, c]],
      [b, [a, c]],
      [c, [a, b]],
    ] as const) {
      const want = others.map((o) => o.frequency).sort((x, y) => x! - y!);
      await p.waitFor((x) => JSON.stringify(x.tones) === JSON.stringify(want), HEAR_MS, WINDOW);
    }
    const joinGap = Math.max(a.longestToneGapMs(b.frequency!, joinAt), b.longestToneGapMs(a.frequency!, joinAt));
    expect(await direct('call')).toEqual([false, false, false]);
    const mixerOnset = await onsetMs(a, b, toneFrequency(4));

    // It leaves: back to direct.
    const leaveAt = Date.now();
    await h.ok({ op: 'leg.remove', bridgeId: 'call', legId: 'c' });
    await h.hangUp(c);
    await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, WINDOW);
    await b.waitFor((x) => x.tones.length === 1 && x.tones[0] === a.frequency, HEAR_MS, WINDOW);
    const leaveGap = Math.max(a.longestToneGapMs(b.frequency!, leaveAt), b.longestToneGapMs(a.frequency!, leaveAt));
    expect(await direct('call')).toEqual([true, true]);

    // Hold as signaling does it: both isolated, then music to the held party. From the first
    // reply on, neither hears the other.
    await h.ok({ op: 'leg.flags', bridgeId: 'call', legId: 'a', listen: false, talk: false });
    const isolatedAt = Date.now() + ISOLATION_MS;
    await h.ok({ op: 'leg.flags', bridgeId: 'call', legId: 'b', listen: false, talk: false });
    await h.ok({ op: 'leg.music.play', bridgeId: 'call', legId: 'b', file: resolveMusic(h.musicRoot, h.live.cluster.spec.options['default-music']) });
    expect(await direct('call')).toEqual([false, false]);
    await b.waitFor((x) => x.music && x.tones.length === 0, HEAR_MS, WINDOW);
    await a.waitFor((x) => x.silence && x.packets > 0, HEAR_MS, WINDOW);
    expect(a.framesWithTone(b.frequency!, isolatedAt)).toBe(0);
    expect(b.framesWithTone(a.frequency!, isolatedAt)).toBe(0);

    // Retrieve: back to direct, both ways.
    const retrieveAt = Date.now();
    await h.ok({ op: 'leg.music.stop', bridgeId: 'call', legId: 'b' });
    await h.ok({ op: 'leg.flags', bridgeId: 'call', legId: 'b', listen: true, talk: true });
    await h.ok({ op: 'leg.flags', bridgeId: 'call', legId: 'a', listen: true, talk: true });
    await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency && !x.music, HEAR_MS, WINDOW);
    await b.waitFor((x) => x.tones.length === 1 && x.tones[0] === a.frequency && !x.music, HEAR_MS, WINDOW);
    expect(await direct('call')).toEqual([true, true]);
    const retrieveOnset = Math.max(b.toneOnsetAt(a.frequency!, retrieveAt)!, a.toneOnsetAt(b.frequency!, retrieveAt)!) - retrieveAt;

    const ngEnd = await ngCounts();
    await h.ok({ op: 'leg.remove', bridgeId: 'call', legId: 'a' });
    await h.ok({ op: 'leg.remove', bridgeId: 'call', legId: 'b' });
    await h.ok({ op: 'bridge.destroy', bridgeId: 'call' });
    const ngTeardown = ngSince(ngEnd, await ngCounts());
    await h.hangUp(a, b);
    expect(await calls()).toEqual([]);

    console.log(
      [
        `direct 2-party call: rtpengine calls 1; ng set-up ${JSON.stringify(ngSetup)}, tear-down ${JSON.stringify(ngTeardown)}`,
        `tone onset at the far phone: direct ${directOnset} ms, through the mixer ${mixerOnset} ms`,
        `longest gap of the other party's tone: third joins (to mixer) ${joinGap} ms, third leaves (to direct) ${leaveGap} ms`,
        `retrieve (music.stop, flags, flags): both hear each other ${retrieveOnset} ms after the first command was sent`,
      ].join('\n'),
    );
    expect(joinGap).toBeLessThan(1000);
    expect(leaveGap).toBeLessThan(1000);
  });

  it("a direct call ending one leg at a time: the leg left behind is not taken for one rtpengine lost (its dialogue went with its partner's phone side)", async () => {
    const a = await h.phone(toneFrequency(0));
    const b = await h.phone(toneFrequency(1));
    await h.ok({ op: 'bridge.create', bridgeId: 'ending' });
    await h.joinByOffer('ending', 'ea', a);
    await h.joinByCreate('ending', 'eb', b);
    await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, WINDOW);
    expect(await direct('ending')).toEqual([true, true]);
    const eventsBefore = h.events.length;
    await h.ok({ op: 'leg.remove', bridgeId: 'ending', legId: 'ea' });
    // Several of the instance's session checks (every ping, 200 ms here) while 7002's leg is still ours.
    await new Promise((r) => setTimeout(r, 1500));
    expect(h.events.slice(eventsBefore).filter((e) => e.kind === 'leg-failed')).toEqual([]);
    await h.ok({ op: 'leg.remove', bridgeId: 'ending', legId: 'eb' });
    await h.ok({ op: 'bridge.destroy', bridgeId: 'ending' });
  });

  it('another instance adopts a direct call without touching its audio, and can still take it to the mixer and back', async () => {
    const a = await h.phone(toneFrequency(0));
    const b = await h.phone(toneFrequency(1));
    await h.ok({ op: 'bridge.create', bridgeId: 'adopted' });
    await h.joinByOffer('adopted', 'a', a);
    await h.joinByOffer('adopted', 'b', b);
    await b.waitFor((x) => x.tones.length === 1 && x.tones[0] === a.frequency, HEAR_MS, WINDOW);
    expect(await direct('adopted')).toEqual([true, true]);

    const adopter = await createMediaController(
      {
        config: h.live,
        musicRoot: h.musicRoot,
        nc: h.nc,
        registry: new Registry(),
        log: createLogger('media-adopter', process.env.TEST_LOG_LEVEL ?? 'silent'),
        addReadiness: () => undefined,
        rtpengines: h.rtpengines.map((r) => r.ng),
        instance: 'media-test-2',
      },
      { bridgeHost: '127.0.0.1', pingIntervalMs: 200, commandTimeoutMs: 1000, failAfter: 2 },
    );
    const there = (cmd: Parameters<MediaHarness['ok']>[0]) => call(h.nc, Subjects.mediaInstanceCommand(h.location, 'media-test-2'), MediaRpc, cmd, { timeoutMs: 10_000 });
    try {
      const adoptAt = Date.now();
      const adopted = await there({ op: 'bridge.adopt', bridgeId: 'adopted' });
      expect(adopted).toMatchObject({ ok: true, instance: 'media-test-2' });
      expect(adopted.ok && adopted.legs?.map((l) => l.direct)).toEqual([true, true]);
      await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, WINDOW);
      await new Promise((r) => setTimeout(r, 500));
      const adoptGap = Math.max(a.longestToneGapMs(b.frequency!, adoptAt), b.longestToneGapMs(a.frequency!, adoptAt));
      expect(await calls()).toHaveLength(1);

      // Hold on the adopter: rtpengine learns its sockets now.
      await there({ op: 'leg.flags', bridgeId: 'adopted', legId: 'a', listen: false, talk: false });
      const isolatedAt = Date.now() + ISOLATION_MS;
      await there({ op: 'leg.flags', bridgeId: 'adopted', legId: 'b', listen: false, talk: false });
      await there({ op: 'leg.music.play', bridgeId: 'adopted', legId: 'b', file: resolveMusic(h.musicRoot, h.live.cluster.spec.options['default-music']) });
      await b.waitFor((x) => x.music && x.tones.length === 0, HEAR_MS, WINDOW);
      expect(a.framesWithTone(b.frequency!, isolatedAt)).toBe(0);
      expect(b.framesWithTone(a.frequency!, isolatedAt)).toBe(0);
      await there({ op: 'leg.music.stop', bridgeId: 'adopted', legId: 'b' });
      await there({ op: 'leg.flags', bridgeId: 'adopted', legId: 'b', listen: true, talk: true });
      await there({ op: 'leg.flags', bridgeId: 'adopted', legId: 'a', listen: true, talk: true });
      await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency && !x.music, HEAR_MS, WINDOW);
      await b.waitFor((x) => x.tones.length === 1 && x.tones[0] === a.frequency && !x.music, HEAR_MS, WINDOW);
      const query = await there({ op: 'bridge.query', bridgeId: 'adopted' });
      expect(query.ok && query.legs?.map((l) => l.direct)).toEqual([true, true]);
      console.log(`direct call adopted by another instance: longest gap of the other party's tone ${adoptGap} ms`);
      expect(adoptGap).toBeLessThan(1000);

      // The first instance lets go without deleting what the adopter holds.
      await h.ok({ op: 'bridge.destroy', bridgeId: 'adopted' });
      expect(await calls()).toHaveLength(1);
      expect(await there({ op: 'bridge.destroy', bridgeId: 'adopted' })).toMatchObject({ ok: true });
      expect(await calls()).toEqual([]);
    } finally {
      await adopter.stop();
      await h.hangUp(a, b);
    }
  });
});
