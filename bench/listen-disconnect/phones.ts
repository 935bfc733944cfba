/**
 * The bench's phones in a worker thread: 600 phones receive ~30,000 RTP packets/s, and on the
 * thread that also runs the desktop those packets would delay every event it times. Here they
 * delay only each other. The main thread drives them through PhoneThread (requests by id, one
 * reply each); audio times come back on the shared clock (performance.timeOrigin + now).
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { PhoneBank } from '../common/lean-phone.js';
import { Conditions, SHOW, type ConditionName } from './audio.js';

type Request =
  | { op: 'add'; user: string; frequency: number }
  | { op: 'sipPort' }
  | { op: 'call'; from: string; to: string; server: string }
  | { op: 'answered'; user: string }
  | { op: 'until'; user: string; condition: ConditionName; timeoutMs: number }
  | { op: 'packetCounts' }
  | { op: 'close' };

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

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

if (!isMainThread && parentPort) {
  const port = parentPort;
  const bank = await PhoneBank.start();
  port.on('message', (msg: { id: number; req: Request }) => {
    serve(bank, msg.req).then(
      (value) => port.postMessage({ id: msg.id, ok: true, value } satisfies Reply),
      (err: Error) => port.postMessage({ id: msg.id, ok: false, error: err.message } satisfies Reply),
    );
  });
  port.postMessage({ id: 0, ok: true, value: 'ready' } satisfies Reply);
}

/** The main thread's handle on the phones. */
export class PhoneThread {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(reply.error));
    });
    worker.on('error', (err) => {
      for (const w of this.pending.values()) w.reject(err);
      this.pending.clear();
    });
  }

  static async start(): Promise<PhoneThread> {
    // The bench runs under tsx; a worker's entry module loads before any --import, so the thread
    // registers tsx's loader itself, then imports this file.
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(boot, { eval: true });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`phone thread exited (${code}) before it was ready`)));
    });
    return new PhoneThread(worker);
  }

  private ask<T>(req: Request): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, req });
    });
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

  async close(): Promise<void> {
    await this.ask({ op: 'close' }).catch(() => undefined);
    await this.worker.terminate();
  }
}
