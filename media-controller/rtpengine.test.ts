import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/process/logger.js';
import { startTestRtpengine, type TestRtpengine } from '../test/support/infra.js';
import { RtpengineFailure, RtpenginePool } from './rtpengine.js';

const OFFER = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 30000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
const ANSWER = OFFER.replace('30000', '30002').replace('o=- 1 1', 'o=- 2 1');

describe('RtpenginePool against a real rtpengine', () => {
  let rtp: TestRtpengine;
  let pool: RtpenginePool;
  const lost: string[] = [];
  beforeAll(async () => {
    rtp = await startTestRtpengine(50);
    pool = new RtpenginePool({ addresses: [rtp.ng, '127.0.0.1:9'], log: createLogger('t', 'silent'), pingIntervalMs: 200, commandTimeoutMs: 500 });
    pool.on('lost', (ng) => lost.push(ng));
    await pool.start();
  });
  afterAll(async () => {
    pool?.stop();
    await rtp?.stop();
  });

  it('knows which instance answers and picks it, by fewest legs', () => {
    expect(pool.health(rtp.ng)).toBe('up');
    expect(pool.health('127.0.0.1:9')).toBe('down');
    expect(lost).toEqual(['127.0.0.1:9']);
    expect(pool.pick()).toBe(rtp.ng);
    pool.attach(rtp.ng);
    expect(pool.legCount(rtp.ng)).toBe(1);
    pool.release(rtp.ng);
  });

  it('runs a call: offer, answer, block/unblock, play (error named), statistics, delete', async () => {
    const callId = `t-${Date.now()}`;
    const offer = await pool.offer(rtp.ng, { 'call-id': callId, 'from-tag': 'a', sdp: OFFER });
    expect(offer.sdp).toMatch(/m=audio \d+ RTP\/AVP 0/);
    const answer = await pool.answer(rtp.ng, { 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: ANSWER });
    expect(answer.result).toBe('ok');
    expect((await pool.blockMedia(rtp.ng, callId, 'a')).result).toBe('ok');
    expect((await pool.unblockMedia(rtp.ng, callId, 'a')).result).toBe('ok');
    await expect(pool.playMedia(rtp.ng, callId, 'b', '/nonexistent/music.wav')).rejects.toMatchObject({ code: 'RtpengineError' });
    expect((await pool.statistics(rtp.ng)).result).toBe('ok');
    expect((await pool.query(rtp.ng, callId)).result).toBe('ok');
    await pool.delete(rtp.ng, callId);
    await expect(pool.query(rtp.ng, callId)).rejects.toBeInstanceOf(RtpengineFailure);
  });

  it('refuses commands to an instance that does not answer', async () => {
    await expect(pool.offer('127.0.0.1:9', { 'call-id': 'x', 'from-tag': 'a', sdp: OFFER })).rejects.toMatchObject({ code: 'RtpengineUnavailable' });
  });
});
