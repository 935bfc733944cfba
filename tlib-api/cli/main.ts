/**
 * `tlib`: T-Library from the shell. Each command connects to the gateway, registers the DN it acts
 * for, sends one request and prints the answering event (`watch` keeps printing until stopped).
 * Exit status: 0 answered, 1 EventError, 2 usage, 3 gateway unreachable or token refused.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TlibClient, TlibConnectError, TlibError, type KeyValue } from '../client/index.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { CdrAccessError, followCdrs, listCdrs, type CdrQuery } from '../client/index.js';
import { formatCdr, formatEvent } from './format.js';

const USAGE = `usage: tlib <command> [options]

  register <dn>                               register a DN, print the answer and its calls
  call <dn> <destination>                     MakeCall
  answer|hold|retrieve|release <dn> --conn <id>
  conference initiate <dn> <party> --conn <id>
  conference complete <dn> --conn <id>
  conference single-step <dn> <party> --conn <id>
  conference delete <dn> <party> --conn <id>
  listen-disconnect --this <dn> --other <party> --conn <id>
  listen-reconnect  --this <dn> --other <party> --conn <id>
  query <dn> --conn <id>
  user-event <dn> [--conn <id>] --data key=value ...
  watch <dn> [<dn> ...]                       print events as they come (Ctrl-C stops)
  cdr [--conn <id>] [--dn <dn>] [--since <when>] [--limit <n>] [--follow]
                                              call detail records of ended calls (a token with cdr: true):
                                              --since an ISO time, ms since the epoch, or an age (30m, 2h, 7d;
                                              default 24h); the --limit (default 100) most recent; --follow
                                              then prints each new one (Ctrl-C stops)

  e.g.  TLIB_TOKEN=agent-7001-secret npx tlib register 7001

options:
  --url <ws-url>     gateway, wss:// where it has a certificate (env TLIB_URL, default ws://127.0.0.1:7000/tlib)
  --ca <file>        PEM CA to trust for wss:// besides the system's (env TLIB_CA)
  --token <token>    bearer token (env TLIB_TOKEN), sent as "Authorization: Bearer <token>": a token of
                     spec.gateway.tokens (npm start: agent-7001-secret for 7001, see config/local.yaml) or a
                     JWT whose dns claim lists the DN; prefer TLIB_TOKEN, a --token shows in the process list
  --json             print events as JSON, one per line
  --timeout <ms>     how long to wait for an answer (default 10000)
`;

class UsageError extends Error {}

interface Action {
  /** The DNs to register first (the DN acting). */
  dns: string[];
  run?: (client: TlibClient) => Promise<TEvent>;
}

type Values = { this?: string; other?: string; conn?: string; data?: string[] };

function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing ${what}`);
  return value;
}

function parseData(pairs: string[] | undefined): KeyValue | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const data: KeyValue = {};
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new UsageError(`--data wants key=value, got "${pair}"`);
    data[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return data;
}

function action(command: string | undefined, args: string[], v: Values): Action {
  const dn = () => need(args[0], '<dn>');
  const conn = () => need(v.conn, '--conn <ConnID>');
  switch (command) {
    case 'register':
      return { dns: [dn()] };
    case 'watch':
      if (args.length === 0) throw new UsageError('missing <dn>');
      return { dns: args };
    case 'call':
      return { dns: [dn()], run: (c) => c.makeCall({ thisDN: dn(), otherDN: need(args[1], '<destination>') }) };
    case 'answer':
      return { dns: [dn()], run: (c) => c.answerCall({ thisDN: dn(), connID: conn() }) };
    case 'hold':
      return { dns: [dn()], run: (c) => c.holdCall({ thisDN: dn(), connID: conn() }) };
    case 'retrieve':
      return { dns: [dn()], run: (c) => c.retrieveCall({ thisDN: dn(), connID: conn() }) };
    case 'release':
      return { dns: [dn()], run: (c) => c.releaseCall({ thisDN: dn(), connID: conn() }) };
    case 'query':
      return { dns: [dn()], run: (c) => c.queryCall({ thisDN: dn(), connID: conn() }) };
    case 'user-event':
      return { dns: [dn()], run: (c) => c.sendUserEvent({ thisDN: dn(), connID: v.conn, userData: parseData(v.data) }) };
    case 'listen-disconnect':
    case 'listen-reconnect': {
      const p = { thisDN: need(v.this, '--this <dn>'), otherDN: need(v.other, '--other <party>'), connID: conn() };
      return { dns: [p.thisDN], run: (c) => (command === 'listen-disconnect' ? c.listenDisconnect(p) : c.listenReconnect(p)) };
    }
    case 'conference': {
      const [kind, thisDN, party] = args;
      const who = need(thisDN, '<dn>');
      switch (kind) {
        case 'initiate':
          return { dns: [who], run: (c) => c.initiateConference({ thisDN: who, otherDN: need(party, '<party>'), connID: conn() }) };
        case 'complete':
          return { dns: [who], run: (c) => c.completeConference({ thisDN: who, connID: conn() }) };
        case 'single-step':
          return { dns: [who], run: (c) => c.singleStepConference({ thisDN: who, otherDN: need(party, '<party>'), connID: conn() }) };
        case 'delete':
          return { dns: [who], run: (c) => c.deleteFromConference({ thisDN: who, otherDN: need(party, '<party>'), connID: conn() }) };
        default:
          throw new UsageError('conference wants initiate, complete, single-step or delete');
      }
    }
    default:
      throw new UsageError(command ? `unknown command "${command}"` : 'missing command');
  }
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        ca: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        this: { type: 'string' },
        other: { type: 'string' },
        conn: { type: 'string' },
        data: { type: 'string', multiple: true },
        dn: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        follow: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`tlib: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals[0] === 'cdr') return cdr(values);
  let todo: Action;
  try {
    todo = action(positionals[0], positionals.slice(1), values);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`tlib: ${err.message}\n${USAGE}`);
    return 2;
  }
  const timeout = Number(values.timeout ?? 10_000);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    process.stderr.write('tlib: --timeout wants milliseconds\n');
    return 2;
  }
  const json = values.json ?? false;
  const print = (event: TEvent) => process.stdout.write(`${formatEvent(event, json)}\n`);
  const watching = positionals[0] === 'watch';
  let client: TlibClient;
  const caFile = values.ca ?? process.env.TLIB_CA;
  try {
    client = await TlibClient.connect({
      ...(caFile ? { ca: readFileSync(caFile) } : {}),
      url: values.url ?? process.env.TLIB_URL ?? 'ws://127.0.0.1:7000/tlib',
      token: values.token ?? process.env.TLIB_TOKEN,
      requestTimeoutMs: timeout,
      reconnect: watching,
    });
  } catch (err) {
    process.stderr.write(`tlib: ${err instanceof TlibConnectError ? err.message : `cannot reach the gateway: ${(err as Error).message}`}\n`);
    return 3;
  }
  const register = positionals[0] === 'register';
  try {
    if (watching) return await watch(client, todo.dns, print);
    // `register` shows the DN's calls that come with the answer; other commands only their answer.
    if (register) client.on('event', print);
    for (const dn of todo.dns) await client.registerAddress({ thisDN: dn });
    if (todo.run) print(await todo.run(client));
    if (register) await client.sync();
    return 0;
  } catch (err) {
    // A command's attributes are read when it runs (--conn): missing ones are usage errors too.
    if (err instanceof UsageError) {
      process.stderr.write(`tlib: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (!(err instanceof TlibError)) throw err;
    // `register` has printed every event already, the EventError included.
    if (err.event && !register) print(err.event);
    else if (!err.event) process.stderr.write(`tlib: ${err.message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

/** "2h" -> 2 hours ago; an ISO time or ms since the epoch as they are. */
function sinceOf(value: string, now = Date.now()): number | undefined {
  const age = /^(\d+)(s|m|h|d)$/.exec(value);
  if (age) return now - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd'];
  const time = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  return Number.isFinite(time) ? time : undefined;
}

async function cdr(values: { url?: string; ca?: string; token?: string; json?: boolean; conn?: string; dn?: string; since?: string; limit?: string; follow?: boolean }): Promise<number> {
  const caFile = values.ca ?? process.env.TLIB_CA;
  const token = values.token ?? process.env.TLIB_TOKEN;
  const query: CdrQuery = { url: values.url ?? process.env.TLIB_URL ?? 'ws://127.0.0.1:7000/tlib', ...(token ? { token } : {}), ...(caFile ? { ca: readFileSync(caFile) } : {}) };
  if (values.conn) query.connId = values.conn;
  if (values.dn) query.dn = values.dn;
  if (values.since) {
    const since = sinceOf(values.since);
    if (since === undefined) {
      process.stderr.write(`tlib: --since wants an ISO time, ms since the epoch or an age like 30m, 2h, 7d; got "${values.since}"\n`);
      return 2;
    }
    query.since = since;
  }
  if (values.limit) query.limit = Number(values.limit);
  const print = (record: Parameters<typeof formatCdr>[0]) => process.stdout.write(`${formatCdr(record, values.json ?? false)}\n`);
  try {
    if (!values.follow) {
      for (const record of await listCdrs(query)) print(record);
      return 0;
    }
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    for await (const record of followCdrs({ ...query, signal: stop.signal })) print(record);
    return 0;
  } catch (err) {
    if (err instanceof CdrAccessError) {
      process.stderr.write(`tlib: ${err.message}\n`);
      return err.status === 400 ? 2 : 3;
    }
    process.stderr.write(`tlib: cannot reach the gateway: ${(err as Error).message}\n`);
    return 3;
  }
}

async function watch(client: TlibClient, dns: string[], print: (e: TEvent) => void): Promise<number> {
  client.on('event', print);
  client.on('disconnected', ({ code, reason }) => process.stderr.write(`tlib: connection lost (${code} ${reason}); reconnecting\n`));
  client.on('reconnected', () => process.stderr.write('tlib: reconnected\n'));
  for (const dn of dns) await client.registerAddress({ thisDN: dn });
  return new Promise<number>((resolve) => {
    const stop = () => {
      client.removeAllListeners('closed');
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    client.once('closed', ({ reason }) => {
      process.stderr.write(`tlib: ${reason}\n`);
      resolve(3);
    });
  });
}

process.exitCode = await main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`tlib: ${err.stack ?? err.message}\n`);
  return 1;
});
