import dgram from 'node:dgram';
import { parse } from 'sdp-transform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TonePhone, toneFrequency } from '../support/tone-phone.js';
import { MediaHarness } from './harness.js';

const HEAR_MS = 15_000;
const WINDOW = 600;

describe('media-controller: calls and conferences through real rtpengine', () => {
  let h: MediaHarness;
  beforeAll(async () => {
    h = await MediaHarness.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('relays a two-party call both ways (phone offers / we offer)', async () => {
    const a = await h.phone(toneFrequency(0));
    const b = await h.phone(toneFrequency(1));
    expect(h.readiness.get('rtpengine')?.()).toBe(true);
    const created = await h.ok({ op: 'bridge.create', bridgeId: 'call-1' });
    expect(created.instance).toBe(h.instance);
    await h.joinByOffer('call-1', 'a', a);
    await h.joinByCreate('call-1', 'b', b);
    await a.waitFor((x) => x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, WINDOW);
    await b.waitFor((x) => x.tones.length === 1 && x.tones[0] === a.frequency, HEAR_MS, WINDOW);
    const q = await h.ok({ op: 'bridge.query', bridgeId: 'call-1' });
    expect(q.legs?.map((l) => l.legId).sort()).toEqual(['a', 'b']);
    expect(q.legs?.every((l) => l.packetsIn > 0 && l.packetsOut > 0)).toBe(true);
    const metrics = await h.registry.metrics();
    expect(metrics).toMatch(/^huddle_media_legs 2$/m);
    expect(metrics).toMatch(/^huddle_media_bridges 1$/m);
    // A two-party call is relayed by rtpengine alone (test/media/direct.test.ts): the mixer's packets are counted in the conference below.
    expect(metrics).toMatch(/^huddle_media_mixer_tick_lateness_seconds_count [1-9]\d*$/m);
    expect(metrics).toMatch(/^huddle_media_rtpengine_up\{ng="[^"]+"\} 1$/m);

    // Re-INVITEs from each phone (a offered first, b answered our offer): audio continues.
    for (const [legId, phone] of [['a', a], ['b', b]] as const) {
      const re = await h.ok({ op: 'leg.reoffer', bridgeId: 'call-1', legId, sdp: phone.offer() });
      phone.accept(re.sdp ?? '');
    }
    a.clear();
    b.clear();
    const fresh = WINDOW / 20 - 5;
    await b.waitFor((x) => x.packets >= fresh && x.tones.length === 1 && x.tones[0] === a.frequency, HEAR_MS, WINDOW);
    await a.waitFor((x) => x.packets >= fresh && x.tones.length === 1 && x.tones[0] === b.frequency, HEAR_MS, WINDOW);
    await h.ok({ op: 'bridge.destroy', bridgeId: 'call-1' });
    await h.hangUp(a, b);
  });

  it('mixes 3 and then 5 parties: each hears every other and not itself', async () => {
    const phones: TonePhone[] = [];
    await h.ok({ op: 'bridge.create', bridgeId: 'conf-1' });
    for (let k = 0; k < 3; k++) {
      const p = await h.phone(toneFrequency(k));
      phones.push(p);
      if (k % 2 === 0) await h.joinByOffer('conf-1', `p${k}`, p);
      else await h.joinByCreate('conf-1', `p${k}`, p);
    }
    const expectOthers = async () => {
      for (const p of phones) {
        const others = phones.filter((o) => o !== p).map((o) => o.frequency).sort((x, y) => x! - y!);
        await p.waitFor((x) => JSON.stringify(x.tones) === JSON.stringify(others), HEAR_MS, WINDOW);
      }
    };
    await expectOthers();
    expect(await h.registry.metrics()).toMatch(/^huddle_media_packets_in_total [1-9]\d*$/m);
    for (let k = 3; k < 5; k++) {
      const p = await h.phone(toneFrequency(k));
      phones.push(p);
      await h.joinByOffer('conf-1', `p${k}`, p);
    }
    await expectOthers();
    await h.ok({ op: 'leg.remove', bridgeId: 'conf-1', legId: 'p4' });
    await h.hangUp(phones.pop()!);
    await expectOthers();

    // A consultation call (a PCMA-only phone) merged into the conference with leg.move.
    const consult = await TonePhone.start({ frequency: toneFrequency(5), codecs: ['PCMA'] });
    h.phones.push(consult);
    await h.ok({ op: 'bridge.create', bridgeId: 'consult-1' });
    await h.joinByOffer('consult-1', 'c5', consult);
    await consult.waitFor((x) => x.silence && x.packets > 0, HEAR_MS, WINDOW);
    await h.ok({ op: 'leg.move', bridgeId: 'consult-1', legId: 'c5', toBridgeId: 'conf-1' });
    phones.push(consult);
    await expectOthers();
    expect(consult.sendingCodec).toBe('PCMA');
    await h.ok({ op: 'bridge.destroy', bridgeId: 'consult-1' });
    await h.ok({ op: 'bridge.destroy', bridgeId: 'conf-1' });
    await h.hangUp(...phones);
  });

  it('a phone without G.711 (G.722 only) is transcoded by rtpengine: the bridge receives G.711', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    const offer = ['v=0', `o=- 1 1 IN IP4 127.0.0.1`, 's=g722', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 9`, 'a=rtpmap:9 G722/8000', 'a=ptime:20', 'a=sendrecv', ''].join('\r\n');
    await h.ok({ op: 'bridge.create', bridgeId: 'g722' });
    const reply = await h.ok({ op: 'leg.offer', bridgeId: 'g722', legId: 'wideband', sdp: offer });
    const answer = parse(reply.sdp ?? '');
    expect(String(answer.media[0]?.payloads)).toBe('9');
    // Any byte string is a valid G.722 stream: rtpengine decodes it and the bridge gets G.711.
    const packet = Buffer.alloc(12 + 160, 0x55);
    packet[0] = 0x80;
    packet[1] = 9;
    packet.writeUInt32BE(0x1234, 8);
    const rtpPort = answer.media[0]!.port;
    let seq = 0;
    const sender = setInterval(() => {
      packet.writeUInt16BE(seq, 2);
      packet.writeUInt32BE(seq * 160, 4);
      seq++;
      socket.send(packet, rtpPort, '127.0.0.1');
    }, 20);
    try {
      const deadline = Date.now() + HEAR_MS;
      let packetsIn = 0;
      while (packetsIn < 10 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        const q = await h.ok({ op: 'bridge.query', bridgeId: 'g722' });
        packetsIn = q.legs?.[0]?.packetsIn ?? 0;
      }
      expect(packetsIn).toBeGreaterThanOrEqual(10);
    } finally {
      clearInterval(sender);
      socket.close();
      await h.ok({ op: 'bridge.destroy', bridgeId: 'g722' });
    }
  });

  it('answers typed errors', async () => {
    const missing = await h.send({ op: 'leg.flags', bridgeId: 'nope', legId: 'x', listen: true, talk: true });
    expect(missing).toMatchObject({ ok: false, error: { code: 'BridgeNotFound' } });
    await h.ok({ op: 'bridge.create', bridgeId: 'dup' });
    expect(await h.send({ op: 'bridge.create', bridgeId: 'dup' })).toMatchObject({ ok: false, error: { code: 'BridgeExists' } });
    expect(await h.send({ op: 'leg.offer', bridgeId: 'dup', legId: 'x', sdp: 'not sdp' })).toMatchObject({ ok: false, error: { code: 'BadSdp' } });
    const bad = await h.nc.request(`huddle.${h.location}.media.cmd.${h.instance}`, new TextEncoder().encode('{"op":"leg.flags"}'), { timeout: 5000 });
    expect(JSON.parse(new TextDecoder().decode(bad.data))).toMatchObject({ ok: false, error: { code: 'BadCommand' } });
    await h.ok({ op: 'bridge.destroy', bridgeId: 'dup' });
    // Commands on one bridge run in order: one queued behind bridge.destroy finds no bridge.
    await h.ok({ op: 'bridge.create', bridgeId: 'gone' });
    const [destroyed, late] = await Promise.all([h.send({ op: 'bridge.destroy', bridgeId: 'gone' }), h.send({ op: 'leg.create', bridgeId: 'gone', legId: 'x' })]);
    expect(destroyed.ok).toBe(true);
    expect(late).toMatchObject({ ok: false, error: { code: 'BridgeNotFound' } });
    expect(await h.send({ op: 'leg.offer', bridgeId: 'x', legId: 'y', sdp: 'v=0' })).toMatchObject({ ok: false, error: { code: 'BridgeNotFound' } });
  });
});
