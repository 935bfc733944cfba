/** A bare WebSocket speaking the wire protocol by hand, to test the gateway without the SDK. */
import { WebSocket, type ClientOptions } from 'ws';
import type { TEvent } from '../../common/tlib/messages.js';

export interface RawClient {
  ws: WebSocket;
  events: TEvent[];
  send(frame: unknown): void;
  /** The first event (already received or coming) matching `match`. */
  next(match: (e: TEvent) => boolean, timeoutMs?: number): Promise<TEvent>;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export type Refused = { refused: number; body: string };

export function openRaw(url: string, token: string | undefined, via: 'header' | 'query' = 'header', options: ClientOptions = {}): Promise<RawClient | Refused> {
  const target = token && via === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
  const headers = token && via === 'header' ? { authorization: `Bearer ${token}` } : undefined;
  const ws = new WebSocket(target, { headers, ...options });
  const events: TEvent[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    events.push(JSON.parse(String(data as Buffer)) as TEvent);
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ refused: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => reject(err));
    ws.once('open', () =>
      resolve({
        ws,
        events,
        closed,
        send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
        next: (match, timeoutMs = 10_000) =>
          new Promise<TEvent>((res, rej) => {
            let seen = 0;
            const check = () => {
              for (; seen < events.length; seen++) {
                const e = events[seen]!;
                if (match(e)) {
                  waiters.delete(check);
                  clearTimeout(timer);
                  res(e);
                  return;
                }
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
        close: async () => {
          if (ws.readyState === WebSocket.CLOSED) return;
          ws.close();
          await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
          ws.terminate();
        },
      }),
    );
  });
}

export async function openOk(url: string, token: string, via: 'header' | 'query' = 'header', options: ClientOptions = {}): Promise<RawClient> {
  const c = await openRaw(url, token, via, options);
  if ('refused' in c) throw new Error(`refused: ${c.refused} ${c.body}`);
  return c;
}
