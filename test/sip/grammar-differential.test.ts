/**
 * The grammar differential: every request of the grammar-derived corpus
 * (signaling/sip/corpus) goes over UDP to a real Kamailio running its sanity module
 * (test/sip/kamailio-sanity.cfg: 200 when the checks pass, sanity's own refusal otherwise) and to
 * our stack with a UAS answering the same way. Every difference in verdict must be the one
 * signaling/sip/README.md explains in its table, no more and no fewer.
 *
 * A verdict is `accept` (the application's 200), the refusal's status, or `drop` (no answer).
 * Refused by one and accepted by the other is a difference; so are two refusals with different
 * statuses. A drop against a 4xx is not: both refuse, and Kamailio drops what its core parser
 * cannot address an answer to, where we still answer when we can.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort } from '../../common/supervisor/ports.js';
import { buildCorpus, type CorpusMessage } from '../../signaling/sip/corpus/corpus.js';
import { createSipStack } from '../../signaling/sip/index.js';
import type { SipStack } from '../../signaling/sip/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const README = path.join(here, '../../signaling/sip/README.md');
/** How long a target may take to answer before its verdict is `drop` (loopback answers take < 1 ms). */
const ANSWER_WAIT_MS = 150;
/** The second, concurrent chance of every message that got no answer. */
const RETRY_WAIT_MS = 1500;

type Verdict = 'accept' | 'drop' | number;

interface Difference {
  id: string;
  ours: string;
  kamailio: string;
}

const requests = buildCorpus().filter((m) => m.kind === 'request');

let kamailio: ChildProcess | undefined;
let kamailioDir: string | undefined;
let kamailioPort = 0;
let stack: SipStack | undefined;

/** Sends datagrams from one socket and hands each answer to the message it belongs to (by its branch or Call-ID). */
class Prober {
  private readonly socket: Socket = createSocket('udp4');
  private readonly waiting = new Set<{ marks: string[]; resolve: (answer: string) => void }>();

  async open(): Promise<this> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.socket.on('message', (data) => {
      const text = data.toString('latin1');
      for (const w of this.waiting) {
        if (w.marks.length > 0 && !w.marks.some((mark) => text.includes(mark))) continue;
        this.waiting.delete(w);
        w.resolve(text);
        return;
      }
    });
    return this;
  }

  /** The answer to `m` from `port`, or `drop` if none came within `waitMs`; answers to other messages are skipped. */
  async verdict(m: CorpusMessage, port: number, waitMs = ANSWER_WAIT_MS): Promise<Verdict> {
    const marks = [...m.text.matchAll(/z9hG4bK[\w-]+|corpus-\d+@/g)].map((x) => x[0]);
    const text = await new Promise<string | undefined>((resolve) => {
      const w = { marks, resolve };
      this.waiting.add(w);
      this.socket.send(Buffer.from(m.text), port, '127.0.0.1');
      setTimeout(() => {
        this.waiting.delete(w);
        resolve(undefined);
      }, waitMs);
    });
    if (text === undefined) return 'drop';
    const status = Number(/^SIP\/2\.0 (\d{3})/i.exec(text)?.[1]);
    return status === 200 ? 'accept' : status;
  }

  close(): void {
    this.socket.close();
  }
}

async function startKamailio(): Promise<void> {
  const bin = findBinary('kamailio', 'kamailio');
  kamailioPort = await freePort();
  kamailioDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-kamailio-sanity-'));
  const args = ['-f', path.join(here, 'kamailio-sanity.cfg'), '-DD', '-E', '-l', `udp:127.0.0.1:${kamailioPort}`, '-P', path.join(kamailioDir, 'pid'), '-Y', kamailioDir, '-m', '64', '-M', '8'];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  kamailio = child;
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  // Ready when it answers a valid request; bounded, and a dead child ends the wait at once.
  const probe = await new Prober().open();
  try {
    const hello = requests.find((m) => m.id === 'Request-Line/options')!;
    for (let i = 0; i < 50; i++) {
      if (child.exitCode !== null) break;
      if ((await probe.verdict(hello, kamailioPort)) === 'accept') return;
    }
  } finally {
    probe.close();
  }
  throw new Error('kamailio did not start:\n' + log);
}

async function startOurs(): Promise<SipStack> {
  // A long T1: a 2xx to INVITE is not retransmitted (and no stray answer reaches the prober) while the corpus runs.
  const sip = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers: { t1Ms: 60_000, t2Ms: 60_000 } });
  sip.onRequest((req) => req.respond(200, { reason: 'Parsed' }));
  return sip;
}

/** The explained differences: the rows of the README table under "Grammar differential". */
function explained(): Difference[] {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('## Grammar differential against Kamailio'));
  const rows: Difference[] = [];
  for (const line of section.split('\n')) {
    const row = /^\| `([^`]+)` \| (\S+) \| (\S+) \|/.exec(line);
    if (row) rows.push({ id: row[1]!, ours: row[2]!, kamailio: row[3]! });
    else if (rows.length > 0 && !line.startsWith('|')) break;
  }
  return rows;
}

function differs(ours: Verdict, theirs: Verdict): boolean {
  if ((ours === 'accept') !== (theirs === 'accept')) return true;
  return typeof ours === 'number' && typeof theirs === 'number' && ours !== theirs;
}

beforeAll(async () => {
  [, stack] = await Promise.all([startKamailio(), startOurs()]);
}, 20_000);

afterAll(async () => {
  await stack?.close(0);
  if (kamailio && kamailio.exitCode === null) {
    const exited = new Promise((r) => kamailio!.once('exit', r));
    kamailio.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (kamailio.exitCode === null) kamailio.kill('SIGKILL');
  }
  if (kamailioDir) rmSync(kamailioDir, { recursive: true, force: true });
});

describe('grammar differential against Kamailio (sanity module)', () => {
  it('every difference in verdict on the corpus is one README.md explains', async () => {
    const oursPort = stack!.addresses[0]!.port;
    const [toKamailio, toOurs] = await Promise.all([new Prober().open(), new Prober().open()]);
    const differences: Difference[] = [];
    try {
      const verdicts: [CorpusMessage, Verdict, Verdict][] = [];
      for (const m of requests) verdicts.push([m, ...(await Promise.all([toOurs.verdict(m, oursPort), toKamailio.verdict(m, kamailioPort)]))]);
      // A drop may be a slow answer on a loaded machine: ask again, all at once, with a longer wait.
      await Promise.all(
        verdicts.map(async (v) => {
          if (v[1] === 'drop') v[1] = await toOurs.verdict(v[0], oursPort, RETRY_WAIT_MS);
          if (v[2] === 'drop') v[2] = await toKamailio.verdict(v[0], kamailioPort, RETRY_WAIT_MS);
        }),
      );
      for (const [m, ours, theirs] of verdicts) if (differs(ours, theirs)) differences.push({ id: m.id, ours: String(ours), kamailio: String(theirs) });
    } finally {
      toKamailio.close();
      toOurs.close();
    }
    expect(requests.length).toBeGreaterThan(100);
    const byId = (a: Difference, b: Difference) => a.id.localeCompare(b.id);
    expect(differences.sort(byId)).toEqual(explained().sort(byId));
  }, 60_000);
});
