import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DecodeTables, EncodeTables, PayloadTypes, type Codec } from './g711.js';
import { TsMixer } from './ts-mixer.js';
import type { BridgeParty } from './types.js';

/** Stands in for a party's rtpengine leg: sends a constant level, remembers the level it last received. */
class Peer {
  last = NaN;
  received = 0;
  private seq = 0;
  private ts = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    readonly socket: dgram.Socket,
    readonly codec: Codec,
    public level: number,
  ) {
    socket.on('message', (msg) => {
      this.received++;
      let sum = 0;
      for (let i = 12; i < msg.length; i++) sum += DecodeTables[codec][msg[i]!]!;
      this.last = sum / (msg.length - 12);
    });
  }
  static async start(codec: Codec, level: number): Promise<Peer> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new Peer(socket, codec, level);
  }
  get port(): number {
    return this.socket.address().port;
  }
  sendTo(party: BridgeParty): void {
    this.timer = setInterval(() => {
      const p = Buffer.alloc(172, EncodeTables[this.codec][this.level + 32768]!);
      p[0] = 0x80;
      p[1] = PayloadTypes[this.codec];
      p.writeUInt16BE(this.seq++ & 0xffff, 2);
      p.writeUInt32BE(this.ts, 4);
      p.writeUInt32BE(42, 8);
      this.ts += 160;
      this.socket.send(p, party.local.port, party.local.host);
    }, 20);
  }
  /** Waits (bounded) until the level received is within 4% of `expected`. */
  async hears(expected: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (Math.abs(this.last - expected) <= Math.max(40, Math.abs(expected) * 0.04)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`peer ${this.port} hears ${this.last}, expected ${expected}`);
  }
  close(): void {
    clearInterval(this.timer);
    this.socket.close();
  }
}

describe('TsMixer', () => {
  let mixer: TsMixer;
  const peers: Peer[] = [];
  afterEach(async () => {
    for (const p of peers.splice(0)) p.close();
    await mixer.stop();
  });

  async function conference(levels: number[], codecs: Codec[] = levels.map(() => 'PCMU')) {
    mixer = new TsMixer({ host: '127.0.0.1' });
    const bridge = mixer.createBridge('b1');
    const parties: BridgeParty[] = [];
    for (let i = 0; i < levels.length; i++) {
      const peer = await Peer.start(codecs[i]!, levels[i]!);
      peers.push(peer);
      const party = await mixer.createParty(`p${i}`);
      await party.setRemote('127.0.0.1', peer.port, codecs[i]!);
      bridge.add(party);
      peer.sendTo(party);
      parties.push(party);
    }
    return { bridge, parties };
  }

  it('sends each party the sum of the others (N-1), across µ-law and A-law', async () => {
    await conference([1000, 2000, 4000], ['PCMU', 'PCMA', 'PCMU']);
    await peers[0]!.hears(6000);
    await peers[1]!.hears(5000);
    await peers[2]!.hears(3000);
    expect(mixer.totals.packetsIn).toBeGreaterThan(0);
    expect(mixer.totals.ticks).toBeGreaterThan(0);
  });

  it('clips the sum instead of wrapping', async () => {
    await conference([20000, 20000, 20000]);
    await peers[0]!.hears(32124);
  });

  it('talk=false is heard by no one, listen=false hears nothing', async () => {
    const { parties } = await conference([1000, 2000, 4000]);
    parties[2]!.setFlags(true, false);
    await peers[0]!.hears(2000);
    await peers[2]!.hears(3000);
    parties[0]!.setFlags(false, true);
    await peers[0]!.hears(0);
    await peers[1]!.hears(1000);
  });

  it('music replaces what a party hears, null plays silence, stop gives the bridge back', async () => {
    const { parties } = await conference([1000, 2000]);
    parties[0]!.playMusic(new Int16Array(800).fill(-3000));
    expect(parties[0]!.music).toBe('file');
    await peers[0]!.hears(-3000);
    await peers[1]!.hears(1000);
    parties[0]!.playMusic(null);
    expect(parties[0]!.music).toBe('silence');
    await peers[0]!.hears(0);
    parties[0]!.stopMusic();
    await peers[0]!.hears(2000);
  });

  it('moves a party between bridges and stops cleanly', async () => {
    const { bridge, parties } = await conference([1000, 2000, 4000]);
    const other = mixer.createBridge('b2');
    const moved = bridge.remove('p2')!;
    other.add(moved);
    await peers[0]!.hears(2000);
    await peers[2]!.hears(0);
    expect(bridge.parties.size).toBe(2);
    expect(parties.length).toBe(3);
    await other.destroy();
  });
});
