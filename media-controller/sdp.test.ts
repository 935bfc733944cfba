import { describe, expect, it } from 'vitest';
import { checkPhoneSdp } from './sdp.js';

const PLAIN = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 30000 RTP/AVP 0 8', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=sendrecv', ''].join('\r\n');

/** What Chromium 156 offers (trimmed): Opus first, G.711 too, ICE, DTLS-SRTP, rtcp-mux, BUNDLE. */
const CHROMIUM = [
  'v=0',
  'o=- 482003167103715018 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=audio 40560 UDP/TLS/RTP/SAVPF 111 0 8 126',
  'c=IN IP4 127.0.0.1',
  'a=candidate:1280171713 1 udp 2122194687 127.0.0.1 40560 typ host generation 0',
  'a=ice-ufrag:q5Ve',
  'a=ice-pwd:CRPriVF5hq3LowhBmbSsiMh5',
  'a=fingerprint:sha-256 8E:B6:97:95:6E:E3:E0:FD:EA:77:0A:A5:42:FB:40:B6:C5:C1:71:70:BE:FB:74:4C:CF:24:DD:89:D6:B6:C5:DF',
  'a=setup:actpass',
  'a=mid:0',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:126 telephone-event/8000',
  '',
].join('\r\n');

describe('checkPhoneSdp', () => {
  it('tells a browser (DTLS-SRTP with ICE) from a plain RTP phone, and whether either offers G.711', () => {
    expect(checkPhoneSdp(PLAIN)).toEqual({ g711: true, webrtc: false });
    expect(checkPhoneSdp(CHROMIUM)).toEqual({ g711: true, webrtc: true });
    expect(checkPhoneSdp(CHROMIUM.replace(/ 0 8 126/, ' 126'))).toEqual({ g711: false, webrtc: true });
  });

  it('a fingerprint at session level with ICE counts (an RTP/SAVPF m= line); SRTP without ICE (SDES phones) does not', () => {
    const sessionLevel = CHROMIUM.replace('UDP/TLS/RTP/SAVPF', 'RTP/SAVPF').replace(/(a=fingerprint:[^\r]*\r\n)/, '').replace('t=0 0\r\n', `t=0 0\r\n${/a=fingerprint:[^\r]*/.exec(CHROMIUM)![0]}\r\n`);
    expect(checkPhoneSdp(sessionLevel).webrtc).toBe(true);
    const sdes = PLAIN.replace('RTP/AVP', 'RTP/SAVP').replace('a=sendrecv', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv');
    expect(checkPhoneSdp(sdes).webrtc).toBe(false);
  });
});
