/**
 * WebRTC media through rtpengine (issue 19 points 2 and 4): a real headless Chromium whose
 * microphone is a tone file makes the RTCPeerConnection (ICE, DTLS-SRTP, rtcp-mux, bundle); its SIP
 * is SIP.js over WebSocket in Node, handing the SDP to and from the page. rtpengine terminates the
 * browser's DTLS-SRTP and gives the bridge plain RTP/G.711. What the browser plays out is analysed
 * in the page, what the tone phones hear by the tone phones: every claim is heard.
 *
 * Figures: each test prints its set-up times. WEBRTC_CPU_MS=<ms> also prints rtpengine's CPU time
 * (/proc utime+stime) over that window idle, during the browser-to-phone call (a browser leg and a
 * plain leg, both through the mixer) and during the conference (a browser leg and two plain legs):
 * plain leg = conference - call, browser leg = call - plain leg, each less the idle figure.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/supervisor/ports.js';
import { ChromiumPhone } from '../support/chromium-phone.js';
import { toneFrequency, type Heard } from '../support/tone-phone.js';
import { WsPhone } from '../support/ws-phone.js';
import { RefusalReasons } from '../../signaling/admission.js';
import { exactly, metric, Site, steady, until } from './site.js';

let site: Site;
let wsPort: number;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  wsPort = await freePort();
  site = await Site.start({
    // Signaling, media-controller and its mixer share this process with Chromium's driver on 2
    // cores: a Chromium starting stalls them past the admission limits, which then answer the
    // browser's INVITE 503 (seen). Admission has its own test (overload.test.ts); this one is media.
    edit: (yaml) =>
      yaml.replace(
        /\n {2}sip:\n {4}listen:\n/,
        `\n  sip:\n    admission: { maxEventLoopDelayMs: 5000, maxMediaLatencyMs: 5000 }\n    listen:\n      - { transport: ws, host: 127.0.0.1, port: ${wsPort} }\n`,
      ),
  });
}, 60_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await site?.stop();
});

/** A browser registered on `dn` over ws, its microphone sending tone k. */
async function browser(dn: string, tone: number): Promise<{ phone: WsPhone; media: ChromiumPhone; dn: string; tone: number }> {
  const media = await ChromiumPhone.start(toneFrequency(tone));
  closers.push(() => media.close());
  const phone = await WsPhone.start({ dn, password: site.password(dn), server: `ws://127.0.0.1:${wsPort}`, domain: '127.0.0.1', media });
  closers.push(() => phone.close());
  expect(await phone.register()).toBe(200);
  return { phone, media, dn, tone: toneFrequency(tone) };
}

async function phone(dn: string, tone: number, desktop = false) {
  const agent = await site.agent(dn, tone, { desktop });
  closers.push(() => agent.close());
  return agent;
}

const cpuWindowMs = Number(process.env.WEBRTC_CPU_MS ?? 0);

/** Prints rtpengine's CPU time (user + system, ms, from /proc in 10 ms ticks) over the window, when asked for. */
async function printRtpengineCpu(what: string): Promise<void> {
  if (cpuWindowMs <= 0) return;
  const cpu = () => {
    const fields = readFileSync(`/proc/${site.rtpenginePid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  const before = cpu();
  await new Promise((r) => setTimeout(r, cpuWindowMs));
  console.info(`rtpengine CPU, ${what}: ${cpu() - before} ms in ${cpuWindowMs} ms`);
}

/** INVITEs signaling's admission refused so far, by reason (a failed call's likely cause here). */
async function refusals(): Promise<string> {
  const counts = await Promise.all(RefusalReasons.map(async (reason) => `${reason} ${await metric(site, 'huddle_signaling_admission_refused_total', { request: 'INVITE', reason })}`));
  return counts.join(', ');
}

/** Waits for the browser's peer connection to be up: ICE connected and the DTLS-SRTP handshake done. */
async function connected(media: ChromiumPhone, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    const state = await media.connection();
    if (state.peer === 'connected') return;
    if (Date.now() > deadline) throw new Error(`the browser did not connect (ICE, DTLS-SRTP) within ${timeoutMs} ms: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Steady over the page's window: at least 30 packets a second (of 50) and what `want` says. */
const browserHears = (want: (h: Heard) => boolean) => steady(want);

describe('WebRTC media: a browser through rtpengine', () => {
  it('the browser calls a tone phone: its ICE/DTLS-SRTP leg is answered by rtpengine, and both hear each other', async () => {
    await printRtpengineCpu('idle');
    const b = await browser('7001', 1);
    const callee = await phone('7002', 2);
    const started = Date.now();
    const status = await b.phone.call('7002');
    expect(status, `INVITE refused by admission: ${await refusals()}`).toBe(200);
    const answeredMs = Date.now() - started;
    await connected(b.media);
    const connectedMs = Date.now() - started;
    await b.media.waitFor(browserHears(exactly([callee.tone])));
    const heardMs = Date.now() - started;
    await callee.hears(steady(exactly([b.tone])));
    await printRtpengineCpu('a browser leg and a tone-phone leg through the mixer');
    console.info(`browser call set-up: 200 OK after ${answeredMs} ms, DTLS-SRTP connected after ${connectedMs} ms, far tone steady in the page after ${heardMs} ms`);
    await b.phone.hangup();
  }, 60_000);

  it('a tone phone calls the browser: rtpengine offers it WebRTC, and both hear each other', async () => {
    const b = await browser('7003', 3);
    const caller = await phone('7004', 4);
    const started = Date.now();
    await caller.dial('7003');
    const answeredMs = Date.now() - started;
    const offer = b.phone.invitations[0]!.request.body;
    expect(offer).toMatch(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m);
    expect(offer).toMatch(/^a=fingerprint:/m);
    // rtpengine 10.5 offers actpass (even with DTLS=passive): the browser answers active.
    expect(offer).toMatch(/^a=setup:actpass/m);
    expect(offer).toMatch(/^a=ice-ufrag:/m);
    expect(offer).toMatch(/^a=rtcp-mux/m);
    expect(offer).toMatch(/^a=mid:/m);
    expect(offer).not.toMatch(/^a=crypto:/m);
    await connected(b.media);
    const connectedMs = Date.now() - started;
    await b.media.waitFor(browserHears(exactly([caller.tone])));
    await caller.hears(steady(exactly([b.tone])));
    console.info(`call to the browser: answered after ${answeredMs} ms, DTLS-SRTP connected after ${connectedMs} ms`);
    await caller.phone.hangup();
    await until(() => b.phone.invitations[0]!.state === 'Terminated', 'the BYE to reach the browser');
  }, 60_000);

  it('a conference of the browser and two tone phones: everyone hears the two others; listen-disconnected, the browser hears music only and is heard by no one; reconnected, all hear all again', async () => {
    const b = await browser('7005', 5);
    const a = await phone('7001', 6, true);
    const c = await phone('7002', 7, true);
    await a.dial(b.dn);
    const established = await a.desktop!.waitFor((e) => e.event === 'EventEstablished', 'EventEstablished');
    const connID = established.ConnID!;
    await a.desktop!.client.singleStepConference({ thisDN: a.dn, connID, otherDN: c.dn });
    await c.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === connID, 'EventEstablished on 7002');

    await b.media.waitFor(browserHears(exactly([a.tone, c.tone])));
    await a.hears(steady(exactly([b.tone, c.tone])));
    await c.hears(steady(exactly([a.tone, b.tone])));
    await printRtpengineCpu('a browser leg and two tone-phone legs through the mixer');

    await a.desktop!.client.listenDisconnect({ thisDN: a.dn, connID, otherDN: b.dn });
    // The music's notes change: a window may hold one only, never a party tone.
    await b.media.waitFor(browserHears((h) => h.tones.length === 0 && !h.silence));
    await a.hears(steady(exactly([c.tone])));
    await c.hears(steady(exactly([a.tone])));

    await a.desktop!.client.listenReconnect({ thisDN: a.dn, connID, otherDN: b.dn });
    await b.media.waitFor(browserHears(exactly([a.tone, c.tone])));
    await a.hears(steady(exactly([b.tone, c.tone])));
    await c.hears(steady(exactly([a.tone, b.tone])));
    await a.phone.hangup();
  }, 90_000);
});
