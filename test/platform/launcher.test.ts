/**
 * `npm start` as a person runs it: a real launcher process with its real children, on free ports.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort } from '../../common/supervisor/ports.js';
import { Agent, conference, exactly, until } from '../e2e/site.js';
import { alive, configOnFreePorts, HA, launch, LaunchedSite, LOCAL, processLines, type ShippedConfig } from './launched.js';
import { toneFrequency, type Heard } from '../support/tone-phone.js';

const root = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-launcher-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The listen ports and media range a config file names, to be moved to free ones. */
const SITE_B: ShippedConfig = { file: 'config/two-site-b.yaml', sip: 5062, gateway: 7100, metrics: 9465, portMin: 41000, portMax: 41999 };

/** Polls `check`; a time-out names `what` and shows `output` (a launcher's, say). */
describe('npm start', () => {
  it('exits non-zero naming the field when a DN type is unknown', async () => {
    const file = path.join(tmp, 'bad-type.yaml');
    writeFileSync(file, readFileSync(path.join(root, 'config/local.yaml'), 'utf8').replace('number: "7003", type: Extension', 'number: "7003", type: Phone'));
    const run = launch(file, tmp);
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/SipDN site-a-7003\): spec\.type: must be one of "Extension"/);
  });

  it('exits non-zero naming the field when music-listen-disconnect is empty', async () => {
    const file = path.join(tmp, 'bad-music.yaml');
    writeFileSync(file, readFileSync(path.join(root, 'config/local.yaml'), 'utf8').replace('music-listen-disconnect: music/on_hold', 'music-listen-disconnect: ""'));
    const run = launch(file, tmp);
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/spec\.options\.music-listen-disconnect: must not be empty/);
  });

  it('warns at start naming each DN that may register and call without credentials', async () => {
    const optedOut = (text: string) =>
      text.replace('number: "7005", type: Extension, options: { password: { value: secret-7005 } }', 'number: "7005", type: Extension, options: { sip-allow-unauthenticated-insecure: true }');
    const file = await configOnFreePorts(LOCAL, tmp, { edit: optedOut });
    expect(readFileSync(file, 'utf8')).toContain('sip-allow-unauthenticated-insecure: true');
    const run = launch(file, tmp);
    try {
      await until(() => /Metrics +http:\/\/\S+\/metrics/.test(run.output()), () => `the endpoint lines in:\n${run.output()}`, 30_000);
      expect(run.output()).toMatch(/INSECURE: DN 7005 registers and calls without credentials/);
      expect(run.output()).not.toMatch(/INSECURE: DN 700[1-4]/);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it('prints its endpoints, serves metrics, and stops everything on SIGTERM within 5 s', async () => {
    const file = await configOnFreePorts(LOCAL, tmp);
    const run = launch(file, tmp);
    try {
      await until(() => /Metrics +http:\/\/\S+\/metrics/.test(run.output()), () => `the endpoint lines in:\n${run.output()}`, 30_000);
      const out = run.output();
      expect(out).toMatch(/SIP +udp 127\.0\.0\.1:\d+/);
      expect(out).toMatch(/T-Library +ws:\/\/127\.0\.0\.1:\d+\/tlib/);
      const metricsUrl = /Metrics +(http:\/\/\S+\/metrics)/.exec(out)![1]!;
      const metrics = await fetch(metricsUrl);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('process_cpu_user_seconds_total');
      const ready = await fetch(metricsUrl.replace('/metrics', '/readyz'));
      expect(await ready.text()).toBe('ready\n');

      const stateDir = path.join(tmp, `data-${LaunchedSite.from(out).sipPort}`, 'site-a');
      const pids = readdirSync(stateDir)
        .filter((f) => f.endsWith('.pid'))
        .map((f) => Number(readFileSync(path.join(stateDir, f), 'utf8')));
      expect(pids).toHaveLength(2);
      expect(pids.every(alive)).toBe(true);

      // The launcher exits 1 by itself when stopping takes longer than its 4.8 s grace.
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('an edit of music-listen-disconnect in the config file applies to the next ListenDisconnect, without a restart', async () => {
    const file = await configOnFreePorts(LOCAL, tmp);
    const run = launch(file, tmp);
    const agents: Agent[] = [];
    try {
      await until(() => /Metrics +http:\/\/\S+\/metrics/.test(run.output()), () => `the endpoint lines in:\n${run.output()}`, 30_000);
      const site = LaunchedSite.from(run.output());
      for (const [i, dn] of ['7001', '7002', '7003'].entries()) agents.push(await Agent.start(site, dn, toneFrequency(i), {}));
      const [a, b, c] = agents as [Agent, Agent, Agent];
      const connID = await conference(a, b, c);
      const request = { thisDN: '7001', connID, otherDN: '7003' };
      await a.desktop!.client.listenDisconnect(request);
      await c.hears(exactly([], true));
      await a.desktop!.client.listenReconnect(request);
      await c.hears(exactly([a.tone, b.tone]));

      const jingle = toneFrequency(6);
      execFileSync(findBinary('sox', 'sox'), ['-n', '-r', '8000', '-c', '1', '-b', '16', path.join(tmp, 'jingle.wav'), 'synth', '1', 'sine', String(jingle), 'vol', '0.3']);
      writeFileSync(file, readFileSync(file, 'utf8').replace('music-listen-disconnect: music/on_hold', `music-listen-disconnect: ${path.join(tmp, 'jingle')}`));
      // The launcher republishes the file when it sees the edit; the option is read at request time,
      // so a request made before that still gets the old music: ask again until the edit shows.
      let heard: Heard | undefined;
      for (let attempt = 0; attempt < 20; attempt++) {
        await a.desktop!.client.listenDisconnect(request);
        heard = await c.hears((h) => h.music || (h.tones.length === 1 && h.tones[0] === jingle));
        if (!heard.music) break;
        await a.desktop!.client.listenReconnect(request);
        await c.hears(exactly([a.tone, b.tone]));
      }
      expect(heard).toMatchObject({ music: false, tones: [jingle] });
      await a.hears(exactly([b.tone]));
      expect(run.child.exitCode).toBeNull();
    } finally {
      for (const agent of agents) await agent.close();
      run.child.kill('SIGKILL');
    }
  });

  it('runs the two-site example from a second config file: a call from site A reaches site B over the inter-trunk', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const fileA = await configOnFreePorts(LOCAL, tmp, { sip: portA, edit: (t) => t.replace('contact: sip:127.0.0.1:5062', `contact: sip:127.0.0.1:${portB}`) });
    const fileB = await configOnFreePorts(SITE_B, tmp, { sip: portB, edit: (t) => t.replace('contact: sip:127.0.0.1:5060', `contact: sip:127.0.0.1:${portA}`) });
    // Both at the same moment: each must end up with a NATS and an rtpengine of its own.
    const runs = [launch(fileA, tmp), launch(fileB, tmp)];
    const [runA, runB] = runs as [ReturnType<typeof launch>, ReturnType<typeof launch>];
    const agents: Agent[] = [];
    try {
      for (const run of runs) await until(() => /rtpengine +ng \S+/.test(run.output()), () => `the endpoint lines in:\n${run.output()}`, 30_000);
      expect(runB.output()).toContain('site SiteB');
      const own = (run: typeof runA, what: RegExp) => what.exec(run.output())?.[1];
      expect(own(runA, /NATS +(\S+)/)).not.toBe(own(runB, /NATS +(\S+)/));
      expect(own(runA, /rtpengine +ng (\S+)/)).not.toBe(own(runB, /rtpengine +ng (\S+)/));
      const [siteA, siteB] = [LaunchedSite.from(runA.output()), LaunchedSite.from(runB.output(), 'supervisor-b-secret')];
      agents.push(await Agent.start(siteA, '7001', toneFrequency(0), {}), await Agent.start(siteB, '8001', toneFrequency(1), {}));
      const [a, b] = agents as [Agent, Agent];
      await a.dial('8001');
      const established = await b.desktop!.waitFor((e) => e.event === 'EventEstablished', 'EventEstablished on 8001');
      expect(established.OtherDN).toBe('7001');
      await a.hears(exactly([b.tone]));
      await b.hears(exactly([a.tone]));
    } finally {
      for (const agent of agents) await agent.close();
      for (const run of runs) run.child.kill('SIGKILL');
    }
  });
});

async function metricSum(urls: string[], name: string): Promise<number> {
  let sum = 0;
  for (const url of urls) {
    const text = await (await fetch(url)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    sum += Number(line?.split(' ').pop() ?? NaN);
  }
  return sum;
}

describe('npm start -- --config config/ha.yaml', () => {
  it('runs the SIP edge, two signaling replicas, media-controller and the gateway each in its own process; calls go through the edge; a killed replica is restarted', async () => {
    const file = await configOnFreePorts(HA, tmp);
    const run = launch(file, tmp);
    const agents: Agent[] = [];
    try {
      await until(() => processLines(run.output()).size === 5, () => `the five process lines in:\n${run.output()}`, 60_000);
      const processes = processLines(run.output());
      expect([...processes.keys()].sort()).toEqual(['media-controller', 'signaling-0', 'signaling-1', 'sip-edge', 'tlib-gateway']);
      const entries: Record<string, string> = { 'sip-edge': 'kamailio', 'media-controller': 'bin/media-controller', 'signaling-0': 'bin/signaling', 'signaling-1': 'bin/signaling', 'tlib-gateway': 'bin/tlib-gateway' };
      const metricsUrls = new Set<string>();
      for (const [name, { pid, metrics }] of processes) {
        // The component process itself, not a wrapper around it.
        expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), name).toContain(entries[name]);
        const res = await fetch(metrics);
        expect(res.status, name).toBe(200);
        const text = await res.text();
        if (name.startsWith('signaling')) expect(text).toContain('huddle_calls_active');
        metricsUrls.add(metrics);
      }
      expect(metricsUrls.size).toBe(5);
      const replicaMetrics = ['signaling-0', 'signaling-1'].map((n) => processes.get(n)!.metrics);

      const site = LaunchedSite.from(run.output());
      expect(run.output()).toMatch(/T-Library +ws:\/\/127\.0\.0\.1:\d+\/tlib/);
      for (const [i, dn] of ['7001', '7002', '7003'].entries()) agents.push(await Agent.start(site, dn, toneFrequency(i), {}));
      const [a, b, c] = agents as [Agent, Agent, Agent];
      await a.dial('7002');
      await a.hears(exactly([b.tone]));
      await b.hears(exactly([a.tone]));
      // One replica owns the call.
      expect(await metricSum(replicaMetrics, 'huddle_calls_active')).toBe(1);
      // In-dialog requests from the phone reach the replica that has the dialog.
      expect((await a.phone.calls.at(-1)!.request('OPTIONS')).status).toBe(200);
      expect((await a.phone.hangup())?.status).toBe(200);
      await until(() => b.phone.calls.length === 0, 'the BYE at 7002', 30_000);
      // The edge spreads calls over both replicas (by Call-ID), whichever replica took a phone's
      // REGISTER: more calls until each replica has owned one.
      const owners = new Set<number>();
      for (let attempt = 0; attempt < 16 && owners.size < 2; attempt++) {
        await a.dial('7002');
        for (const [i, url] of replicaMetrics.entries()) if ((await metricSum([url], 'huddle_calls_active')) === 1) owners.add(i);
        expect((await a.phone.hangup())?.status).toBe(200);
        await until(() => b.phone.calls.length === 0, 'the BYE at 7002', 30_000);
      }
      expect(owners.size).toBe(2);

      const victim = processes.get('signaling-0')!;
      process.kill(victim.pid, 'SIGKILL');
      await until(() => /^ {2}signaling-0 {2}pid \d+ {2}restarted$/m.test(run.output()), () => `the restart of signaling-0 in:\n${run.output()}`, 30_000);
      const restartedPid = Number(/^ {2}signaling-0 {2}pid (\d+) {2}restarted$/m.exec(run.output())![1]);
      expect(restartedPid).not.toBe(victim.pid);
      expect(alive(restartedPid)).toBe(true);
      expect((await fetch(victim.metrics)).status).toBe(200);
      // New calls work through the same edge address.
      await c.dial('7002');
      await c.hears(exactly([b.tone]));
      await b.hears(exactly([c.tone]));
      expect((await c.phone.hangup())?.status).toBe(200);

      for (const agent of agents.splice(0)) await agent.close();
      const pids = [...processes.values()].map((p) => p.pid).filter((pid) => pid !== victim.pid);
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      expect([...pids, restartedPid].filter(alive)).toEqual([]);
    } finally {
      for (const agent of agents) await agent.close();
      run.child.kill('SIGKILL');
    }
  });
});
