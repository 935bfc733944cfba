/**
 * One trace from the desktop's request to the media-controller: the real gateway forwards a
 * RegisterAddress over NATS, signaling's real TlibService hands it to a handler that sends a media
 * command through the real MediaClient, and the real MediaApi (a real MediaController, no
 * rtpengine needed for bridge.create) serves it. Each component has its own NATS connection.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadConfigFile } from '../../common/config/load.js';
import { LiveConfig, openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import { connectNats } from '../../common/nats/connect.js';
import type { NatsRole } from '../../common/nats/permissions.js';
import { Subjects } from '../../common/nats/subjects.js';
import { createLogger } from '../../common/process/logger.js';
import { MediaController } from '../../media-controller/controller.js';
import { TsMixer } from '../../media-controller/mixer/ts-mixer.js';
import { MusicLibrary } from '../../media-controller/music.js';
import { MediaApi } from '../../media-controller/nats-api.js';
import { RtpenginePool } from '../../media-controller/rtpengine.js';
import { MediaClient } from '../../signaling/media-client.js';
import { signalingMetrics } from '../../signaling/metrics.js';
import { TlibService } from '../../signaling/tlib-service.js';
import { TlibClient } from '../../tlib-api/client/index.js';
import { createGateway, type Gateway } from '../../tlib-api/gateway/gateway.js';
import { startTestNats, type TestNats } from '../support/infra.js';

const log = createLogger('rpc-trace-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

let nats: TestNats;
const connections: NatsConnection[] = [];
let live: LiveConfig;
let gateway: Gateway;
let tlib: TlibService;
let media: MediaClient;
let api: MediaApi;
let mixer: TsMixer;
let location: string;

beforeAll(async () => {
  // Registered before anything traces: the rpc layer's tracer (taken at import) delegates to it.
  expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  expect(propagation.setGlobalPropagator(new W3CTraceContextPropagator())).toBe(true);
  expect(trace.setGlobalTracerProvider(provider)).toBe(true);

  const config = loadConfigFile(path.resolve(import.meta.dirname, '../../config/local.yaml'));
  location = config.cluster.spec.location;
  nats = await startTestNats({ sites: [{ location }] });
  // Each component as its own NATS user, as npm start runs them.
  const connection = async (role: NatsRole) => {
    const nc = await connectNats(nats.url, role, undefined, nats.client(role));
    connections.push(nc);
    return nc;
  };
  await publishConfig(await openConfigBucket(await connection('config-publisher')), config.cluster, config.dns);
  const gatewayNc = await connection('gateway');
  live = await LiveConfig.watch(await openConfigBucket(gatewayNc), config.cluster.metadata.name);

  // Nothing here is adopted by another instance: bridges need not be kept.
  const unstored = { save: () => Promise.resolve(1), load: () => Promise.resolve(undefined), remove: () => Promise.resolve(true) };
  const mediaNc = await connection('media-controller');
  mixer = new TsMixer({ host: '127.0.0.1' });
  const controller = new MediaController({ instance: 'media-trace', pool: new RtpenginePool({ addresses: [], log }), mixer, music: new MusicLibrary(), publish: () => undefined, store: unstored, log });
  api = new MediaApi({ nc: mediaNc, location, instance: 'media-trace', controller, log });

  const signalingNc = await connection('signaling');
  const metrics = signalingMetrics(new Registry());
  media = new MediaClient({ nc: signalingNc, location: () => location, log, metrics });
  tlib = new TlibService(signalingNc, location, log, metrics);
  tlib.start(async (request) => {
    await media.send({ op: 'bridge.create', bridgeId: `br-${request.ReferenceID}` });
    return [{ event: 'EventRegistered', ReferenceID: request.ReferenceID, ThisDN: request.ThisDN }];
  });

  gateway = await createGateway(
    { config: live, musicRoot: config.musicRoot, nc: gatewayNc, registry: new Registry(), log, addReadiness: () => undefined, rtpengines: [], instance: 'gw-trace' },
    { listen: '127.0.0.1:0' },
  );
  for (const nc of connections) await nc.flush();
});

afterAll(async () => {
  await gateway?.stop();
  await tlib?.drain();
  await media?.drain();
  await api?.drain();
  await mixer?.stop();
  live?.stop();
  for (const nc of connections) await nc.drain();
  await nats?.stop();
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

it("continues the gateway's trace into the media-controller's SERVER span", async () => {
  const client = await TlibClient.connect({ url: gateway.wsUrl, token: 'agent-7001-secret', reconnect: false });
  try {
    expect(await client.registerAddress({ thisDN: '7001' })).toMatchObject({ event: 'EventRegistered', ThisDN: '7001' });
  } finally {
    await client.close();
  }

  const named = (name: string, kind: SpanKind) => exporter.getFinishedSpans().find((s) => s.name === name && s.kind === kind);
  const gatewayCall = `${Subjects.tlibRequest(location, '7001')} call`;
  const mediaServe = `${Subjects.mediaCommand(location)} serve`;
  await expect.poll(() => named(mediaServe, SpanKind.SERVER)).toBeDefined();
  const gatewaySpan = named(gatewayCall, SpanKind.CLIENT)!;
  const mediaSpan = named(mediaServe, SpanKind.SERVER)!;
  expect(gatewaySpan).toBeDefined();

  expect(mediaSpan.spanContext().traceId).toBe(gatewaySpan.spanContext().traceId);
  // Up the parents: media SERVER <- signaling's media CLIENT <- signaling's T-Library SERVER <- gateway CLIENT
  const byId = new Map(exporter.getFinishedSpans().map((s) => [s.spanContext().spanId, s]));
  const chain: ReadableSpan[] = [mediaSpan];
  for (let span = mediaSpan; span.parentSpanContext && chain.length < 10; ) {
    const parent = byId.get(span.parentSpanContext.spanId);
    if (!parent) break;
    chain.push(parent);
    span = parent;
  }
  // ... <- signaling's request step <- ... <- the gateway's span for the desktop's request (the root).
  expect(chain.map((s) => [s.name, SpanKind[s.kind]])).toEqual([
    [mediaServe, 'SERVER'],
    [`${Subjects.mediaCommand(location)} call`, 'CLIENT'],
    ['tlib RegisterAddress', 'INTERNAL'],
    [`${Subjects.tlibRequestAll(location)} serve`, 'SERVER'],
    [gatewayCall, 'CLIENT'],
    ['tlib RegisterAddress', 'SERVER'],
  ]);
  expect(chain.at(-2)).toBe(gatewaySpan);
  expect(chain.at(-1)!.parentSpanContext).toBeUndefined();
});
