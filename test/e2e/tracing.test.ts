/**
 * Following one call: with the standard OpenTelemetry environment set, a ListenDisconnect on a
 * real site is one trace across the gateway, signaling and media-controller (each its own
 * service.name, though they share this process as under npm start), received by an OTLP/HTTP JSON
 * endpoint over the real protocol.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initTracing } from '../../common/process/tracing.js';
import { conference, Site, type Agent } from './site.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}
interface ReceivedSpan extends OtlpSpan {
  resource: Record<string, string>;
}

/** OTLP span kinds. */
const SERVER = 2;
const CLIENT = 3;

const received: ReceivedSpan[] = [];
const contentTypes = new Set<string>();
let collector: http.Server;
let stopTracing: () => Promise<void>;
let site: Site;
let a: Agent;
let c: Agent;
let connID: string;

/** The standard OpenTelemetry environment, as an operator sets it (the endpoint once the collector listens). */
const otelEnv: Record<string, string> = {
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_SERVICE_NAME: 'obs-test',
  OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e,huddle.site.owner=tracing-test',
  OTEL_BSP_SCHEDULE_DELAY: '100',
};

function attributesOf(list: OtlpAttribute[] | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, String(a.value.stringValue ?? a.value.intValue ?? '')]));
}

beforeAll(async () => {
  collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      contentTypes.add(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const rs of body.resourceSpans) {
        const resource = attributesOf(rs.resource.attributes);
        for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ ...span, resource });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  Object.assign(process.env, otelEnv);
  otelEnv.OTEL_EXPORTER_OTLP_ENDPOINT = process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  stopTracing = await initTracing('launcher');

  site = await Site.start();
  a = await site.agent('7001', 0);
  const b = await site.agent('7002', 1);
  c = await site.agent('7003', 2);
  connID = await conference(a, b, c);
});

afterAll(async () => {
  await site?.stop();
  await stopTracing?.();
  collector?.close();
  for (const key of Object.keys(otelEnv)) delete process.env[key];
});

type Tree = { spans: ReceivedSpan[]; root: ReceivedSpan; ancestry: (s: ReceivedSpan) => ReceivedSpan[] };

/** The trace whose root is the gateway's span for `request` on the call; waits (bounded) until `complete` holds, as spans leave in batches. */
async function traceOf(request: string, complete: (spans: ReceivedSpan[]) => boolean): Promise<Tree> {
  const isRoot = (s: ReceivedSpan) => s.name === `tlib ${request}` && s.kind === SERVER && s.resource['service.name'] === 'obs-test-gateway' && attributesOf(s.attributes)['tlib.conn_id'] === connID;
  const inTrace = () => {
    const root = received.find(isRoot);
    return root ? received.filter((s) => s.traceId === root.traceId) : [];
  };
  const deadline = Date.now() + 10_000;
  while (!complete(inTrace()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const spans = inTrace();
  const root = spans.find(isRoot);
  expect(root, `no gateway span for ${request} on ${connID}; received ${received.map((s) => s.name).join(', ')}`).toBeDefined();
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const ancestry = (s: ReceivedSpan): ReceivedSpan[] => {
    const chain = [s];
    for (let at = s; at.parentSpanId && byId.has(at.parentSpanId); ) chain.push((at = byId.get(at.parentSpanId)!));
    return chain;
  };
  // Correctly parented: every span of the trace descends from the gateway's request span.
  for (const span of spans) expect(ancestry(span).at(-1)?.spanId, `${span.name} is not under the request`).toBe(root!.spanId);
  return { spans, root: root!, ancestry };
}

const service = (s: ReceivedSpan) => s.resource['service.name'];

it('one ListenDisconnect is one trace: gateway -> signaling -> media-controller, carrying the ConnID', async () => {
  const answer = await a.desktop!.client.listenDisconnect({ thisDN: '7001', connID, otherDN: '7003' });
  expect(answer).toMatchObject({ event: 'EventListenDisconnected', ConnID: connID });
  const { spans, root, ancestry } = await traceOf('ListenDisconnect', (spans) => spans.some((s) => s.name === 'media leg.music.play'));

  expect(new Set(spans.map(service))).toEqual(new Set(['obs-test-gateway', 'obs-test-signaling', 'obs-test-media-controller']));
  expect(attributesOf(root.attributes)).toMatchObject({ 'tlib.request': 'ListenDisconnect', 'tlib.this_dn': '7001', 'tlib.other_dn': '7003', 'tlib.result': 'ok' });

  // Signaling's model step, under the gateway's NATS call, with the same ConnID.
  const step = spans.find((s) => service(s) === 'obs-test-signaling' && s.name === 'tlib ListenDisconnect')!;
  expect(step).toBeDefined();
  expect(attributesOf(step.attributes)).toMatchObject({ 'tlib.conn_id': connID, 'tlib.result': 'ok' });
  expect(ancestry(step).map(service)).toContain('obs-test-gateway');

  // The media commands it caused: 7003's flags and its music.
  const commands = spans.filter((s) => service(s) === 'obs-test-media-controller' && s.name.startsWith('media '));
  expect(commands.map((s) => s.name).sort()).toEqual(['media leg.flags', 'media leg.music.play']);
  for (const command of commands) expect(ancestry(command)).toContain(step);

  // OTEL_RESOURCE_ATTRIBUTES on every span, from every component.
  for (const span of spans) expect(span.resource).toMatchObject({ 'deployment.environment.name': 'e2e', 'huddle.site.owner': 'tracing-test' });
  expect([...contentTypes]).toEqual(['POST /v1/traces application/json']);
});

it('rtpengine ng commands are CLIENT spans under the media command that sent them, naming the rtpengine call', async () => {
  // Adding 7003 set up its leg's media in rtpengine (offer/answer).
  const { spans, ancestry } = await traceOf('SingleStepConference', (spans) => spans.some((s) => s.name === 'rtpengine answer'));
  const ng = spans.filter((s) => s.name.startsWith('rtpengine '));
  expect(ng.map((s) => s.name)).toEqual(expect.arrayContaining(['rtpengine offer', 'rtpengine answer']));
  for (const command of ng) {
    expect(command.kind).toBe(CLIENT);
    expect(service(command)).toBe('obs-test-media-controller');
    expect(ancestry(command)[1]?.name).toMatch(/^media /);
    expect(attributesOf(command.attributes)['rtpengine.call_id']).toBeTruthy();
  }
  // The SIP action the model step caused (7003 called), under the step.
  const sip = spans.filter((s) => s.name === 'sip.connect');
  expect(sip.length).toBe(1);
  expect(service(sip[0]!)).toBe('obs-test-signaling');
  expect(ancestry(sip[0]!)[1]?.name).toBe('tlib SingleStepConference');
});

it("a phone's INVITE is one trace: its SIP server span, and under it the call to the dialled phone and the media commands", async () => {
  // 7001's phone dialled 7002 in beforeAll.
  const isInvite = (s: ReceivedSpan) => s.name === 'sip INVITE' && s.kind === SERVER && service(s) === 'obs-test-signaling';
  const complete = (root: ReceivedSpan) => received.some((s) => s.traceId === root.traceId && s.name === 'sip.connect') && received.some((s) => s.traceId === root.traceId && s.name.startsWith('media '));
  const deadline = Date.now() + 10_000;
  let root = received.find((s) => isInvite(s) && complete(s));
  while (!root && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    root = received.find((s) => isInvite(s) && complete(s));
  }
  const invites = received.filter((s) => s.name === 'sip INVITE').map((s) => `${service(s)}: ${received.filter((c) => c.traceId === s.traceId).map((c) => c.name).join(',')}`);
  expect(root, `no INVITE trace of signaling's; INVITE spans: ${invites.join(' | ')}`).toBeDefined();
  expect(attributesOf(root!.attributes)['sip.call_id']).toBeTruthy();
  const spans = received.filter((s) => s.traceId === root!.traceId);
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (const span of spans) {
    let at = span;
    for (let hops = 0; at.parentSpanId && byId.has(at.parentSpanId) && hops < 50; hops++) at = byId.get(at.parentSpanId)!;
    expect(at.spanId, `${span.name} is not under the INVITE`).toBe(root!.spanId);
  }
  expect(new Set(spans.map(service))).toEqual(new Set(['obs-test-signaling', 'obs-test-media-controller']));
});

it("a phone's REGISTER and BYE are signaling's SIP server spans; the BYE's trace holds the release it causes", async () => {
  const registers = received.filter((s) => s.name === 'sip REGISTER' && s.kind === SERVER && service(s) === 'obs-test-signaling');
  expect(registers.length).toBeGreaterThanOrEqual(3);
  for (const span of registers) expect(attributesOf(span.attributes)['sip.call_id']).toBeTruthy();

  // 7003 leaves the conference by hanging up.
  expect((await c.phone.hangup())?.status).toBe(200);
  const isBye = (s: ReceivedSpan) => s.name === 'sip BYE' && s.kind === SERVER && service(s) === 'obs-test-signaling';
  const released = (bye: ReceivedSpan) => received.some((s) => s.traceId === bye.traceId && s.name === 'media leg.remove');
  const deadline = Date.now() + 10_000;
  while (!received.some((s) => isBye(s) && released(s)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const bye = received.find((s) => isBye(s) && released(s));
  expect(bye, `no BYE trace with the leg's removal; received ${[...new Set(received.map((s) => s.name))].join(', ')}`).toBeDefined();
  expect(attributesOf(bye!.attributes)['sip.call_id']).toBeTruthy();
});
