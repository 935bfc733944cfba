/**
 * Call detail records from the gateway's `GET /cdr` (tlib-api/README.md, "Call detail records"):
 * `listCdrs` the recent ones, `followCdrs` the recent ones then each new one as it is stored.
 */
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { CdrFormatVersion, type CallDetailRecord } from '../../common/nats/cdr-contract.js';

export interface CdrQuery {
  /** The gateway: its T-Library URL (ws://host:port/tlib, wss://...) or its http(s)://host:port. */
  url: string;
  /** A bearer token allowed to read CDRs (spec.gateway.tokens `cdr: true`). */
  token?: string;
  /** PEM CA to trust for https besides the system's. */
  ca?: string | Buffer;
  /** Calls that ended from then on (ms since the epoch); the gateway's default: the last 24 hours. */
  since?: number;
  connId?: string;
  dn?: string;
  /** The most recent n matching records (gateway default 100). */
  limit?: number;
  /** Ends a follow (or a listing under way). */
  signal?: AbortSignal;
}

/** The gateway refused (401 unknown token, 403 a token that may not read CDRs, 400 a bad query, 503 no CDR stream yet). */
export class CdrAccessError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'CdrAccessError';
  }
}

/** The http(s) URL of the gateway's /cdr for a query. */
export function cdrUrl(query: CdrQuery, follow: boolean): URL {
  const base = new URL(query.url.replace(/^ws(s?):/, 'http$1:'));
  const url = new URL('/cdr', base);
  if (query.since !== undefined) url.searchParams.set('since', String(query.since));
  if (query.connId !== undefined) url.searchParams.set('connId', query.connId);
  if (query.dn !== undefined) url.searchParams.set('dn', query.dn);
  if (query.limit !== undefined) url.searchParams.set('limit', String(query.limit));
  if (follow) url.searchParams.set('follow', '1');
  return url;
}

/** The recent records matching the query, oldest first. */
export async function listCdrs(query: CdrQuery): Promise<CallDetailRecord[]> {
  const records: CallDetailRecord[] = [];
  for await (const record of readCdrs(query, false)) records.push(record);
  return records;
}

/** The recent records matching the query, then each new one, until `signal` aborts (then it ends without error). */
export function followCdrs(query: CdrQuery): AsyncGenerator<CallDetailRecord> {
  return readCdrs(query, true);
}

async function* readCdrs(query: CdrQuery, follow: boolean): AsyncGenerator<CallDetailRecord> {
  const url = cdrUrl(query, follow);
  const get = url.protocol === 'https:' ? https.get : http.get;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = get(url, { headers: query.token ? { authorization: `Bearer ${query.token}` } : {}, ...(query.ca ? { ca: query.ca } : {}), ...(query.signal ? { signal: query.signal } : {}) }, resolve);
    req.on('error', reject);
  }).catch((err: Error) => {
    if (query.signal?.aborted) return undefined;
    throw err;
  });
  if (res === undefined) return;
  if (res.statusCode !== 200) {
    let text = '';
    for await (const chunk of res) text += String(chunk);
    throw new CdrAccessError(res.statusCode ?? 0, `GET /cdr: ${res.statusCode} ${text.trim()}`);
  }
  const lines = createInterface({ input: res, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line.length === 0) continue;
      const record = JSON.parse(line) as CallDetailRecord;
      // A newer format only adds fields; a reader written for version 1 can still read it, so it is passed on.
      if (typeof record.version !== 'number' || record.version < CdrFormatVersion) throw new Error(`not a call detail record of version ${CdrFormatVersion}: ${line.slice(0, 80)}`);
      yield record;
    }
  } catch (err) {
    if (!query.signal?.aborted) throw err;
  } finally {
    res.destroy();
  }
}
