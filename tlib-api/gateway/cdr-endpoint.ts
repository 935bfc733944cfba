/**
 * `GET /cdr` on the gateway: the site's call detail records as NDJSON, for a bearer token allowed
 * to read them (spec.gateway.tokens `cdr: true`; 401 without a known token, 403 for a token that
 * may not). Only the gateway's NATS user may read the CDR stream, so desktops and tools reach it
 * here, with the same tokens and TLS as T-Library, and never need NATS credentials.
 *
 *   ?since=<ms or ISO time>  records of calls that ended from then on (default: the last 24 hours)
 *   &connId=<ConnID>          the call's record (also found by a previous ConnID it carried on)
 *   &dn=<DN>                  the records of calls a DN or party alias took part in
 *   &limit=<n>                the n most recent matching records (default 100, at most 10000)
 *   &follow=1                 then keep the response open and send each new record as it is stored
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { cdrMatches, type CallDetailRecord, type CdrFilter } from '../../common/nats/cdr-contract.js';
import { decodeJson } from '../../common/nats/codec.js';
import { CdrStream, Subjects } from '../../common/nats/subjects.js';
import type { Principal } from './auth.js';

const DefaultSinceMs = 24 * 3_600_000;
const DefaultLimit = 100;
const MaxLimit = 10_000;

export interface CdrQuery extends CdrFilter {
  since: number;
  limit: number;
  follow: boolean;
}

/** The query of a /cdr request, or what is wrong with it. */
export function cdrQuery(url: URL, now: number): CdrQuery | string {
  const p = url.searchParams;
  const sinceText = p.get('since');
  const since = sinceText === null ? now - DefaultSinceMs : /^\d+$/.test(sinceText) ? Number(sinceText) : Date.parse(sinceText);
  if (!Number.isFinite(since)) return `since: a time in milliseconds since the epoch or ISO 8601, got "${sinceText}"`;
  const limitText = p.get('limit');
  const limit = limitText === null ? DefaultLimit : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MaxLimit) return `limit: an integer from 1 to ${MaxLimit}, got "${limitText}"`;
  const query: CdrQuery = { since, limit, follow: p.get('follow') === '1' || p.get('follow') === 'true' };
  const connId = p.get('connId');
  const dn = p.get('dn');
  if (connId) query.connId = connId;
  if (dn) query.dn = dn;
  return query;
}

export class CdrEndpoint {
  constructor(
    private readonly o: {
      nc: NatsConnection;
      location: () => string;
      log: Pick<Logger, 'warn' | 'debug'>;
      authenticate: (req: IncomingMessage) => Promise<{ ok: true; principal: Principal } | { ok: false; reason: string }>;
    },
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET') return plain(res, 405, 'GET only');
    const auth = await this.o.authenticate(req);
    if (!auth.ok) return plain(res, 401, auth.reason, { 'www-authenticate': 'Bearer' });
    if (auth.principal.cdr !== true) return plain(res, 403, `the token of ${auth.principal.name} may not read call detail records (spec.gateway.tokens cdr: true)`);
    const query = cdrQuery(new URL(req.url ?? '/', 'http://gateway'), Date.now());
    if (typeof query === 'string') return plain(res, 400, query);
    const stream = CdrStream.name(this.o.location());
    const jsm = await jetstream(this.o.nc).jetstreamManager();
    let last: { seq: number; time: number };
    try {
      const { state } = await jsm.streams.info(stream);
      last = { seq: state.last_seq, time: Date.parse(state.last_ts) };
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
      return plain(res, 503, 'no call detail records yet: the CDR stream is made when signaling starts');
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    // The records were stored when their calls ended (a little after `end`): start there.
    const consumer = await jetstream(this.o.nc).consumers.get(stream, {
      filter_subjects: Subjects.cdrAll(this.o.location()),
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(query.since).toISOString(),
    });
    const recent: string[] = [];
    let listing = true;
    const endListing = (): boolean => {
      listing = false;
      for (const line of recent) res.write(line);
      recent.length = 0;
      if (query.follow) return true;
      res.end();
      return false;
    };
    if ((last.seq === 0 || last.time < query.since) && !endListing()) return;
    const messages = await consumer.consume();
    // The reader went away (a follow ended with Ctrl-C): the consumer goes with it.
    res.on('close', () => void messages.close());
    if (res.destroyed) await messages.close();
    for await (const m of messages) {
      let record: CallDetailRecord;
      try {
        record = decodeJson(m.data) as CallDetailRecord;
      } catch {
        this.o.log.warn({ seq: m.seq }, 'unreadable call detail record skipped');
        continue;
      }
      if (record.end >= query.since && cdrMatches(record, query)) {
        const line = `${JSON.stringify(record)}\n`;
        if (!listing) res.write(line);
        else if (recent.push(line) > query.limit) recent.shift();
      }
      if (listing && (m.info.pending === 0 || m.seq >= last.seq) && !endListing()) break;
    }
    await messages.close();
  }
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers });
  res.end(`${text}\n`);
}
