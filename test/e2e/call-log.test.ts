/**
 * The call log on a real site at debug level: every line the components write is captured and
 * parsed; none repeats a key; a call's lifecycle can be followed by its ConnID at info level, and
 * every SIP message is a debug line with its Call-ID.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger } from '../../common/process/logger.js';
import { conference, Site, type Agent } from './site.js';

const raw: string[] = [];
let site: Site;
let a: Agent;
let connID: string;

/** The keys of every JSON object in `text` repeated within that object (JSON.parse would keep the last silently). */
function repeatedKeys(text: string): string[] {
  const repeated: string[] = [];
  const objects: Set<string>[] = [];
  const containers: ('{' | '[')[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const value = JSON.parse(text.slice(i, end + 1)) as string;
      if (expectKey) {
        const keys = objects.at(-1)!;
        if (keys.has(value)) repeated.push(value);
        keys.add(value);
        expectKey = false;
      }
      i = end;
    } else if (ch === '{') {
      containers.push('{');
      objects.push(new Set());
      expectKey = true;
    } else if (ch === '[') containers.push('[');
    else if (ch === '}') {
      containers.pop();
      objects.pop();
    } else if (ch === ']') containers.pop();
    else if (ch === ',') expectKey = containers.at(-1) === '{';
  }
  return repeated;
}

beforeAll(async () => {
  site = await Site.start({ log: { level: 'debug', destination: { write: (chunk: string) => void raw.push(...chunk.split('\n').filter(Boolean)) } } });
  a = await site.agent('7001', 0);
  const b = await site.agent('7002', 1);
  const c = await site.agent('7003', 2);
  connID = await conference(a, b, c);
  await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
  await a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' });
  await c.desktop!.client.releaseCall({ thisDN: '7003', connID });
  await c.desktop!.waitFor((e) => e.event === 'EventReleased', 'EventReleased on 7003');
});

afterAll(async () => {
  await site?.stop();
});

it('no log line repeats a key', () => {
  expect(raw.length).toBeGreaterThan(20);
  const offending = raw.map((line) => ({ line, keys: repeatedKeys(line) })).filter((l) => l.keys.length > 0);
  expect(offending).toEqual([]);
  expect(repeatedKeys('{"name":"a","pid":1,"x":{"name":"b"},"name":"c"}')).toEqual(['name']);
});

it("a log call's key that repeats a bound one is written under its own name", () => {
  const out: string[] = [];
  const log = createLogger('tlib-gateway', 'debug', { write: (chunk: string) => void out.push(chunk) }).child({ layer: 'sip' });
  log.info({ component: 'agent-7002', pid: 1, layer: 'tls', level: 'x', callId: 'c1' }, 'collides');
  expect(repeatedKeys(out[0]!)).toEqual([]);
  expect(JSON.parse(out[0]!)).toMatchObject({ component: 'tlib-gateway', pid: process.pid, layer: 'sip', component_: 'agent-7002', pid_: 1, layer_: 'tls', level_: 'x', callId: 'c1' });
});

it('a call is followed by its ConnID at info level: created, conference, listen-disconnect/reconnect with who and whom, a party released with cause', () => {
  const lines = raw.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.connId === connID && l.level === 30);
  const step = (name: string) => lines.filter((l) => l.step === name);
  expect(step('created').length).toBe(1);
  expect(step('established').length).toBeGreaterThan(0);
  expect(step('party-added')[0]).toMatchObject({ by: '7001', whom: '7003', msg: 'call party-added' });
  expect(step('listen-disconnect')).toEqual([expect.objectContaining({ by: '7001', whom: '7003', dns: expect.arrayContaining(['7001', '7002', '7003']) })]);
  expect(step('listen-reconnect')).toEqual([expect.objectContaining({ by: '7001', whom: '7003' })]);
  expect(step('released')[0]).toMatchObject({ released: ['7003'], by: '7003' });
  expect(typeof step('released')[0]!.cause).toBe('string');
  for (const l of lines) expect(l.component).toBe('SiteA-signaling');

  // The Call-IDs of its legs (7001's, 7002's, 7003's), as the SIP debug lines name them.
  const callIds = step('listen-disconnect')[0]!.callIds as string[];
  expect(callIds.length).toBe(3);
  expect(step('released')[0]!.callIds).toEqual(expect.arrayContaining(callIds));
  const sipCallIds = new Set(raw.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'SIP received').map((l) => l.callId));
  for (const id of callIds) expect(sipCallIds).toContain(id);
});

it('SIP messages are debug lines with the Call-ID', () => {
  const sip = raw.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'SIP received' || l.msg === 'SIP sent');
  expect(sip.every((l) => l.level === 20 && typeof l.callId === 'string' && l.callId !== '')).toBe(true);
  const methods = new Set(sip.map((l) => l.method));
  for (const m of ['REGISTER', 'INVITE', 'ACK', 'BYE']) expect(methods).toContain(m);
  expect(sip.some((l) => l.msg === 'SIP received' && l.status === 200 && l.method === 'INVITE')).toBe(true);
});
