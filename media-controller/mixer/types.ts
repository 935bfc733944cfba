/**
 * The mixer seen from the media controller. The TypeScript mixer (ts-mixer.ts) implements it
 * today; an rtpengine that mixes natively (11.3+) could implement it later without touching the
 * command handling.
 */
import type { Codec } from './g711.js';

export interface PartyCounters {
  packetsIn: number;
  packetsOut: number;
  packetsDropped: number;
}

/** One party's media as the bridge sees it: an RTP socket facing that party's rtpengine leg. */
export interface BridgeParty {
  readonly id: string;
  /** Where the party's rtpengine leg must send to (our RTP socket). */
  readonly local: { host: string; port: number };
  readonly counters: Readonly<PartyCounters>;
  readonly listen: boolean;
  readonly talk: boolean;
  readonly music: 'none' | 'file' | 'silence';
  /** Where we send to, and in which codec. Until set, the party receives nothing. */
  setRemote(host: string, port: number, codec: Codec): Promise<void>;
  /** listen=false: hears no one; talk=false: heard by no one. */
  setFlags(listen: boolean, talk: boolean): void;
  /** Replaces whatever the party hears with `samples` (8 kHz linear, looped), or with silence for null. */
  playMusic(samples: Int16Array | null): void;
  stopMusic(): void;
  close(): Promise<void>;
}

export interface MediaBridge {
  readonly id: string;
  readonly parties: ReadonlyMap<string, BridgeParty>;
  add(party: BridgeParty): void;
  /** Takes the party out (its socket stays open: it may join another bridge). */
  remove(partyId: string): BridgeParty | undefined;
  /** Stops mixing; parties still in it are closed. */
  destroy(): Promise<void>;
}

export interface MixerTotals extends PartyCounters {
  ticks: number;
  /** Worst lateness of a tick since the last call to resetWorstLateness, in ms. */
  worstLatenessMs: number;
}

export interface MixerEngine {
  createBridge(id: string): MediaBridge;
  createParty(id: string): Promise<BridgeParty>;
  readonly totals: Readonly<MixerTotals>;
  resetWorstLateness(): void;
  stop(): Promise<void>;
}
