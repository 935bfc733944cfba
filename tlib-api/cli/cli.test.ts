/**
 * `tlib` as a real subprocess (bin.js -> tsx) against a real site: gateway, nats-server,
 * rtpengine, media-controller and signaling with the real call model; SIP test phones answer.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conference, type Agent } from '../../test/e2e/site.js';
import { TlibClient } from '../client/index.js';
import { ROOT, startTlibSite, waitUntil, type TlibSite } from '../../test/tlib/harness.js';

const BIN = path.join(ROOT, 'tlib-api/cli/bin.js');
const MAIN = path.join(ROOT, 'tlib-api/cli/main.ts');
let h: TlibSite;
let a: Agent;
let b: Agent;
let c: Agent;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Each run starts Node and tsx: a second of CPU, far more on a loaded machine. */
const RUN_TIMEOUT_MS = 50_000;

/**
 * Starts `tlib`: through bin.js (the installed command) or, to spare one Node start, main.ts
 * under tsx exactly as bin.js runs it.
 */
function start(args: string[], token: string, via: 'bin' | 'main') {
  const command = via === 'bin' ? [BIN] : ['--import', 'tsx', MAIN];
  const child = spawn(process.execPath, [...command, ...args], { cwd: ROOT, env: { ...process.env, TLIB_URL: h.wsUrl, TLIB_TOKEN: token } });
  const run = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (run.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

function tlib(args: string[], token = 'agent-7001-secret', via: 'bin' | 'main' = 'main'): Promise<Run> {
  return new Promise((resolve, reject) => {
    const run = start(args, token, via);
    const timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`tlib ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS} ms: ${run.stdout} ${run.stderr}`));
    }, RUN_TIMEOUT_MS);
    run.child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: run.stdout, stderr: run.stderr });
    });
  });
}

let connID: string;

beforeAll(async () => {
  h = await startTlibSite();
  a = await h.site.agent('7001', 0);
  b = await h.site.agent('7002', 1);
  c = await h.site.agent('7003', 2);
  await h.phones('7004', '7005');
  connID = await conference(a, b, c);
});
afterAll(async () => {
  await h?.stop();
});

// Generous: subprocess starts are what a loaded machine slows down most.
const TEST_TIMEOUT_MS = 150_000;

describe('tlib', () => {
  it('registers a DN and shows its calls; exits 2 on usage errors, 3 on a refused token, 1 on an EventError', async () => {
    const [registered, usage] = await Promise.all([tlib(['register', '7001'], 'agent-7001-secret', 'bin'), tlib(['listen-disconnect', '--this', '7001'])]);
    expect(registered.code).toBe(0);
    expect(registered.stdout).toMatch(/EventRegistered ThisDN=7001 ReferenceID=1/);
    // The answer brings the conference 7001 is in.
    expect(registered.stdout).toContain(`EventPartyInfo ThisDN=7001 ConnID=${connID}`);
    expect(registered.stdout).toMatch(/parties: 7001@SiteA, 7002@SiteA, 7003@SiteA\n/);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing --other/);
    const [refused, forbidden] = await Promise.all([tlib(['register', '7001'], 'bad-token-123'), tlib(['register', '7002'])]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/HTTP 401 unknown token/);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stdout).toMatch(/EventError 53 ThisDN 7002 is not allowed/);
    expect(forbidden.stdout.match(/EventError/g)).toHaveLength(1);
  }, TEST_TIMEOUT_MS);

  it('runs as `npx tlib` (package.json bin) and says how to pass the token; query needs --conn', async () => {
    const help = await new Promise<Run>((resolve) => {
      const child = spawn('npx', ['--no-install', 'tlib', '--help'], { cwd: ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/--token <token>\s+bearer token \(env TLIB_TOKEN\), sent as "Authorization: Bearer <token>"/);
    expect(help.stdout).toContain('TLIB_TOKEN=agent-7001-secret npx tlib register 7001');
    const query = await tlib(['query', '7001']);
    expect(query.code).toBe(2);
    expect(query.stderr).toMatch(/missing --conn/);
  }, TEST_TIMEOUT_MS);

  it('makes a call and prints the answer as JSON', async () => {
    const watcher = await TlibClient.connect({ url: h.wsUrl, token: 'supervisor-secret', reconnect: false });
    try {
      await watcher.registerAddress({ thisDN: '7005' });
      const established = watcher.waitForEvent((e) => e.event === 'EventEstablished' && e.ThisDN === '7005', 30_000);
      const run = await tlib(['call', '7004', '7005', '--json'], 'supervisor-secret');
      expect(run.code).toBe(0);
      const event = JSON.parse(run.stdout.trim()) as { event: string; ThisDN: string; OtherDN: string; ConnID: string };
      expect(event).toMatchObject({ event: 'EventDialing', ThisDN: '7004', OtherDN: '7005' });
      // The phones answer on their own: a real call between 7004 and 7005.
      expect((await established).ConnID).toBe(event.ConnID);
      await watcher.releaseCall({ thisDN: '7005', connID: event.ConnID });
    } finally {
      await watcher.close();
    }
  }, TEST_TIMEOUT_MS);

  it('listen-disconnects a conference party: its phone hears music only', async () => {
    const run = await tlib(['listen-disconnect', '--this', '7001', '--other', '7003', '--conn', connID]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`EventListenDisconnected ThisDN=7001 OtherDN=7003 .*ConnID=${connID} CallState=Held`));
    await c.hears((heard) => heard.music && heard.tones.length === 0);
  }, TEST_TIMEOUT_MS);

  it('watches a DN until stopped, in JSON and readable form', async () => {
    const watchers = [start(['watch', '7002', '--json'], 'agent-7002-secret', 'main'), start(['watch', '7002'], 'agent-7002-secret', 'bin')] as const;
    const exited = watchers.map((w) => new Promise<number | null>((resolve) => w.child.on('close', (code) => resolve(code))));
    try {
      await waitUntil(() => watchers.every((w) => w.stdout.includes('EventRegistered')), 'both watchers registered', RUN_TIMEOUT_MS);
      // 7001's desktop brings 7003 back into the conversation: 7002 gets the copy and the new LCTParty.
      await a.desktop!.client.listenReconnect({ thisDN: '7001', otherDN: '7003', connID });
      const [json, readable] = watchers;
      await waitUntil(() => json.stdout.includes('EventListenReconnected') && readable.stdout.includes('EventListenReconnected'), 'EventListenReconnected printed', 30_000);
      const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; ConnID?: string; Extensions?: Record<string, unknown> });
      // Registering brought the state (7003 listen-disconnected); the reconnection's LCTParty has no state.
      const parties = lines.filter((l) => l.event === 'EventUserEvent' && l.ConnID === connID);
      expect(Object.values(parties[0]?.Extensions ?? {})).toContain('ListenDisconnectedHeld');
      await waitUntil(() => json.stdout.trim().split('\n').filter((l) => l.includes('LCTPartiesLength')).length >= 2, 'LCTParty after the reconnection', 30_000);
      expect(readable.stdout).toMatch(/parties: 7001@SiteA, 7002@SiteA, 7003@SiteA \(listen-disconnected\)\n/);
      expect(readable.stdout).toMatch(new RegExp(`EventListenReconnected ThisDN=7002 OtherDN=7003 .*ConnID=${connID}`));
    } finally {
      for (const w of watchers) w.child.kill('SIGTERM');
    }
    for (const code of await Promise.all(exited)) expect(code).toBe(0);
  }, TEST_TIMEOUT_MS);
});
