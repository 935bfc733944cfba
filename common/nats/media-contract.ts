/**
 * Media contract: the commands signaling sends to media-controller and the events it gets back.
 * Every command is a NATS request answered with MediaReply. Schemas are TypeBox so both ends
 * validate what they receive.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../config/schema.js';
import type { RpcContract } from './rpc.js';

const Id = Type.String({ minLength: 1, maxLength: 128 });

export const MediaCommand = Type.Union([
  /** Creates a bridge: relays two legs, mixes three or more. Sent to the queue subject; the reply names the instance. */
  Type.Object({ op: Type.Literal('bridge.create'), bridgeId: Id }),
  Type.Object({ op: Type.Literal('bridge.destroy'), bridgeId: Id }),
  /**
   * Takes over a bridge whose media-controller died, from what it kept in the media bucket: new
   * sockets, and each leg's rtpengine call re-pointed to them (the phone side is untouched). Sent
   * like bridge.create; the reply names the new owner and lists the legs adopted.
   */
  Type.Object({ op: Type.Literal('bridge.adopt'), bridgeId: Id }),
  /** The phone offered: sdp is its offer, the reply's sdp is the answer to send it. */
  Type.Object({ op: Type.Literal('leg.offer'), bridgeId: Id, legId: Id, sdp: Type.String({ minLength: 1 }), label: Type.Optional(Type.String()) }),
  /**
   * We offer to the phone: the reply's sdp is the offer; the phone's answer follows with leg.answer.
   * phone `webrtc` (a browser: its SIP came over WebSocket) is offered ICE, DTLS-SRTP and rtcp-mux;
   * absent, plain RTP. A phone that offers is known by its SDP instead.
   */
  Type.Object({ op: Type.Literal('leg.create'), bridgeId: Id, legId: Id, label: Type.Optional(Type.String()), phone: Type.Optional(StringEnum(['rtp', 'webrtc'] as const)) }),
  Type.Object({ op: Type.Literal('leg.answer'), bridgeId: Id, legId: Id, sdp: Type.String({ minLength: 1 }) }),
  /** A re-offer on an existing leg (re-INVITE with SDP); the reply's sdp answers it. */
  Type.Object({ op: Type.Literal('leg.reoffer'), bridgeId: Id, legId: Id, sdp: Type.String({ minLength: 1 }) }),
  /** Moves a leg to another bridge on the same instance (consultation merged into a conference). */
  Type.Object({ op: Type.Literal('leg.move'), bridgeId: Id, legId: Id, toBridgeId: Id }),
  Type.Object({ op: Type.Literal('leg.remove'), bridgeId: Id, legId: Id }),
  /** NoListen / NoTalk of the T-Library model: listen=false hears no one, talk=false is heard by no one. */
  Type.Object({ op: Type.Literal('leg.flags'), bridgeId: Id, legId: Id, listen: Type.Boolean(), talk: Type.Boolean() }),
  /** file: absolute WAV path; null plays silence (sip-enable-moh false). Loops until music.stop. */
  Type.Object({ op: Type.Literal('leg.music.play'), bridgeId: Id, legId: Id, file: Type.Union([Type.String({ minLength: 1 }), Type.Null()]) }),
  Type.Object({ op: Type.Literal('leg.music.stop'), bridgeId: Id, legId: Id }),
  Type.Object({ op: Type.Literal('bridge.query'), bridgeId: Id }),
]);
export type MediaCommand = Static<typeof MediaCommand>;
export type MediaOp = MediaCommand['op'];

export const MediaErrorCodes = [
  'BadCommand',
  'BridgeNotFound',
  'BridgeExists',
  'LegNotFound',
  'LegExists',
  'BadSdp',
  'NoCommonCodec',
  'RtpengineUnavailable',
  'RtpengineError',
  'MusicFileUnreadable',
  'Internal',
] as const;
export type MediaErrorCode = (typeof MediaErrorCodes)[number];

export const MediaError = Type.Object({ code: StringEnum(MediaErrorCodes), message: Type.String() });
export type MediaError = Static<typeof MediaError>;

export const LegState = Type.Object({
  legId: Id,
  label: Type.Optional(Type.String()),
  listen: Type.Boolean(),
  talk: Type.Boolean(),
  music: Type.Union([Type.Literal('none'), Type.Literal('file'), Type.Literal('silence')]),
  rtpengine: Type.String(),
  /** Relayed by rtpengine alone, paired with the other party's phone side (a plain two-party bridge): the mixer is not on its path. */
  direct: Type.Optional(Type.Boolean()),
  packetsIn: Type.Integer(),
  packetsOut: Type.Integer(),
});
export type LegState = Static<typeof LegState>;

export const MediaReply = Type.Union([
  Type.Object({
    ok: Type.Literal(true),
    instance: Type.String(),
    sdp: Type.Optional(Type.String()),
    legs: Type.Optional(Type.Array(LegState)),
  }),
  Type.Object({ ok: Type.Literal(false), instance: Type.String(), error: MediaError }),
]);
export type MediaReply = Static<typeof MediaReply>;

/** A media command and its reply, as `call` and `serve` check them. */
export const MediaRpc = { request: MediaCommand, reply: MediaReply } satisfies RpcContract;

export const MediaEvent = Type.Union([
  Type.Object({ kind: Type.Literal('leg-failed'), instance: Type.String(), bridgeId: Id, legId: Id, reason: Type.String() }),
  Type.Object({ kind: Type.Literal('music-ended'), instance: Type.String(), bridgeId: Id, legId: Id }),
  Type.Object({ kind: Type.Literal('music-error'), instance: Type.String(), bridgeId: Id, legId: Id, file: Type.String(), reason: Type.String() }),
  Type.Object({ kind: Type.Literal('rtpengine-lost'), instance: Type.String(), ng: Type.String() }),
  Type.Object({ kind: Type.Literal('rtpengine-back'), instance: Type.String(), ng: Type.String() }),
]);
export type MediaEvent = Static<typeof MediaEvent>;

/**
 * Published by every media-controller on Subjects.mediaAlive(site, instance) every `intervalMs`,
 * and once with `gone: true` when it stops. `startedAt` tells a restarted instance (same name,
 * bridges gone) from one that only went quiet; signaling releases the calls on the bridges of an
 * instance that is gone, restarted, or silent for three announcements.
 */
export const MediaControllerAlive = Type.Object({
  instance: Type.String(),
  startedAt: Type.Number(),
  intervalMs: Type.Number(),
  bridges: Type.Integer(),
  gone: Type.Optional(Type.Boolean()),
});
export type MediaControllerAlive = Static<typeof MediaControllerAlive>;
