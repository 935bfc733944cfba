/**
 * Issue 16, point 8, end to end: `npm start -- --config config/ha.yaml` (SIP edge, two signaling
 * replicas, media-controller, gateway as processes), phones through the edge, desktops on the
 * gateway. SIGKILL of the replica owning a 3-party conference with a listen-disconnected party
 * loses nothing: audio goes on without a gap, T-Library and in-dialog requests are served by the
 * survivor (and relayed to it by the restarted replica), the leaving rule applies, new calls work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TEvent } from '../../common/tlib/messages.js';
import { Agent, conference, exactly, steady, until, watchAudio } from '../e2e/site.js';
import { toneFrequency, type Heard } from '../support/tone-phone.js';
import { configOnFreePorts, HA, launch, LaunchedSite, processLines, scrape } from './launched.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-ha-failover-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('config/ha.yaml: SIGKILL of the replica owning a conference', () => {
  it('the conference goes on through the edge: no audio gap, ListenReconnect at +2 s within 1 s, OPTIONS and BYE 2xx, the leaving rule, new calls', async () => {
    const run = launch(await configOnFreePorts(HA, tmp), tmp);
    const agents: Agent[] = [];
    try {
      await until(() => processLines(run.output()).size === 5, () => `the five process lines in:\n${run.output()}`, 60_000);
      const processes = processLines(run.output());
      const replicas = ['signaling-0', 'signaling-1'].map((name) => ({ name, ...processes.get(name)! }));
      const site = LaunchedSite.from(run.output());
      for (const [i, dn] of ['7001', '7002', '7003', '7004', '7005'].entries()) agents.push(await Agent.start(site, dn, toneFrequency(i), {}));
      const [a, b, c, d, e] = agents as [Agent, Agent, Agent, Agent, Agent];

      const connID = await conference(a, b, c);
      await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
      await c.hears(exactly([], true));
      const expected = new Map<Agent, (h: Heard) => boolean>([
        [a, steady(exactly([b.tone]))],
        [b, steady(exactly([a.tone]))],
        [c, steady(exactly([], true))],
      ]);
      for (const [agent, want] of expected) await agent.hears(want);

      const owned = await Promise.all(replicas.map((r) => scrape(r.metrics, 'huddle_calls_active')));
      expect(owned.reduce((x, y) => x + y)).toBe(1);
      const owner = replicas[owned.indexOf(1)]!;
      const survivor = replicas.find((r) => r !== owner)!;
      const eventsBefore = new Map(agents.map((x) => [x, x.desktop!.events.length]));

      const stopWatching = watchAudio(expected);
      const killed = Date.now();
      process.kill(owner.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, killed + 2000 - Date.now()));
      const gaps = await stopWatching();
      const asked = Date.now();
      await a.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7003' });
      const answeredMs = Date.now() - asked;
      expect(gaps).toEqual([]);
      expect(answeredMs).toBeLessThan(1000);
      await c.hears(exactly([a.tone, b.tone]));
      await a.hears(exactly([b.tone, c.tone]));
      expect(await scrape(survivor.metrics, 'huddle_calls_active')).toBe(1);

      // Each desktop was told the state of the call by the replica that took it.
      for (const agent of [a, b, c]) {
        await agent.desktop!.waitFor((ev: TEvent) => agent.desktop!.events.indexOf(ev) >= eventsBefore.get(agent)! && ev.event === 'EventPartyInfo', `resync of ${agent.dn}`);
      }
      // The launcher restarts the killed replica on the same address, the one the conference's
      // Record-Route names: once the edge's probe finds it up, the edge sends the phones' in-dialog
      // requests there, and it relays them to the replica that owns the call.
      await until(() => new RegExp(`^ {2}${owner.name} {2}pid \\d+ {2}restarted$`, 'm').test(run.output()), `the restart of ${owner.name}`, 30_000);
      await until(() => scrape(owner.metrics, 'huddle_calls_active').then(() => true, () => false), `the metrics of the restarted ${owner.name}`, 30_000);
      await new Promise((r) => setTimeout(r, 2000));
      for (const agent of [a, b, c]) expect((await agent.phone.calls.at(-1)!.request('OPTIONS')).status, `OPTIONS from ${agent.dn}`).toBe(200);
      expect(await scrape(owner.metrics, 'huddle_calls_active')).toBe(0);
      expect(await scrape(survivor.metrics, 'huddle_calls_active')).toBe(1);

      // The leaving rule, on the taken-over conference: disconnect 7003 again, 7001 hangs up,
      // 7002 and 7003 end in a two-party call.
      await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
      await c.hears(exactly([], true));
      expect((await a.phone.hangup())?.status).toBe(200);
      const joined = await b.desktop!.waitFor((ev) => ev.event === 'EventEstablished' && ev.PreviousConnID === connID, 'EventEstablished of the two-party call');
      expect(joined).toMatchObject({ OtherDN: '7003' });
      await c.hears(exactly([b.tone]));
      await b.hears(exactly([c.tone]));
      expect((await b.phone.hangup())?.status).toBe(200);
      await c.desktop!.waitFor((ev) => ev.event === 'EventReleased' && ev.ConnID === joined.ConnID, 'EventReleased of the two-party call');
      await until(() => c.phone.calls.length === 0, 'the BYE at 7003');

      // New calls through the same edge address, whichever replica takes them.
      await d.dial('7005');
      await d.hears(exactly([e.tone]));
      await e.hears(exactly([d.tone]));
      expect((await d.phone.hangup())?.status).toBe(200);
      await until(() => e.phone.calls.length === 0, 'the BYE at 7005');

      for (const agent of agents.splice(0)) await agent.close();
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    } finally {
      for (const agent of agents) await agent.close();
      run.child.kill('SIGKILL');
    }
  }, 180_000);
});
