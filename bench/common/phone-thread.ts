/**
 * A PhoneBank in a worker thread, so that its RTP has an event loop of its own: the main thread
 * asks it by message (an id per request, one reply each). A bench module calls servePhoneBank at
 * its top level (it runs only in the worker) and starts the worker with PhoneBankThread.start.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { PhoneBank } from './lean-phone.js';

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** In the worker started on this module: answers each request with `serve`; the first message says the bank's SIP port. */
export async function servePhoneBank<R>(serve: (bank: PhoneBank, req: R) => Promise<unknown>): Promise<void> {
  if (isMainThread || !parentPort) return;
  const port = parentPort;
  const bank = await PhoneBank.start();
  port.on('message', (msg: { id: number; req: R }) => {
    serve(bank, msg.req).then(
      (value) => port.postMessage({ id: msg.id, ok: true, value } satisfies Reply),
      (err: Error) => port.postMessage({ id: msg.id, ok: false, error: err.message } satisfies Reply),
    );
  });
  port.postMessage({ id: 0, ok: true, value: bank.sipPort } satisfies Reply);
}

/** The main thread's handle on a PhoneBank in a worker. */
export class PhoneBankThread<R> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly worker: Worker,
    /** Where the thread's phones take calls. */
    readonly sipPort: number,
  ) {
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

  /** Starts a worker on `moduleUrl` (a module calling servePhoneBank); `what` names it in errors. */
  static async start<R>(moduleUrl: string, what: string): Promise<PhoneBankThread<R>> {
    // The benches run under tsx; a worker's entry module loads before any --import, so the thread
    // registers tsx's loader itself, then imports the module.
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(moduleUrl)}); })`;
    const worker = new Worker(boot, { eval: true });
    const sipPort = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: Reply) => (m.ok ? resolve(m.value as number) : reject(new Error(m.error))));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`${what} thread exited (${code}) before it was ready`)));
    });
    return new PhoneBankThread<R>(worker, sipPort);
  }

  ask<T>(req: R): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, req });
    });
  }

  async close(closeRequest: R): Promise<void> {
    await this.ask(closeRequest).catch(() => undefined);
    await this.worker.terminate();
  }
}
