import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/process/logger.js';
import { freePortRange } from '../../common/supervisor/ports.js';
import { startRtpengine, type EmbeddedRtpengine } from '../../common/supervisor/rtpengine.js';
import { toneFrequency, type TonePhone } from '../support/tone-phone.js';
import { MediaHarness } from './harness.js';

const HEAR_MS = 15_000;
const WINDOW = 600;

describe('media-controller: an rtpengine that dies', () => {
  let h: MediaHarness;
  let revived: EmbeddedRtpengine | undefined;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-rtpengine-revived-'));
  beforeAll(async () => {
    h = await MediaHarness.start({ rtpengines: 2 });
  });
  afterAll(async () => {
    await h?.stop();
    await revived?.process.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('fails the legs anchored on it (leg-failed, rtpengine-lost), keeps the others, reports it back', async () => {
    const bridgeId = 'conf-failover';
    await h.ok({ op: 'bridge.create', bridgeId });
    const phones: TonePhone[] = [];
    for (let k = 0; k < 3; k++) {
      const p = await h.phone(toneFrequency(k));
      phones.push(p);
      await h.joinByOffer(bridgeId, `p${k}`, p);
    }
    await phones[0]!.waitFor((x) => x.tones.length === 2, HEAR_MS, WINDOW);
    const legs = (await h.ok({ op: 'bridge.query', bridgeId })).legs ?? [];
    const victim = h.rtpengines[1]!;
    const doomed = legs.filter((l) => l.rtpengine === victim.ng).map((l) => l.legId);
    expect(doomed.length).toBeGreaterThan(0);
    expect(doomed.length).toBeLessThan(3);

    process.kill(victim.process.pid!, 'SIGKILL');
    await victim.process.stop();

    await h.waitForEvent((e) => e.kind === 'rtpengine-lost' && e.ng === victim.ng, 10_000);
    for (const legId of doomed) {
      expect(await h.waitForEvent((e) => e.kind === 'leg-failed' && e.legId === legId, 10_000)).toMatchObject({ bridgeId, instance: h.instance });
    }
    expect(h.events.filter((e) => e.kind === 'leg-failed').map((e) => (e as { legId: string }).legId).sort()).toEqual([...doomed].sort());

    // The parties on the surviving rtpengine still hear each other.
    const alive = phones.filter((_, k) => !doomed.includes(`p${k}`));
    for (const p of alive) {
      const others = alive.filter((o) => o !== p).map((o) => o.frequency);
      await p.waitFor((x) => JSON.stringify(x.tones) === JSON.stringify(others), HEAR_MS, WINDOW);
    }
    // Still ready (one rtpengine answers), and a new leg goes to the one that answers.
    expect(h.readiness.get('rtpengine')?.()).toBe(true);
    const late = await h.phone(toneFrequency(3));
    await h.joinByOffer(bridgeId, 'late', late);
    const after = (await h.ok({ op: 'bridge.query', bridgeId })).legs ?? [];
    expect(after.find((l) => l.legId === 'late')?.rtpengine).toBe(h.rtpengines[0]!.ng);
    await late.waitFor((x) => x.tones.length === alive.length, HEAR_MS, WINDOW);

    // Signaling cleans up the failed legs as usual.
    for (const legId of doomed) await h.ok({ op: 'leg.remove', bridgeId, legId });
    await h.hangUp(...phones.filter((_, k) => doomed.includes(`p${k}`)));

    const ngPort = Number(victim.ng.slice(victim.ng.lastIndexOf(':') + 1));
    const range = await freePortRange(50);
    revived = await startRtpengine({ ngPort, portMin: range.min, portMax: range.max, dataDir: tmp, log: createLogger('revived', 'silent') });
    await h.waitForEvent((e) => e.kind === 'rtpengine-back' && e.ng === victim.ng, 10_000);
    await h.ok({ op: 'bridge.destroy', bridgeId });
  });
});

describe('media-controller: an rtpengine that restarts between two pings', () => {
  let h: MediaHarness;
  let revived: EmbeddedRtpengine | undefined;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-rtpengine-restarted-'));
  beforeAll(async () => {
    // Pings every 400 ms and five misses before "lost": a restart this quick never looks like an outage.
    h = await MediaHarness.start({ rtpengines: 1, pingIntervalMs: 400, failAfter: 5 });
  });
  afterAll(async () => {
    await h?.stop();
    await revived?.process.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('notices the calls it forgot and fails their legs within 2 s, without ever reporting it lost', async () => {
    const bridgeId = 'restart';
    await h.ok({ op: 'bridge.create', bridgeId });
    const phones: TonePhone[] = [];
    for (let k = 0; k < 2; k++) {
      const p = await h.phone(toneFrequency(k));
      phones.push(p);
      await h.joinByOffer(bridgeId, `p${k}`, p);
    }
    await phones[0]!.waitFor((x) => x.tones.length === 1, HEAR_MS, WINDOW);
    const victim = h.rtpengines[0]!;
    const ngPort = Number(victim.ng.slice(victim.ng.lastIndexOf(':') + 1));
    const range = await freePortRange(50);
    process.kill(victim.process.pid!, 'SIGKILL');
    await victim.process.stop();
    const killedAt = Date.now();
    revived = await startRtpengine({ ngPort, portMin: range.min, portMax: range.max, dataDir: tmp, log: createLogger('revived', 'silent') });
    const restartMs = Date.now() - killedAt;

    for (const legId of ['p0', 'p1']) await h.waitForEvent((e) => e.kind === 'leg-failed' && e.legId === legId, 5000);
    const detectedMs = Date.now() - killedAt;
    console.log(`rtpengine restarted in ${restartMs} ms; its lost calls noticed at +${detectedMs} ms`);
    expect(detectedMs).toBeLessThanOrEqual(2000);
    expect(h.events.some((e) => e.kind === 'rtpengine-lost')).toBe(false);
    expect((await h.ok({ op: 'bridge.query', bridgeId })).legs?.length).toBe(2);
    for (const legId of ['p0', 'p1']) await h.ok({ op: 'leg.remove', bridgeId, legId });
    await h.hangUp(...phones);
    await h.ok({ op: 'bridge.destroy', bridgeId });
  });
});
