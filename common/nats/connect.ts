import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

/** Connects with endless reconnects: a NATS restart must not take a component down. */
export async function connectNats(url: string, name: string, log?: Logger): Promise<NatsConnection> {
  const nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 10_000 });
  if (log) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') log.warn({ nats: s.type }, 'nats connection status');
      }
    })();
  }
  return nc;
}
