import { pino, type DestinationStream, type LogFn, type Logger } from 'pino';

/** Keys written on every line: pino's own and the base (which `bindings()` leaves out in part). */
const WrittenKeys = ['level', 'time', 'msg', 'pid', 'hostname', 'component'];
const boundKeyCache = new WeakMap<Logger, Set<string>>();

/**
 * JSON logs on stdout (or `destination`); LOG_LEVEL overrides the level (tests use "silent").
 * Every line is a JSON object with each key once: the component (and its child bindings, e.g.
 * `layer`) are bound once, and a log call's own key that repeats one of them is written as
 * `<key>_`, so a parser keeping either the first or the last value never takes the wrong one.
 */
export function createLogger(component: string, level: string = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = { level, base: { component, pid: process.pid }, hooks: { logMethod: keepKeysUnique } };
  return destination ? pino(options, destination) : pino(options);
}

function keepKeysUnique(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const first: unknown = args[0];
  if (first !== null && typeof first === 'object' && !(first instanceof Error)) {
    const bound = boundKeys(this);
    if (Object.keys(first).some((k) => bound.has(k))) {
      args[0] = Object.fromEntries(Object.entries(first).map(([k, v]) => [bound.has(k) ? `${k}_` : k, v]));
    }
  }
  method.apply(this, args as Parameters<LogFn>);
}

/** The keys bound to `logger` (base and child bindings): parsed once per logger, not per line. */
function boundKeys(logger: Logger): Set<string> {
  let keys = boundKeyCache.get(logger);
  if (!keys) boundKeyCache.set(logger, (keys = new Set([...WrittenKeys, ...Object.keys(logger.bindings())])));
  return keys;
}
export type { Logger };
