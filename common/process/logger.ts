import { pino, type Logger } from 'pino';

/** JSON logs on stdout; LOG_LEVEL overrides the level (tests use "silent"). */
export function createLogger(component: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: component, level, base: { component, pid: process.pid } });
}
export type { Logger };
