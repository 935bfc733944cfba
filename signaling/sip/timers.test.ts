import { describe, expect, it } from 'vitest';
import { FakeClock, systemClock } from './clock.js';
import { SipRequest } from './message.js';
import { firstRetransmit, nextTimerA, nextTimerE, nextTimerG, sixtyFourT1, timerB, timerConfig, timerD, timerF, timerH, timerI, timerJ, timerK, timerL, timerM } from './timers.js';
import { ClientTransaction, type TransactionContext } from './transaction.js';
import { fakeTransport } from '../../test/support/sip-stacks.js';

const udp = fakeTransport(false);

describe('timers table (RFC 3261 Table 4, RFC 6026)', () => {
  it('defaults to T1 500 ms, T2 4 s, T4 5 s and derives Table 4 from them', () => {
    const t = timerConfig();
    expect(t).toEqual({ t1: 500, t2: 4000, t4: 5000 });
    expect(sixtyFourT1(t)).toBe(32_000);
    for (const timer of [timerB, timerF, timerH, timerL, timerM]) expect(timer(t), timer.name).toBe(32_000);
    expect([timerD(t, false), timerI(t, false), timerJ(t, false), timerK(t, false)]).toEqual([32_000, 5000, 32_000, 5000]);
    expect([timerD(t, true), timerI(t, true), timerJ(t, true), timerK(t, true)]).toEqual([0, 0, 0, 0]);
  });

  it('retransmit intervals: A doubles, E and G double up to T2, E is T2 once proceeding', () => {
    const t = timerConfig();
    const a = [firstRetransmit(t)];
    const e = [firstRetransmit(t)];
    const g = [firstRetransmit(t)];
    for (let i = 0; i < 5; i++) {
      a.push(nextTimerA(a.at(-1)!));
      e.push(nextTimerE(t, e.at(-1)!, false));
      g.push(nextTimerG(t, g.at(-1)!));
    }
    expect(a).toEqual([500, 1000, 2000, 4000, 8000, 16_000]);
    expect(e).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(g).toEqual(e);
    expect(nextTimerE(t, 500, true)).toBe(4000);
  });

  it('follows the configured T1/T2/T4; Timer D never drops below 32 s over UDP', () => {
    const short = timerConfig({ t1Ms: 100, t2Ms: 1000, t4Ms: 2000 });
    expect([timerB(short), timerH(short), timerJ(short, false), timerK(short, false), timerD(short, false)]).toEqual([6400, 6400, 6400, 2000, 32_000]);
    expect(nextTimerG(short, 800)).toBe(1000);
    const long = timerConfig({ t1Ms: 1000 });
    expect([timerB(long), timerD(long, false), long.t2, long.t4]).toEqual([64_000, 64_000, 4000, 5000]);
  });

  it('a transaction on a fake clock times out at timerB of its configuration', () => {
    const clock = new FakeClock();
    const timers = timerConfig({ t1Ms: 100 });
    const failures: number[] = [];
    const ctx: TransactionContext = { clock, timers, send: (msg) => msg.toBuffer(), resend: () => undefined, terminated: () => undefined };
    const req = new SipRequest('INVITE', 'sip:bob@127.0.0.1');
    for (const [name, value] of [['Via', 'SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKt'], ['From', '<sip:a@x>;tag=1'], ['To', '<sip:b@y>'], ['Call-ID', 'c'], ['CSeq', '1 INVITE']] as const) req.append(name, value);
    const tx = new ClientTransaction(ctx, req, { protocol: 'udp', host: '127.0.0.1', port: 5070 }, udp, 'z9hG4bKt', { onResponse: () => undefined, onFailure: (status) => failures.push(status) });
    tx.start();
    clock.advance(timerB(timers) - 1);
    expect(failures).toEqual([]);
    clock.advance(1);
    expect(failures).toEqual([408]);
  });
});

describe('clocks', () => {
  it('FakeClock fires expiries and timers together in due order', () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    clock.expireAfter(20, { expire: () => fired.push('expiry 20') });
    clock.setTimer(10, () => fired.push('timer 10'));
    clock.setTimer(15, () => fired.push('cancelled')).cancel();
    clock.advance(30);
    expect(fired).toEqual(['timer 10', 'expiry 20']);
  });

  it('systemClock keeps one queue per delay for timers and expiries alike; a cancelled timer never fires', async () => {
    const fired: string[] = [];
    systemClock.setTimer(5, () => fired.push('timer'));
    systemClock.setTimer(5, () => fired.push('cancelled')).cancel();
    systemClock.expireAfter(5, { expire: () => fired.push('expiry') });
    systemClock.expireAfter(0, { expire: () => fired.push('now') });
    await new Promise((r) => setTimeout(r, 50));
    expect(fired).toEqual(['now', 'timer', 'expiry']);
  });
});
