/** A real softphone (Debian baresip 1.0) calling our stack and called by it, over UDP. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { createSipStack, type Dialog, type SipRequest, type SipStack } from '../../signaling/sip/index.js';
import { writeBaresipConfig } from '../support/baresip.js';

// An 8 kHz mono WAV from the repo is the microphone; what baresip hears goes to a file. No sound device needed.
const TONE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/music/on_hold.wav');
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

interface Baresip {
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startBaresip(commands: string[]): Promise<Baresip> {
  const bin = findBinary('baresip', 'baresip');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-baresip-'));
  const port = await freePort();
  const rtp = await freePortRange(20);
  writeBaresipConfig(dir, { port, rtp, tone: TONE });
  writeFileSync(path.join(dir, 'accounts'), `<sip:bob@127.0.0.1:${port}>;regint=0;answermode=auto\n`);
  // -t bounds its life whatever happens to the test.
  const child: ChildProcess = spawn(bin, ['-f', dir, '-t', '40', ...commands.flatMap((c) => ['-e', c])], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 15_000;
  while (!out.includes('baresip is ready')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('baresip did not start:\n' + out);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { port, output: () => out, exited };
}

async function ourStack(): Promise<SipStack> {
  const s = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => s.close(0));
  return s;
}

async function until<T>(get: () => T | undefined, what: string, out: () => string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; baresip said:\n${out()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('baresip', () => {
  it('calls us: INVITE with its SDP offer, our 200, its ACK, our BYE answered 200', async () => {
    const stack = await ourStack();
    let invite: SipRequest | undefined;
    let dialog: Dialog | undefined;
    let acked = false;
    stack.onRequest((req) => {
      if (req.method !== 'INVITE') return req.respond(200);
      invite = req.message;
      req.respond(180);
      dialog = req.accept({ body: OFFER });
      dialog.onAck(() => (acked = true));
    });
    const bs = await startBaresip([`/dial sip:svc@127.0.0.1:${stack.addresses[0]!.port}`]);
    await until(() => (acked ? true : undefined), 'ACK from baresip', bs.output);
    expect(invite!.body.toString()).toMatch(/m=audio \d+ RTP\/AVP[ 0-9]* 0/);
    expect(dialog!.state).toBe('confirmed');
    // Let a little media flow so baresip has a real call, then hang up from our side.
    await new Promise((r) => setTimeout(r, 500));
    expect(dialog!.state, bs.output()).toBe('confirmed');
    const bye = await dialog!.bye();
    expect(bye.status, bs.output()).toBe(200);
  });

  it('is called by us: auto-answers with its SDP answer, takes our ACK, answers our BYE', async () => {
    const stack = await ourStack();
    const bs = await startBaresip([]);
    const call = stack.invite(`sip:bob@127.0.0.1:${bs.port}`, { from: 'sip:huddle@127.0.0.1', body: OFFER });
    const res = await call.result;
    if (!res.ok) throw new Error(`baresip did not answer: ${res.status} ${res.reason}\n${bs.output()}`);
    expect(res.response.body.toString()).toContain('m=audio');
    expect(res.response.body.toString()).toMatch(/PCMU\/8000/);
    await until(() => (/Call established|established/i.test(bs.output()) ? true : undefined), 'baresip to report the call', bs.output);
    await new Promise((r) => setTimeout(r, 500));
    expect(res.dialog.state, bs.output()).toBe('confirmed');
    const bye = await res.dialog.bye();
    expect(bye.status, bs.output()).toBe(200);
  });
});
