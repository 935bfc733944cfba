/**
 * Fuzzing T-Library frames: random and mutated JSON into parseFrame, then the same kind of frames
 * over a WebSocket into a real gateway on a real site. Nothing may throw or crash, every frame is
 * answered (an EventError with a code and a message, or an event), and the connection stays usable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../common/tlib/errors.js';
import { RequestSchemas } from '../../common/tlib/requests.js';
import { startTlibSite, type TlibSite } from '../../test/tlib/harness.js';
import { openOk, type RawClient } from '../../test/tlib/raw-client.js';
import { parseFrame } from './protocol.js';

/** A deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const REQUESTS = [...Object.keys(RequestSchemas), 'Dance', '', 'registeraddress', '__proto__', 'constructor', 'toString'];
const KEYS = ['ThisDN', 'OtherDN', 'ConnID', 'Extensions', 'UserData', 'Reasons', 'DTMFDigits', 'Location', 'Colour', '__proto__', 'constructor', 'prototype'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** A random JSON value, nested up to `depth`. */
function randomValue(r: () => number, depth = 2): unknown {
  const k = Math.floor(r() * (depth > 0 ? 9 : 7));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return pick(r, [0, -1, 1.5, 2 ** 53, -(2 ** 31), Number.MAX_VALUE, 7001]);
    case 3: return pick(r, ['7001', '7002', '', ' ', '00a1b2c3d4e5f607', 'x'.repeat(300), '\u0000', '😀', '{"a":1}']);
    case 4: return String(Math.floor(r() * 1e6));
    case 5: return pick(r, ['7001', '7003', '*']);
    case 6: return '';
    case 7: return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth - 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, () => [pick(r, KEYS), randomValue(r, depth - 1)]));
  }
}

/** An object frame that names a request, with random attributes; `ref` is its ReferenceID. */
function randomFrame(r: () => number, ref: number): Record<string, unknown> {
  const frame: Record<string, unknown> = { request: pick(r, REQUESTS), ReferenceID: ref };
  if (r() < 0.9) frame.ThisDN = r() < 0.7 ? '7001' : randomValue(r);
  for (let i = Math.floor(r() * 4); i > 0; i--) frame[pick(r, KEYS)] = randomValue(r);
  return frame;
}

const JSON_NOISE = '{}[]":,\\ 0123456789.-eE tnul"';

/** The JSON text with a few characters replaced, deleted or inserted: mostly not JSON any more. */
function mutateText(text: string, r: () => number): string {
  let out = text;
  for (let i = 1 + Math.floor(r() * 4); i > 0; i--) {
    const pos = Math.floor(r() * (out.length + 1));
    const op = Math.floor(r() * 3);
    const ch = pick(r, [...JSON_NOISE]);
    if (op === 0) out = out.slice(0, pos) + ch + out.slice(pos + 1);
    else if (op === 1) out = out.slice(0, pos) + out.slice(pos + 1 + Math.floor(r() * 8));
    else out = out.slice(0, pos) + ch + out.slice(pos);
  }
  return out;
}

function expectWellFormedRefusal(error: { event: string; ErrorCode?: number; ErrorMessage?: string; ReferenceID?: number }): void {
  expect(error.event).toBe('EventError');
  expect(error.ErrorCode).toBe(ErrorCodes.InvalidAttribute);
  expect(typeof error.ErrorMessage === 'string' && error.ErrorMessage.length > 0).toBe(true);
  if (error.ReferenceID !== undefined) expect(Number.isSafeInteger(error.ReferenceID) && error.ReferenceID >= 0).toBe(true);
}

describe('parseFrame fuzzing', () => {
  it('answers 6,000 random, mutated and byte-garbage frames without throwing: a request or an EventError 53', () => {
    const r = rng(0x71b);
    let requests = 0;
    for (let i = 0; i < 6_000; i++) {
      const kind = i % 4;
      const text =
        kind === 0 ? JSON.stringify(randomFrame(r, i))
        : kind === 1 ? mutateText(JSON.stringify(randomFrame(r, i)), r)
        : kind === 2 ? JSON.stringify(randomValue(r, 3))
        : Buffer.from(Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256))).toString('utf8');
      let parsed: ReturnType<typeof parseFrame> | undefined;
      expect(() => (parsed = parseFrame(text)), `frame ${i}: ${text}`).not.toThrow();
      if (parsed!.ok) {
        requests++;
        expect(typeof parsed!.request.request).toBe('string');
        expect(parsed!.request.ThisDN).toBeDefined();
      } else expectWellFormedRefusal(parsed!.error);
    }
    // Some frames are whole requests, so the checks past JSON parsing are reached too.
    expect(requests).toBeGreaterThan(50);
    // Keys such as __proto__ in a frame must not reach Object.prototype.
    expect(Object.keys(Object.prototype)).toEqual([]);
  });
});

describe('T-Library frames fuzzing through a real gateway', () => {
  let h: TlibSite;
  let client: RawClient;

  beforeAll(async () => {
    // This test is about frames, not rates: the per-client limits (tested in limits.test.ts) are lifted.
    h = await startTlibSite({ edit: (yaml) => yaml.replace('  gateway:\n', '  gateway:\n    clientLimits: { requestsPerSecond: 100000, burst: 100000, maxInFlight: 10000 }\n') });
    client = await openOk(h.wsUrl, 'agent-7001-secret');
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await h?.stop();
  });

  it('answers every fuzzed frame with an EventError or an event, and the connection stays usable', async () => {
    const r = rng(0xf4a3e);
    const withRef: number[] = [];
    let withoutRef = 0;
    for (let i = 0; i < 800; i++) {
      const ref = 1000 + i;
      const kind = i % 4;
      if (kind === 0 || kind === 1) {
        // Attribute fuzzing on a frame the gateway can answer by its ReferenceID.
        client.send(JSON.stringify(randomFrame(r, ref)));
        withRef.push(ref);
      } else if (kind === 2) {
        // Not JSON, or JSON that is not an object naming a request with a valid ReferenceID.
        client.send(pick(r, ['{not json', '', '[]', 'null', '42', '"MakeCall"', '{"request":1}', '{"ReferenceID":-1,"request":"MakeCall"}', mutateText('{"request":"MakeCall","ThisDN":"7001"}', r).replace(/ReferenceID/g, '')]));
        withoutRef++;
      } else {
        client.ws.send(Buffer.from(Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256))), { binary: true });
        withoutRef++;
      }
    }
    for (const ref of withRef) {
      const answer = await client.next((e) => e.ReferenceID === ref, 15_000);
      if (answer.event === 'EventError') expect(typeof answer.ErrorCode === 'number' && typeof answer.ErrorMessage === 'string').toBe(true);
    }
    await expect.poll(() => client.events.filter((e) => e.event === 'EventError' && e.ReferenceID === undefined).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(withoutRef);
    for (const e of client.events.filter((x) => x.event === 'EventError')) expect(typeof e.ErrorCode).toBe('number');

    client.send({ request: 'RegisterAddress', ReferenceID: 99_999, ThisDN: '7001' });
    expect(await client.next((e) => e.ReferenceID === 99_999)).toMatchObject({ event: 'EventRegistered', ThisDN: '7001' });
  }, 90_000);
});
