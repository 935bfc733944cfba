/**
 * The bench's phones in a worker thread: 600 phones receive ~30,000 RTP packets/s, and on the
 * thread that also runs the desktop those packets would delay every event it times. Here they
 * delay only each other. The main thread drives them through PhoneThread (requests by id, one
 * reply each); audio times come back on the shared clock (performance.timeOrigin + now).
 */
import { performance } from 'node:perf_hooks';
import type { PhoneBank } from '../common/lean-phone.js';
import { PhoneBankThread, servePhoneBank } from '../common/phone-thread.js';
import { Conditions, SHOW, type ConditionName } from './audio.js';

type Request =
  | { op: 'add'; user: string; frequency: number }
  | { op: 'sipPort' }
  | { op: 'call'; from: string; to: string; server: string }
  | { op: 'answered'; user: string }
  | { op: 'until'; user: string; condition: ConditionName; timeoutMs: number }
  | { op: 'packetCounts' }
  | { op: 'close' };

/** Milliseconds on a clock both threads share. */
export const sharedNow = (): number => performance.timeOrigin + performance.now();

async function serve(bank: PhoneBank, req: Request): Promise<unknown> {
  switch (req.op) {
    case 'add':
      await bank.add(req.user, req.frequency);
      return null;
    case 'sipPort':
      return bank.sipPort;
    case 'call':
      await bank.call(req.from, req.to, req.server);
      return null;
    case 'answered':
      return bank.endpoint(req.user).answered;
    case 'until': {
      const at = await bank.endpoint(req.user).until(Conditions[req.condition], req.timeoutMs, SHOW);
      return performance.timeOrigin + at;
    }
    case 'packetCounts':
      return bank.packetCounts();
    case 'close':
      await bank.close();
      return null;
  }
}

await servePhoneBank(serve);

/** The main thread's handle on the phones. */
export class PhoneThread {
  private constructor(private readonly thread: PhoneBankThread<Request>) {}

  static async start(): Promise<PhoneThread> {
    return new PhoneThread(await PhoneBankThread.start<Request>(import.meta.url, 'phone'));
  }

  private ask<T>(req: Request): Promise<T> {
    return this.thread.ask(req);
  }

  add(user: string, frequency: number): Promise<void> {
    return this.ask({ op: 'add', user, frequency });
  }

  sipPort(): Promise<number> {
    return this.ask({ op: 'sipPort' });
  }

  /** `from` dials `to` through the server at `server` (host:port); resolves once answered. */
  call(from: string, to: string, server: string): Promise<void> {
    return this.ask({ op: 'call', from, to, server });
  }

  answered(user: string): Promise<boolean> {
    return this.ask({ op: 'answered', user });
  }

  /** Resolves with the sharedNow() of the packet after which `user` hears `condition`; rejects after `timeoutMs`. */
  until(user: string, condition: ConditionName, timeoutMs: number): Promise<number> {
    return this.ask({ op: 'until', user, condition, timeoutMs });
  }

  packetCounts(): Promise<number[]> {
    return this.ask({ op: 'packetCounts' });
  }

  close(): Promise<void> {
    return this.thread.close({ op: 'close' });
  }
}
