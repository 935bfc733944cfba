import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { inboxPrefix, type NatsRole } from './permissions.js';

/**
 * Who a component is on NATS and how it reaches the server. Each component connects as its own
 * user (common/nats/permissions.ts says what that user may do).
 */
export interface NatsClientOptions {
  /** A NATS user and its password (the embedded server's, or the users of `npm run nats-config`). */
  user?: string;
  password?: string;
  /** A NATS creds file (JWT and nkey seed), as a decentralised-auth NATS hands them out. */
  credsFile?: string;
  /** Files for tls:// URLs: the CA that signed the server's certificate, and a client certificate when the server asks for one. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Reply subjects under this prefix: the role's users may subscribe only there. */
  role?: NatsRole;
}

/**
 * Connects with endless reconnects: a NATS restart must not take a component down. Credentials
 * the server refuses fail the first connect at once.
 */
export async function connectNats(url: string, name: string, log?: Logger, client: NatsClientOptions = {}): Promise<NatsConnection> {
  const options: ConnectionOptions = {
    servers: natsServers(url),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
  };
  if (client.credsFile) {
    const file = client.credsFile;
    options.authenticator = credsAuthenticator(() => readFileSync(file));
  }
  if (client.user !== undefined) {
    options.user = client.user;
    options.pass = client.password;
  }
  if (client.tls) options.tls = client.tls;
  else if (natsServers(url).some((u) => u.startsWith('tls://'))) options.tls = {};
  if (client.role) options.inboxPrefix = inboxPrefix(client.role);
  const nc = await connect(options);
  if (log) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') log.warn({ nats: s.type, server: 'server' in s ? s.server : undefined }, 'nats connection status');
      }
    })();
  }
  return nc;
}

/**
 * Calls `onReconnect` each time the connection is established again (to the same server or another
 * of the cluster): core NATS messages in flight through a server that died are lost, so whoever
 * must not lose any resyncs then.
 */
export function onReconnect(nc: NatsConnection, onReconnect: () => void): void {
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') onReconnect();
  })();
}

/**
 * The servers of a NATS URL: one URL, or the servers of one NATS cluster comma-separated. The
 * client starts on any of them (in random order, spreading the clients) and reconnects to any
 * other, including those the cluster announces later.
 */
export function natsServers(url: string): string[] {
  return url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
}

/** What a pod's environment says about its NATS identity (the operator fills it in from the workload's Secrets). */
export interface NatsClientEnv {
  HUDDLE_NATS_USER?: string;
  /** A file holding the password (a mounted Secret), preferred to the variable. */
  HUDDLE_NATS_PASSWORD_FILE?: string;
  HUDDLE_NATS_PASSWORD?: string;
  HUDDLE_NATS_CREDS?: string;
  HUDDLE_NATS_CA?: string;
  HUDDLE_NATS_CERT?: string;
  HUDDLE_NATS_KEY?: string;
}

export function natsClientFromEnv(env: NatsClientEnv, role: NatsRole): NatsClientOptions {
  const password = env.HUDDLE_NATS_PASSWORD_FILE ? readFileSync(env.HUDDLE_NATS_PASSWORD_FILE, 'utf8').trim() : env.HUDDLE_NATS_PASSWORD;
  const tls = tlsFiles({ caFile: env.HUDDLE_NATS_CA, certFile: env.HUDDLE_NATS_CERT, keyFile: env.HUDDLE_NATS_KEY });
  return {
    role,
    ...(env.HUDDLE_NATS_USER ? { user: env.HUDDLE_NATS_USER, password } : {}),
    ...(env.HUDDLE_NATS_CREDS ? { credsFile: env.HUDDLE_NATS_CREDS } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** The TLS files that are given; none given: undefined (a tls:// URL then trusts the system's CAs). */
export function tlsFiles({ caFile, certFile, keyFile }: { caFile?: string; certFile?: string; keyFile?: string }): NatsClientOptions['tls'] {
  const given = Object.fromEntries(Object.entries({ caFile, certFile, keyFile }).filter(([, v]) => v !== undefined && v !== ''));
  return Object.keys(given).length > 0 ? given : undefined;
}
