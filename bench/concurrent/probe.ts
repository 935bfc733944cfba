/**
 * The call that times one-way delay, in a worker thread: its two phones have an event loop of
 * their own, so the onset they time is the server's path, not the lag of the thread that sends
 * and receives every other call's packets (measured: that lag grew the onset with N, to 17-39 ms
 * at 200 calls, for both servers alike).
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { PhoneBank } from '../common/lean-phone.js';
import { sleep } from '../common/proc.js';

type Request =
  | { op: 'call'; from: string; to: string; fromTone: number; toTone: number; server: string; proxy?: string }
  | { op: 'onsets'; from: string; to: string; tone: number; share: number; count: number }
  | { op: 'hangUp'; from: string }
  | { op: 'close' };

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

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

if (!isMainThread && parentPort) {
  const port = parentPort;
  const bank = await PhoneBank.start();
  port.on('message', (msg: { id: number; req: Request }) => {
    serve(bank, msg.req).then(
      (value) => port.postMessage({ id: msg.id, ok: true, value } satisfies Reply),
      (err: Error) => port.postMessage({ id: msg.id, ok: false, error: err.message } satisfies Reply),
    );
  });
  port.postMessage({ id: 0, ok: true, value: bank.sipPort } satisfies Reply);
}

/** The main thread's handle on the probe call's phones. */
export class Probe {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly worker: Worker,
    /** Where the probe's phones take calls. */
    readonly sipPort: number,
  ) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(reply.error));
    });
  }

  static async start(): Promise<Probe> {
    // As bench/listen-disconnect/phones.ts: a worker does not inherit tsx's loader, so it registers it, then imports this file.
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(boot, { eval: true });
    const sipPort = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: Reply) => (m.ok ? resolve(m.value as number) : reject(new Error(m.error))));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`probe thread exited (${code}) before it was ready`)));
    });
    return new Probe(worker, sipPort);
  }

  /** `from` (sending `fromTone`) calls `to` (sending `toTone`) at `server`, through `proxy` if given (PhoneBank.call). */
  call(from: string, to: string, fromTone: number, toTone: number, server: string, proxy?: string): Promise<void> {
    return this.request({ op: 'call', from, to, fromTone, toTone, server, proxy }) as Promise<void>;
  }

  /** `count` onsets (ms) each way on the call `from` placed: a new `tone` heard at above `share`. */
  onsets(from: string, to: string, tone: number, share: number, count: number): Promise<number[]> {
    return this.request({ op: 'onsets', from, to, tone, share, count }) as Promise<number[]>;
  }

  hangUp(from: string): Promise<void> {
    return this.request({ op: 'hangUp', from }) as Promise<void>;
  }

  async close(): Promise<void> {
    await this.request({ op: 'close' });
    await this.worker.terminate();
  }

  private request(req: Request): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, req });
    });
  }
}
