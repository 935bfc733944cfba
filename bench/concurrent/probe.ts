/**
 * The call that times one-way delay, in a worker thread: its two phones have an event loop of
 * their own, so the onset they time is the server's path, not the lag of the thread that sends
 * and receives every other call's packets (measured: that lag grew the onset with N, to 17-39 ms
 * at 200 calls, for both servers alike).
 */
import type { PhoneBank } from '../common/lean-phone.js';
import { PhoneBankThread, servePhoneBank } from '../common/phone-thread.js';
import { sleep } from '../common/proc.js';

type Request =
  | { op: 'call'; from: string; to: string; fromTone: number; toTone: number; server: string; proxy?: string }
  | { op: 'onsets'; from: string; to: string; tone: number; share: number; count: number }
  | { op: 'hangUp'; from: string }
  | { op: 'close' };

/** Onsets (ms), `count` times: `near` switches to `tone` and back; `far` times the first frame in which it hears it. */
async function onsets(bank: PhoneBank, near: string, far: string, tone: number, share: number, count: number): Promise<number[]> {
  const n = bank.endpoint(near);
  const f = bank.endpoint(far);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const own = n.frequency;
    const heard = f.until((w) => w.share(tone) > share, 2000, [own, tone]);
    // The watch fills its 40 ms window first, so that the new tone's first frame can already decide.
    await sleep(80);
    n.setFrequency(tone);
    try {
      out.push((await heard) - n.toneSentAt);
    } finally {
      n.setFrequency(own);
    }
    await sleep(60);
  }
  return out;
}

async function serve(bank: PhoneBank, req: Request): Promise<unknown> {
  switch (req.op) {
    case 'call':
      await bank.add(req.from, req.fromTone);
      await bank.add(req.to, req.toTone);
      await bank.call(req.from, req.to, req.server, req.proxy);
      return null;
    case 'onsets':
      return [...(await onsets(bank, req.from, req.to, req.tone, req.share, req.count)), ...(await onsets(bank, req.to, req.from, req.tone, req.share, req.count))];
    case 'hangUp':
      await bank.hangUp(req.from);
      return null;
    case 'close':
      await bank.close();
      return null;
  }
}

await servePhoneBank(serve);

/** The main thread's handle on the probe call's phones. */
export class Probe {
  private constructor(private readonly thread: PhoneBankThread<Request>) {}

  /** Where the probe's phones take calls. */
  get sipPort(): number {
    return this.thread.sipPort;
  }

  static async start(): Promise<Probe> {
    return new Probe(await PhoneBankThread.start<Request>(import.meta.url, 'probe'));
  }

  /** `from` (sending `fromTone`) calls `to` (sending `toTone`) at `server`, through `proxy` if given (PhoneBank.call). */
  call(from: string, to: string, fromTone: number, toTone: number, server: string, proxy?: string): Promise<void> {
    return this.thread.ask({ op: 'call', from, to, fromTone, toTone, server, proxy });
  }

  /** `count` onsets (ms) each way on the call `from` placed: a new `tone` heard at above `share`. */
  onsets(from: string, to: string, tone: number, share: number, count: number): Promise<number[]> {
    return this.thread.ask({ op: 'onsets', from, to, tone, share, count });
  }

  hangUp(from: string): Promise<void> {
    return this.thread.ask({ op: 'hangUp', from });
  }

  close(): Promise<void> {
    return this.thread.close({ op: 'close' });
  }
}
