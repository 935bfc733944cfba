/**
 * SDP on the bridge side of a leg (between our bridge socket and rtpengine): always plain RTP,
 * G.711 only. rtpengine transcodes whatever the phone speaks to it.
 */
import { parse, write, type MediaDescription, type SessionDescription } from 'sdp-transform';
import { PayloadTypes, codecOfPayloadType, type Codec } from './mixer/g711.js';

export class SdpError extends Error {
  constructor(
    readonly code: 'BadSdp' | 'NoCommonCodec',
    message: string,
  ) {
    super(message);
    this.name = 'SdpError';
  }
}

export const BridgeCodecs: readonly Codec[] = ['PCMU', 'PCMA'];

/** Our SDP (offer with both codecs, or answer with the chosen one). */
export function bridgeSdp(host: string, port: number, codecs: readonly Codec[], version: number): string {
  const session: SessionDescription = {
    version: 0,
    origin: { username: '-', sessionId: port, sessionVersion: version, netType: 'IN', ipVer: 4, address: host },
    name: 'huddle-bridge',
    connection: { version: 4, ip: host },
    timing: { start: 0, stop: 0 },
    media: [
      {
        type: 'audio',
        port,
        protocol: 'RTP/AVP',
        payloads: codecs.map((c) => PayloadTypes[c]).join(' '),
        rtp: codecs.map((c) => ({ payload: PayloadTypes[c], codec: c, rate: 8000 })),
        fmtp: [],
        ptime: 20,
        direction: 'sendrecv',
        rtcpMux: 'rtcp-mux',
      },
    ],
  };
  return write(session);
}

export interface RemoteMedia {
  host: string;
  port: number;
  /** G.711 codecs offered/answered, in the peer's order of preference. */
  codecs: Codec[];
}

function parseSdp(sdp: string): SessionDescription {
  try {
    return parse(sdp);
  } catch (err) {
    throw new SdpError('BadSdp', `unparsable SDP: ${(err as Error).message}`);
  }
}

/** The G.711 codecs of one m= line, in its order of preference. */
function g711Codecs(audio: MediaDescription): Codec[] {
  const codecs: Codec[] = [];
  for (const pt of String(audio.payloads ?? '').split(' ').map(Number)) {
    const map = audio.rtp.find((r) => r.payload === pt);
    const name = (map?.codec ?? codecOfPayloadType(pt) ?? '').toUpperCase();
    if ((name === 'PCMU' || name === 'PCMA') && (!map || map.rate === 8000) && !codecs.includes(name)) codecs.push(name);
  }
  return codecs;
}

/** Where rtpengine wants our RTP and which G.711 codecs it accepts. */
export function parseRemote(sdp: string): RemoteMedia {
  const session = parseSdp(sdp);
  const audio = session.media?.find((m) => m.type === 'audio' && m.port > 0);
  if (!audio) throw new SdpError('BadSdp', 'SDP has no active audio stream');
  const host = audio.connection?.ip ?? session.connection?.ip;
  if (!host) throw new SdpError('BadSdp', 'SDP has no connection address');
  const codecs = g711Codecs(audio);
  if (codecs.length === 0) throw new SdpError('NoCommonCodec', 'no G.711 (PCMU/PCMA) on the bridge side of the leg');
  return { host, port: audio.port, codecs };
}

/**
 * Checks a phone's SDP parses and has audio before it goes to rtpengine, and tells whether its
 * audio offers G.711 (then rtpengine only relays; otherwise it must transcode for the bridge) and
 * whether it is a browser's (WebRTC: DTLS-SRTP over ICE, which rtpengine terminates).
 */
export function checkPhoneSdp(sdp: string): { g711: boolean; webrtc: boolean } {
  const session = parseSdp(sdp);
  const audio = session.media?.filter((m) => m.type === 'audio') ?? [];
  if (audio.length === 0) throw new SdpError('BadSdp', 'SDP has no audio stream');
  return { g711: audio.some((m) => g711Codecs(m).length > 0), webrtc: audio.some((m) => webrtcMedia(session, m)) };
}

/** A WebRTC m= line: DTLS-SRTP (UDP/TLS/RTP/SAVPF, or a fingerprint) with ICE credentials. */
function webrtcMedia(session: SessionDescription, audio: MediaDescription): boolean {
  const dtls = /UDP\/TLS\/RTP\/SAVPF?/i.test(audio.protocol) || (audio.fingerprint ?? session.fingerprint) !== undefined;
  const ice = (audio.iceUfrag ?? session.iceUfrag) !== undefined;
  return dtls && ice;
}
