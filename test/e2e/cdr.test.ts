/**
 * Call detail records on a real site (nats-server, rtpengine, media-controller, signaling, gateway,
 * tone phones): a 3-party conference with a listen-disconnect and a reconnect (heard), then its
 * release; its record, read through the gateway by `tlib cdr` and by the SDK's functions, has the
 * parties, the interval and the times of the events the desktops got, in order. A token that may
 * not read CDRs reads nothing.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallDetailRecord } from '../../common/nats/cdr-contract.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { CdrAccessError, followCdrs, listCdrs } from '../../tlib-api/client/index.js';
import { conference, exactly, metric, Site, until, type Agent } from './site.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** `tlib <args>` as a subprocess (main.ts under tsx, as bin.js runs it); resolves with its exit code and output. */
function tlib(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tlib-api/cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tlib ${args.join(' ')} did not finish: ${stdout} ${stderr}`));
    }, 50_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('call detail records', () => {
  let site: Site;
  let a: Agent, b: Agent, c: Agent;

  beforeAll(async () => {
    site = await Site.start();
    [a, b, c] = await Promise.all([site.agent('7001', 1), site.agent('7002', 2), site.agent('7003', 3)]);
  }, 60_000);
  afterAll(async () => {
    await site?.stop();
  });

  it('a conference with a listen-disconnect and reconnect, then released: tlib cdr shows its parties, the interval and the times, in order', async () => {
    const reader = { url: site.gatewayUrl, token: site.supervisorToken };
    // Following from before the call: the record arrives on its own when the call ends.
    const stopFollowing = new AbortController();
    const followed: CallDetailRecord[] = [];
    const following = (async () => {
      for await (const record of followCdrs({ ...reader, dn: '7003', signal: stopFollowing.signal })) followed.push(record);
    })();

    const connID = await conference(a, b, c);
    const event = (agent: Agent, name: TEvent['event']) => agent.desktop!.waitFor((e) => e.event === name && e.ConnID === connID, `${name} on ${agent.dn}`);
    await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
    await c.hears(exactly([], true));
    await a.hears(exactly([b.tone]));
    await b.desktop!.client.listenReconnect({ thisDN: '7002', connID, otherDN: '7003' });
    await c.hears(exactly([a.tone, b.tone]));
    const callIds = [a, b, c].map((x) => x.phone.calls.at(-1)!.callId);
    await c.phone.hangup();
    await event(a, 'EventPartyDeleted');
    await a.phone.hangup();
    const released = await event(b, 'EventReleased');

    await until(() => followed.length > 0, 'the followed record', 10_000);
    const [record] = await listCdrs({ ...reader, connId: connID });
    expect(record).toBeDefined();
    expect(followed).toEqual([record]);
    expect(await metric(site, 'huddle_cdr_stored_total')).toBe(1);

    const established = await event(a, 'EventEstablished');
    const added = await event(a, 'EventPartyAdded');
    const disconnected = await event(a, 'EventListenDisconnected');
    const reconnected = await event(a, 'EventListenReconnected');
    const deleted = await event(a, 'EventPartyDeleted');
    expect(record).toMatchObject({
      version: 1,
      connId: connID,
      previousConnIds: [],
      site: 'SiteA',
      type: 'Internal',
      conference: true,
      dns: ['7001', '7002', '7003'],
      trunks: [],
      release: { cause: 'Ok', by: '7001' },
      answer: established.Time,
      end: released.Time,
      listenDisconnects: [{ by: '7001', whom: '7003', from: disconnected.Time, to: reconnected.Time, reconnectedBy: '7002' }],
    });
    expect([...record!.callIds].sort()).toEqual([...callIds].sort());
    expect(record!.parties.map((p) => [p.alias, p.dn, p.role, p.callId])).toEqual([
      ['7001', '7001', 'ConferenceMember', callIds[0]],
      ['7002', '7002', 'ConferenceMember', callIds[1]],
      ['7003', '7003', 'ConferenceMember', callIds[2]],
    ]);
    const [p1, p2, p3] = record!.parties;
    expect(p3).toMatchObject({ connected: added.Time, left: deleted.Time });
    // One timeline: each time is the model's clock at that step, as the events carried it.
    const timeline = [record!.start, p1!.joined, p2!.joined, record!.answer!, p1!.connected!, p2!.connected!, p3!.joined, p3!.connected!, disconnected.Time!, reconnected.Time!, p3!.left, p1!.left, p2!.left, record!.end];
    expect(timeline).toEqual([...timeline].sort((x, y) => x - y));
    expect(record!.start).toBe(p1!.joined);
    expect(p1!.left).toBe(record!.end);

    // The same record through the command line, as JSON and for people.
    const env = { TLIB_URL: site.gatewayUrl, TLIB_TOKEN: site.supervisorToken };
    const [asJson, forPeople] = await Promise.all([tlib(['cdr', '--conn', connID, '--json'], env), tlib(['cdr', '--dn', '7003', '--since', '1h'], env)]);
    expect(asJson.code, asJson.stderr).toBe(0);
    expect(asJson.stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([record]);
    expect(forPeople.code, forPeople.stderr).toBe(0);
    expect(forPeople.stdout).toContain(`${connID} Internal`);
    expect(forPeople.stdout).toContain('release=Ok by 7001');
    expect(forPeople.stdout).toMatch(/listen-disconnect 7003 by 7001 \S+-\S+ reconnected by 7002/);

    // Filters: another DN's calls, or a time after the call, find nothing.
    expect(await listCdrs({ ...reader, dn: '7005' })).toEqual([]);
    expect(await listCdrs({ ...reader, since: record!.end + 1 })).toEqual([]);
    stopFollowing.abort();
    await following;
  }, 90_000);

  it('a token without cdr: true reads nothing (403), nor does a request without a token (401)', async () => {
    const url = site.gatewayUrl;
    await expect(listCdrs({ url, token: 'agent-7001-secret' })).rejects.toMatchObject({ status: 403 });
    await expect(listCdrs({ url })).rejects.toBeInstanceOf(CdrAccessError);
    await expect(listCdrs({ url })).rejects.toMatchObject({ status: 401 });
    const refused = await tlib(['cdr'], { TLIB_URL: url, TLIB_TOKEN: 'agent-7001-secret' });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/403 the token of agent-7001 may not read call detail records/);
    expect(refused.stdout).toBe('');
  }, 60_000);
});
