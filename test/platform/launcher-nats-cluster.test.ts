/**
 * `npm start` with spec.nats.embedded.servers 3 and spec.nats.replicas 3 (issue 16 point 7): the
 * launcher runs a 3-server JetStream cluster on loopback, the site's buckets at 3 replicas; a
 * nats-server killed is restarted by the launcher and the site keeps serving calls meanwhile.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/supervisor/ports.js';
import { Agent, exactly, until } from '../e2e/site.js';
import { alive, configOnFreePorts, launch, LaunchedSite, LOCAL, showingOutput } from './launched.js';
import { connectNats } from '../../common/nats/connect.js';
import { toneFrequency } from '../support/tone-phone.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-launcher-cluster-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('npm start with an embedded 3-server NATS cluster', () => {
  it('runs the cluster with the buckets at 3 replicas, survives a killed nats-server and stops everything on SIGTERM', async () => {
    const sip = await freePort();
    const dataDir = path.join(tmp, `data-${sip}`);
    const file = await configOnFreePorts(LOCAL, tmp, { sip, edit: (t) => t.replace('  options:\n    sip-enable-call-info', '  nats: { embedded: { servers: 3 }, replicas: 3 }\n  options:\n    sip-enable-call-info') });
    const run = launch(file, tmp);
    const { child, output, exited } = run;
    const agents: Agent[] = [];
    try {
      await showingOutput(run, async () => {
        await until(() => /Metrics +http:\/\/\S+\/metrics/.test(output()), () => `the endpoint lines in:\n${output()}`, 60_000);
        const natsUrl = /NATS +(\S+) \(embedded, 3-server JetStream cluster\)/.exec(output())?.[1];
        expect(natsUrl, output()).toBeDefined();
        expect(natsUrl!.split(',')).toHaveLength(3);

        const pidFiles = [0, 1, 2].map((i) => path.join(dataDir, 'site-a', `nats-${i}`, 'nats-server.pid'));
        const pids = () => pidFiles.map((f) => Number(readFileSync(f, 'utf8')));
        expect(pids().every(alive)).toBe(true);

        const site = LaunchedSite.from(output());
        const a = await Agent.start(site, '7001', toneFrequency(0), {});
        const b = await Agent.start(site, '7002', toneFrequency(1), {});
        agents.push(a, b);
        await a.dial('7002');
        await a.hears(exactly([b.tone]));

        const victim = pids()[0]!;
        process.kill(victim, 'SIGKILL');
        await until(() => !alive(victim), 'the killed nats-server gone', 5000);
        await b.hears(exactly([a.tone]));
        // The launcher's supervisor starts it again, on the same ports and store: it rejoins.
        await until(() => existsSync(pidFiles[0]!) && pids()[0] !== victim && alive(pids()[0]!), 'the nats-server restarted', 15_000);
        // The call's ConnID reaches 7001's desktop in EventEstablished or, when that was on its way
        // through the killed server, in the resync that follows the reconnect (EventPartyInfo).
        const learnt = await a.desktop!.waitFor((e) => e.event === 'EventEstablished' || (e.event === 'EventPartyInfo' && !e.ReferenceID), 'EventEstablished or its resync');
        const held = await a.desktop!.client.holdCall({ thisDN: '7001', connID: learnt.ConnID! });
        expect(held.event).toBe('EventHeld');
        await b.hears(exactly([], true));

        // Each bucket's stream has a current copy on all three servers, the restarted one included (read as
        // signaling, with the password the launcher generated).
        const stored = readFileSync(path.join(dataDir, 'site-a', 'nats-0', 'nats-server.conf'), 'utf8');
        const signaling = /"user":"signaling","password":"([^"]+)"/.exec(stored.replace(/\s/g, ''))?.[1];
        expect(signaling).toBeDefined();
        const nc = await connectNats(natsUrl!, 'launcher-cluster-test', undefined, { role: 'signaling', user: 'signaling', password: signaling! });
        try {
          // No API check: it would wait for a meta leader, which the kill may have taken.
          const jsm = await jetstream(nc).jetstreamManager(false);
          for (const bucket of ['huddle-config', 'huddle-registrations']) {
            await until(async () => {
              const info = await jsm.streams.info(`KV_${bucket}`).catch(() => undefined);
              return info?.config.num_replicas === 3 && (info.cluster?.replicas ?? []).filter((r) => r.current).length === 2;
            }, `${bucket} at 3 current replicas`, 30_000);
          }
        } finally {
          await nc.close();
        }

        const all = pids();
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(all.filter(alive)).toEqual([]);
      });
    } finally {
      for (const agent of agents) await agent.close();
      child.kill('SIGKILL');
    }
  });
});
