/**
 * A component is started, reports readiness, and drains on stop. Entry points run one component;
 * the local launcher runs several in one process.
 */
import type { Logger } from 'pino';

export interface Component {
  readonly name: string;
  /** Stop taking new work, finish or hand over what is in flight, release resources. */
  stop(): Promise<void>;
}

/** Calls `stop` once on SIGTERM/SIGINT; exits non-zero if stopping takes longer than `graceMs`. */
export function stopOnSignals(stop: () => Promise<void>, log: Logger, graceMs = 4500): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const timer = setTimeout(() => {
      log.error({ graceMs }, 'stop took too long; exiting');
      process.exit(1);
    }, graceMs);
    timer.unref();
    stop()
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: Error) => {
        log.error({ err: err.message }, 'stop failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Resolves true when `p` settles within `ms`, else false at `ms` (`p` goes on; its failure is ignored). */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  const done = await Promise.race([settled, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return done;
}
