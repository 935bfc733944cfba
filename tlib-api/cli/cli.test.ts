/** `tlib` as a real subprocess (bin.js -> tsx) against a real gateway, NATS and the contract responder. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTlibHarness, waitUntil, type TlibHarness } from '../../test/tlib/harness.js';

const BIN = path.join(ROOT, 'tlib-api/cli/bin.js');
let h: TlibHarness;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function tlib(args: string[], token = 'agent-7001-secret', env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, TLIB_URL: h.gateway.wsUrl, TLIB_TOKEN: token, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tlib ${args.join(' ')} did not finish: ${stdout} ${stderr}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  h = await startTlibHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('tlib', () => {
  it('registers a DN and shows its calls', async () => {
    const call = h.signaling.addCall([
      { DN: '7001', location: 'SiteA' },
      { DN: '7003', location: 'SiteA', listenDisconnected: true },
    ]);
    const run = await tlib(['register', '7001']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/EventRegistered ThisDN=7001 ReferenceID=1/);
    expect(run.stdout).toContain(`EventPartyInfo ThisDN=7001 ConnID=${call.connID}`);
    expect(run.stdout).toContain('parties: 7001@SiteA, 7003@SiteA (listen-disconnected)');
    h.signaling.calls.delete(call.connID);
  });

  it('makes a call and prints the answer as JSON', async () => {
    const run = await tlib(['call', '7001', '7002', '--json']);
    expect(run.code).toBe(0);
    const event = JSON.parse(run.stdout.trim()) as { event: string; ThisDN: string; OtherDN: string; ConnID: string };
    expect(event).toMatchObject({ event: 'EventDialing', ThisDN: '7001', OtherDN: '7002' });
    expect(h.signaling.calls.has(event.ConnID)).toBe(true);
  });

  it('listen-disconnects a party; an EventError exits 1 with its code', async () => {
    const call = h.signaling.addCall([
      { DN: '7001', location: 'SiteA' },
      { DN: '7003', location: 'SiteA' },
    ]);
    const args = ['--this', '7001', '--other', '7003', '--conn', call.connID];
    const [done, release] = await Promise.all([tlib(['listen-disconnect', ...args]), tlib(['release', '7001', '--conn', '0123456789abcdef'])]);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`EventListenDisconnected ThisDN=7001 OtherDN=7003 ConnID=${call.connID} CallState=Held`));
    expect(release.code).toBe(1);
    expect(release.stdout).toMatch(/EventError 56/);
    const twice = await tlib(['listen-disconnect', ...args]);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toMatch(/EventError 43 Already in the requested state/);
  });

  it('reports usage errors, refused tokens and forbidden DNs', async () => {
    const [usage, refused, forbidden] = await Promise.all([
      tlib(['listen-disconnect', '--this', '7001']),
      tlib(['register', '7001'], 'bad-token-123'),
      tlib(['register', '7002']),
    ]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing --other/);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/HTTP 401 unknown token/);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stdout).toMatch(/EventError 53 ThisDN 7002 is not allowed/);
    expect(forbidden.stdout.match(/EventError/g)).toHaveLength(1);
  });

  it('watches a DN until stopped, in JSON or readable form', async () => {
    for (const json of [true, false]) {
      const child = spawn(process.execPath, [BIN, 'watch', '7002', ...(json ? ['--json'] : [])], {
        env: { ...process.env, TLIB_URL: h.gateway.wsUrl, TLIB_TOKEN: 'agent-7002-secret' },
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      try {
        await waitUntil(() => stdout.includes('EventRegistered'), 'watch registered', 30_000);
        const call = h.signaling.addCall([
          { DN: '7002', location: 'SiteA' },
          { DN: '7004', location: 'SiteB', listenDisconnected: true },
        ]);
        h.signaling.publish('7002', h.signaling.lctParty(call, '7002'));
        await waitUntil(() => stdout.includes(call.connID), 'event printed', 30_000);
        if (json) {
          const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; Extensions?: Record<string, unknown> });
          expect(lines.at(-1)).toMatchObject({ event: 'EventUserEvent', Extensions: { LCTParty1_state: 'ListenDisconnectedHeld' } });
        } else {
          expect(stdout).toContain('parties: 7002@SiteA, 7004@SiteB (listen-disconnected)');
        }
        h.signaling.calls.delete(call.connID);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    }
  });
});
