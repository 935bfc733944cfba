/**
 * Rolling upgrade drops nothing (issue 16 point 6). sipp calls through the SIP edge (kamailio, two
 * signaling replicas as processes, two media-controller processes) at RATE calls/s, each call held
 * HOLD_S seconds, while every signaling replica and then every media-controller is restarted one
 * after another: SIGTERM, then a new process under the same name, ready. A stopping replica hands
 * its calls to the other (no BYE), a stopping media-controller has its bridges adopted by the
 * other. sipp's counts decide: no failed call, and a BYE from us during a hold fails a call too.
 * A call between two tone phones (with desktops) lives through all of it: after each restart both
 * hear each other and a T-Library request about the call is answered; the phone's BYE ends it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/process/logger.js';
import { startKamailioEdge, type EmbeddedEdge } from '../../common/supervisor/kamailio.js';
import { freePort } from '../../common/supervisor/ports.js';
import { callCounts, killSipps, startSipp } from '../support/sipp.js';
import { E2E_SCENARIOS } from './sipp-peer.js';
import { SignalingProcess } from './signaling-process.js';
import { exactly, Site, type Agent } from './site.js';

/**
 * The issue asks for 50 calls/s held 20 s (ROLLING_RATE=50 ROLLING_HOLD_S=20). The default is what
 * a 2-CPU machine running other suites alongside carries without stalling its event loops past a
 * lease (1.5 s), which no hand-over can survive.
 */
const RATE = Number(process.env.ROLLING_RATE ?? 5);
const HOLD_S = Number(process.env.ROLLING_HOLD_S ?? 10);
/** Calls are placed this long: every restart (a process start takes up to ~10 s on a loaded machine) happens while calls arrive and others are held. */
const PLACING_S = Number(process.env.ROLLING_PLACING_S ?? 60);

const log = createLogger('rolling-test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** The edge's OPTIONS probes a replica answered 200 (a starting or stopping one answers 503 and gets no calls). */
async function probesTaken(replica: SignalingProcess): Promise<number> {
  const text = await (await fetch(replica.metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith('huddle_sip_responses_total{') && l.includes('direction="out"') && l.includes('method="OPTIONS"') && l.includes('code="200"'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * Resolves once the (new) replica process answered an edge probe 200: it has started (its calls
 * are back) and is active at the edge again, so new calls reach it. As Kubernetes waits for a
 * pod's readiness before it rolls the next one.
 */
async function inEdgeAgain(replica: SignalingProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await probesTaken(replica).catch(() => 0)) < 1) {
    if (Date.now() > deadline) throw new Error(`${replica.pod}: no edge probe answered 200 within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('rolling upgrade under sipp load', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-rolling-'));
  let site: Site;
  let edge: EmbeddedEdge;
  let edgePort: number;
  const replicas: SignalingProcess[] = [];
  let a: Agent;
  let b: Agent;

  beforeAll(async () => {
    edgePort = await freePort();
    const uasPort = await freePort();
    site = await Site.start({
      // Phones register and call through the edge.
      sipPort: edgePort,
      signaling: false,
      mediaProcess: true,
      // Each held call anchors two legs, four rtpengine ports each (and an adoption may take new ones).
      rtpenginePorts: Math.min(20_000, RATE * (HOLD_S + 5) * 8 * 2),
      edit: (yaml) =>
        yaml
          .replace('number: "7001", type: Extension, options: { password: { value: secret-7001 }, sip-trunk-access: ["9000"] }', 'number: "7001", type: Extension, options: { sip-allow-unauthenticated-insecure: true }')
          .replace('number: "7002", type: Extension, options: {', `number: "7002", type: Extension, options: { contact: "sip:7002@127.0.0.1:${uasPort}",`),
    });
    await site.startMediaProcess('media-1');
    const internal = { host: '127.0.0.1', port: await freePort() };
    const sourceToken = randomBytes(16).toString('hex');
    const ports = [await freePort(), await freePort()];
    for (const [i, port] of ports.entries()) {
      replicas.push(
        await SignalingProcess.start(site, `signaling-${i}`, {
          HUDDLE_SIP_LISTEN: `udp:127.0.0.1:${port}`,
          HUDDLE_SIP_EDGE: `${internal.host}:${internal.port}`,
          HUDDLE_SIP_EDGE_CONTACT: `127.0.0.1:${edgePort}`,
          HUDDLE_SIP_EDGE_TOKEN: sourceToken,
        }),
      );
    }
    edge = await startKamailioEdge({
      listen: [{ transport: 'udp', host: '127.0.0.1', port: edgePort }],
      internal,
      replicas: ports.map((port, i) => ({ name: `signaling-${i}`, host: '127.0.0.1', port })),
      dataDir: tmp,
      log,
      sourceToken,
    });
    [a, b] = [await site.agent('7003', 1), await site.agent('7004', 2)];
    // DN 7002's phone: answers every call until the test ends.
    await startSipp({ scenario: path.join(E2E_SCENARIOS, 'rolling-uas.xml'), localPort: uasPort, calls: 1_000_000, timeoutS: PLACING_S + HOLD_S + 60 });
  }, 120_000);

  afterAll(async () => {
    await killSipps();
    for (const r of replicas) await r.stop();
    await edge?.process.stop();
    await site?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it(`${RATE} calls/s held ${HOLD_S} s while each signaling replica, then each media-controller, is restarted: no call fails or drops`, async () => {
    const calls = RATE * PLACING_S;
    const started = Date.now();
    const uac = await startSipp({
      scenario: path.join(E2E_SCENARIOS, 'rolling-uac.xml'),
      remote: `127.0.0.1:${edgePort}`,
      service: '7002',
      rate: RATE,
      calls,
      pauseMs: HOLD_S * 1000,
      timeoutS: PLACING_S + HOLD_S + 40,
    });
    const at = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const since = b.desktop!.events.length;
    await a.dial('7004');
    const established = await b.desktop!.waitFor((e) => e.event === 'EventEstablished' && b.desktop!.events.indexOf(e) >= since, 'EventEstablished on 7004');
    const connID = established.ConnID!;
    // The call between the tone phones goes on: audio both ways, and its T-Library requests answered.
    const goesOn = async (after: string): Promise<void> => {
      await a.hears(exactly([b.tone]));
      await b.hears(exactly([a.tone]));
      const asked = Date.now();
      const info = await b.desktop!.client.queryCall({ thisDN: '7004', connID }).catch((err: Error) => new Error(`QueryCall after ${after}: ${err.message}`));
      if (info instanceof Error) throw info;
      expect(info).toMatchObject({ event: 'EventPartyInfo', ConnID: connID });
      steps.push(`after ${after}: QueryCall answered in ${Date.now() - asked} ms`);
    };
    const steps: string[] = [];
    await goesOn('set-up');
    // Calls held on every process before the first restart.
    await new Promise((r) => setTimeout(r, 5000));
    for (const replica of replicas) {
      const owned = await replica.metric('huddle_calls_active');
      const from = at();
      await replica.stop();
      const stopped = at();
      await replica.restart();
      await inEdgeAgain(replica);
      await goesOn(`${replica.pod} restart`);
      steps.push(`${replica.pod}: ${owned} calls, SIGTERM at ${from}, exited at ${stopped}, ready at ${at()}`);
    }
    for (const pod of ['media-0', 'media-1']) {
      const mc = site.mediaProcess(pod);
      const bridges = await mc.gauge('huddle_media_bridges');
      const from = at();
      await mc.stop();
      const stopped = at();
      await site.startMediaProcess(pod);
      await goesOn(`${pod} restart`);
      steps.push(`${pod}: ${bridges} bridges, SIGTERM at ${from}, exited at ${stopped}, ready at ${at()}`);
    }
    const restartsDone = (Date.now() - started) / 1000;
    // The phone's in-dialog BYE reaches the call's present owner.
    expect((await a.phone.hangup())?.status).toBe(200);
    await b.desktop!.waitFor((e) => e.event === 'EventReleased' && e.ConnID === connID, 'EventReleased on 7004');
    const run = await uac.done;
    const counts = callCounts(run.output);
    // The edge turns a replica's 503 into 500 (RFC 3261 16.7), hiding why: the replicas' own counts say whether admission control refused.
    for (const replica of replicas) steps.push(`${replica.pod} admission refusals since its restart: ${(await replica.metricLines('huddle_signaling_admission_refused_total')).join(', ') || 'none'}`);
    console.log(`rolling upgrade at ${RATE} calls/s, ${HOLD_S} s holds:\n  ${steps.join('\n  ')}\n  sipp: ${counts.successful} successful, ${counts.failed} failed of ${calls}`);
    expect(counts.failed, run.output.slice(-6000)).toBe(0);
    expect(counts.successful).toBe(calls);
    expect(run.code, run.output.slice(-6000)).toBe(0);
    // Every restart happened while calls were still being placed.
    expect(restartsDone).toBeLessThan(PLACING_S);
  }, (PLACING_S + HOLD_S + 60) * 1000);
});
