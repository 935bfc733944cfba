/**
 * Two SIP Server sites joined by inter-trunk DNs on loopback, each with its own NATS, rtpengine and
 * media: a conference on site A with a party reached over the inter-trunk from site B. Site B's
 * desktop sees the conference as site A's desktops do (its parties, their locations and their
 * listen-disconnect state), and both sites' events, call logs and traces name the call by site A's
 * ConnID; a request's trace continues on site B.
 */
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../common/supervisor/ports.js';
import { conference, exactly, metric, until, Site, type Agent, type Desktop } from './site.js';

/** The info-level lines a site's components log, parsed. */
function capture(): { lines: Record<string, unknown>[]; destination: { write: (chunk: string) => void } } {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)) } };
}

/** The extended LCTParty keys of the latest LCTParty EventUserEvent, as `alias@location state by`. */
function lct(desktop: Desktop): string[] {
  const last = [...desktop.events].reverse().find((e) => e.event === 'EventUserEvent' && e.Extensions && 'LCTPartiesLength' in e.Extensions);
  const ext = last?.Extensions ?? {};
  return Array.from({ length: Number(ext.LCTPartiesLength ?? 0) }, (_, n) => {
    const key = `LCTParty${n}`;
    const state = ext[`${key}_state`] === undefined ? '' : ` ${String(ext[`${key}_state`])} by ${String(ext[`${key}_disconnectedBy`])}`;
    return `${String(ext[key])}@${String(ext[`${key}_location`])}${state}`;
  });
}

const exporter = new InMemorySpanExporter();
const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const traceOf = (span: ReadableSpan): ReadableSpan[] => spans().filter((s) => s.spanContext().traceId === span.spanContext().traceId);

describe('two sites', () => {
  let siteA: Site;
  let siteB: Site;
  let a1: Agent;
  let a2: Agent;
  let b1: Agent;
  let connID: string;
  const logA = capture();
  const logB = capture();

  beforeAll(async () => {
    // Both sites trace into one exporter, registered before anything traces.
    expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
    expect(propagation.setGlobalPropagator(new W3CTraceContextPropagator())).toBe(true);
    expect(trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))).toBe(true);
    const [portA, portB] = [await freePort(), await freePort()];
    siteA = await Site.start({ sipPort: portA, log: { level: 'info', destination: logA.destination }, edit: (y) => y.replace('contact: sip:127.0.0.1:5062', `contact: sip:127.0.0.1:${portB}`) });
    siteB = await Site.start({
      sipPort: portB,
      base: 'config/two-site-b.yaml',
      log: { level: 'info', destination: logB.destination },
      edit: (y) => y.replace('contact: sip:127.0.0.1:5060', `contact: sip:127.0.0.1:${portA}`),
    });
    a1 = await siteA.agent('7001', 0);
    a2 = await siteA.agent('7002', 1);
    b1 = await siteB.agent('8001', 2);
  });
  afterAll(async () => {
    await siteA?.stop();
    await siteB?.stop();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('a party reached over the inter-trunk shows with site B as its location', async () => {
    connID = await conference(a1, a2, b1);
    await a1.desktop!.waitFor(() => a1.desktop!.lctParties()?.some((p) => p.alias === '8001' && p.location === 'SiteB') === true, 'LCTParty 8001 at SiteB');
    await a2.desktop!.waitFor(() => a2.desktop!.lctParties()?.length === 3, 'LCTParty list of three');
    expect(a2.desktop!.lctParties()?.map((p) => `${p.alias}@${p.location}`).sort()).toEqual(['7001@SiteA', '7002@SiteA', '8001@SiteB']);
    await b1.hears(exactly([a1.tone, a2.tone]));
    await a1.hears(exactly([a2.tone, b1.tone]));
  });

  it("site B's desktop sees site A's parties, in site A's order, with their locations and types", async () => {
    await until(() => lct(b1.desktop!).length === 3, () => `site B's LCTParty list: ${JSON.stringify(lct(b1.desktop!))}`);
    expect(lct(b1.desktop!)).toEqual(['7001@SiteA', '7002@SiteA', '8001@SiteB']);
    expect(lct(b1.desktop!)).toEqual(lct(a1.desktop!));
    const ext = [...b1.desktop!.events].reverse().find((e) => e.event === 'EventUserEvent')!.Extensions!;
    expect(ext).toMatchObject({ LCTParty1_type: 'Extension', LCTParty1_trunk: '9200', LCTParty1_role: 'ConferenceMember', LCTParty2_type: 'Extension' });
    expect(ext).not.toHaveProperty('LCTParty2_trunk');
  });

  it("the call carries site A's ConnID to site B as OriginConnID on every event of B's call", () => {
    const established = b1.desktop!.events.find((e) => e.event === 'EventEstablished')!;
    expect(established.ConnID).not.toBe(connID);
    expect(established.OriginConnID).toBe(connID);
    const ofCall = b1.desktop!.events.filter((e) => e.ConnID === established.ConnID);
    expect(ofCall.length).toBeGreaterThan(1);
    expect(ofCall.filter((e) => e.OriginConnID !== connID)).toEqual([]);
    // Site A started the call: its own events need no other name for it.
    expect(a1.desktop!.events.filter((e) => e.ConnID === connID && e.OriginConnID !== undefined)).toEqual([]);
  });

  it('ListenDisconnect of the remote party isolates it; with sip-enable-moh false on the inter-trunk it hears silence, not site A music', async () => {
    const answer = await a2.desktop!.client.listenDisconnect({ thisDN: '7002', connID, otherDN: '8001' });
    expect(answer).toMatchObject({ event: 'EventListenDisconnected', OtherDN: '8001', CallState: 'Held' });
    await b1.hears((h) => h.silence && !h.music && h.tones.length === 0);
    await a1.hears(exactly([a2.tone]));
    await a2.hears(exactly([a1.tone]));
    expect(a1.desktop!.lctParties()?.find((p) => p.alias === '8001')?.state).toBe('ListenDisconnectedHeld');
    await until(() => lct(b1.desktop!)[2] === '8001@SiteB ListenDisconnectedHeld by 7002', () => `site B's LCTParty list: ${JSON.stringify(lct(b1.desktop!))}`);
    expect(lct(b1.desktop!)).toEqual(['7001@SiteA', '7002@SiteA', '8001@SiteB ListenDisconnectedHeld by 7002']);
  });

  it('ListenReconnect brings the remote party back', async () => {
    await a1.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '8001' });
    await b1.hears(exactly([a1.tone, a2.tone]));
    await a1.hears(exactly([a2.tone, b1.tone]));
    await until(() => lct(b1.desktop!)[2] === '8001@SiteB', () => `site B's LCTParty list: ${JSON.stringify(lct(b1.desktop!))}`);
    expect(lct(b1.desktop!)).toEqual(['7001@SiteA', '7002@SiteA', '8001@SiteB']);
  });

  it("site B's desktop sees a party of site A listen-disconnected and reconnected", async () => {
    await a1.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7002' });
    await b1.hears(exactly([a1.tone]));
    await until(() => lct(b1.desktop!)[1] === '7002@SiteA ListenDisconnectedHeld by 7001', () => `site B's LCTParty list: ${JSON.stringify(lct(b1.desktop!))}`);
    expect(lct(b1.desktop!)).toEqual(['7001@SiteA', '7002@SiteA ListenDisconnectedHeld by 7001', '8001@SiteB']);
    await a1.desktop!.client.listenReconnect({ thisDN: '7001', connID, otherDN: '7002' });
    await b1.hears(exactly([a1.tone, a2.tone]));
    await until(() => lct(b1.desktop!)[1] === '7002@SiteA', () => `site B's LCTParty list: ${JSON.stringify(lct(b1.desktop!))}`);
  });

  it("a request's trace continues on site B: SingleStepConference's INVITE and ListenDisconnect's INFO", async () => {
    const fromA = (method: string) => spans().filter((s) => s.name === `sip ${method}` && s.kind === SpanKind.SERVER && s.attributes['tlib.origin_conn_id'] === connID);
    const gatewaySpan = (request: string) => (s: ReadableSpan) => s.name === `tlib ${request}` && s.kind === SpanKind.SERVER && s.parentSpanContext === undefined;
    const [invite] = fromA('INVITE');
    expect(invite, `spans: ${spans().map((s) => s.name).join(', ')}`).toBeDefined();
    // Under site A's sip.connect of the request, and over site B's own SIP actions for it.
    const inTrace = traceOf(invite!);
    expect(inTrace.some(gatewaySpan('SingleStepConference'))).toBe(true);
    expect(inTrace.find((s) => s.spanContext().spanId === invite!.parentSpanContext?.spanId)?.name).toBe('sip.connect');
    expect(inTrace.filter((s) => s.parentSpanContext?.spanId === invite!.spanContext().spanId).map((s) => s.name)).toContain('sip.connect');
    // Each ListenDisconnect and ListenReconnect on site A reached site B in its own trace.
    await until(() => fromA('INFO').filter((info) => traceOf(info).some(gatewaySpan('ListenDisconnect'))).length >= 2, 'site B spans in the ListenDisconnect traces');
    expect(fromA('INFO').filter((info) => traceOf(info).some(gatewaySpan('ListenReconnect'))).length).toBeGreaterThanOrEqual(2);
  });

  it('the sites tell each other over the inter-trunk only: no phone gets their INFO', async () => {
    expect(await metric(siteA, 'huddle_sip_requests_total', { direction: 'in', method: 'INFO' })).toBeGreaterThan(0);
    expect(await metric(siteB, 'huddle_sip_requests_total', { direction: 'in', method: 'INFO' })).toBeGreaterThan(0);
    expect([a1, a2, b1].flatMap((agent) => agent.phone.inDialogMethods)).not.toContain('INFO');
  });

  it("both sites' call logs join on site A's ConnID, to the release", async () => {
    await b1.phone.hangup();
    await a1.desktop!.waitFor((e) => e.event === 'EventPartyDeleted' && e.ConnID === connID && e.OtherDN === '8001', 'EventPartyDeleted of 8001');
    const established = b1.desktop!.events.find((e) => e.event === 'EventEstablished')!;
    await until(() => logB.lines.some((l) => l.step === 'released' && l.connId === established.ConnID), "site B's released line");
    const onA = logA.lines.filter((l) => l.connId === connID && typeof l.step === 'string');
    const onB = logB.lines.filter((l) => l.originConnId === connID);
    expect(onA.map((l) => l.step)).toEqual(expect.arrayContaining(['established', 'party-added', 'listen-disconnect', 'listen-reconnect', 'party-removed']));
    expect(onB.map((l) => l.step)).toEqual(expect.arrayContaining(['ringing', 'established', 'released']));
    expect(onB.every((l) => l.connId === established.ConnID)).toBe(true);
    // Every line of site B's call names site A's ConnID.
    expect(logB.lines.filter((l) => l.connId === established.ConnID && typeof l.step === 'string' && l.originConnId !== connID)).toEqual([]);
  });
});
