/**
 * The SIP Server component: our SIP stack, the registrar, the B2BUA around the pure call model,
 * and the T-Library and media endpoints on NATS.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SpanKind, trace } from '@opentelemetry/api';
import { musicFileFor, resolveMusic } from '../common/config/load.js';
import { SIP_TLS_DIR, sipListenAddresses, tlsFiles, type SipCluster, type SipClusterSpec } from '../common/config/schema.js';
import { bucketReplicas, openBucket } from '../common/nats/buckets.js';
import { onReconnect } from '../common/nats/connect.js';
import { RegistrationKeys } from '../common/nats/subjects.js';
import type { ComponentContext, ComponentFactory } from '../common/process/component.js';
import { errorEvent, ErrorCodes } from '../common/tlib/errors.js';
import { AdmissionGate } from './admission-gate.js';
import type { Load } from './admission.js';
import { B2bua } from './b2bua.js';
import { CallModelShell } from './call-model-shell.js';
import { Replicator } from './call-replication.js';
import { CallStateStore } from './call-state.js';
import { ConferenceEventNotifier } from './conference-events.js';
import { DnAuthenticator } from './dn-auth.js';
import { DnDirectory } from './dn-directory.js';
import { edgePlacement, heldWhileStarting, refusedWhileStopping } from './edge.js';
import { MediaClient } from './media-client.js';
import { signalingMetrics } from './metrics.js';
import { CallModel, type ModelEnv } from './model/index.js';
import { RegistrarService } from './registrar-service.js';
import { createSipStack, type DigestSecret, type Endpoint, type ServerRequest, type SipStackOptions } from './sip/index.js';
import { TlibRouter } from './tlib-forward.js';
import { TlibService } from './tlib-service.js';
import { within } from '../common/process/lifecycle.js';
import { componentContext, inSpan, traceAs } from '../common/process/tracing.js';
import { CallLog } from './call-log.js';

const sipTracer = trace.getTracer('huddle.signaling');
import { CdrPublisher } from './cdr-publisher.js';

/** The certificate of spec.sip.tls and the connection limits of spec.sip.connections, as the stack takes them. */
function sipTlsOptions(sip: SipClusterSpec['sip']): Pick<SipStackOptions, 'tls' | 'connections'> {
  const { max, maxPerSource, headTimeoutSeconds } = sip.connections;
  const connections = { max, maxPerSource, headTimeoutMs: headTimeoutSeconds * 1000 };
  if (sip.listen.some((l) => l.transport === 'tls') && !sip.tls) throw new Error('spec.sip.tls: a tls listen address needs a certificate (sip.tls.secret, or sip.tls.certFile and keyFile)');
  if (!sip.tls) return { connections };
  return { connections, tls: { ...tlsFiles(sip.tls, SIP_TLS_DIR), ...(sip.tls.caFile ? { ca: readFileSync(sip.tls.caFile) } : {}) } };
}

export const startSignaling: ComponentFactory = async (ctx) => {
  const cluster = ctx.config.cluster;
  const spec = cluster.spec;
  const location = spec.location;
  const directory = new DnDirectory(ctx.config);

  const model = new CallModel(modelEnv(ctx, directory));
  traceAs(ctx.nc, 'signaling');

  const edge = edgePlacement(process.env);
  const stack = await createSipStack({
    ...sipTlsOptions(spec.sip),
    ...(spec.sip.advertisedHost && !edge ? { advertisedHost: spec.sip.advertisedHost } : {}),
    recvBufferSize: spec.sip.udpReceiveBufferBytes,
    timers: spec.sip.timers,
    // A replica behind the SIP edge listens on its own sockets and names the edge in Contact; every
    // request then comes from the edge, which limits the rate of each source itself (pike).
    ...(edge ?? { listen: sipListenAddresses(spec.sip), ...(spec.sip.rateLimit.enabled ? { rateLimit: spec.sip.rateLimit } : {}) }),
    registry: ctx.registry,
    logger: ctx.log.child({ layer: 'sip' }),
    userAgent: 'huddle-sip-server',
  });
  const started = heldWhileStarting(stack);

  const kv = await openBucket(ctx.nc, RegistrationKeys.bucket, { history: 1, replicas: bucketReplicas(spec), log: ctx.log });
  const auth = new DnAuthenticator({ directory, realm: location, secretOf: (dn) => digestSecret(directory, dn, location, ctx) });
  warnUnauthenticated(ctx);
  const registrar = new RegistrarService({
    directory,
    kv,
    clusterName: cluster.metadata.name,
    auth,
    log: ctx.log,
  });
  // A browser's WebSocket closed: calls to its DN are answered 480 instead of failing on a dead flow.
  stack.onFlowClosed((flow) => void registrar.flowClosed(flow));
  // Following first: nothing another replica writes while this one loads is missed.
  await registrar.follow();
  await registrar.restore();

  const metrics = signalingMetrics(ctx.registry);
  const media = new MediaClient({ nc: ctx.nc, location: () => location, log: ctx.log, metrics });
  const tlib = new TlibService(ctx.nc, location, ctx.log, metrics);
  const conferenceEvents = new ConferenceEventNotifier({ location: () => location });
  const admission = new AdmissionGate({
    limits: () => ctx.config.cluster.spec.sip.admission,
    load: (): Omit<Load, 'eventLoopDelayMs'> => {
      const { portMin, portMax, replicas } = ctx.config.cluster.spec.media;
      return {
        mediaLatencyMs: media.latencyMs(),
        legsSettingUp: b2bua.settingUp,
        queueDepth: calls.depth,
        queueWaitMs: calls.waitMs,
        legs: b2bua.activeLegs,
        mediaPorts: (portMax - portMin + 1) * replicas,
      };
    },
    metrics,
  });
  const b2bua = new B2bua({
    stack,
    spanContext: (c) => componentContext(ctx.nc, c),
    media,
    registrar,
    directory,
    auth,
    conferenceEvents,
    // SIP facts go through the call model's queue, which hands its SIP actions back to this B2BUA.
    facts: { serially: (job) => calls.serially(job) },
    admission,
    location: () => location,
    log: ctx.log,
  });
  const replicator = new Replicator({
    store: await CallStateStore.open(ctx.nc, location, bucketReplicas(spec), ctx.log),
    replica: ctx.instance,
    relays: edge !== undefined,
    sip: stack.addresses.map((a) => `${a.transport} ${a.host}:${a.port}`)[0] ?? '',
    model,
    b2bua,
    media,
    log: ctx.log.child({ layer: 'call-state' }),
    probe: (replica): Promise<'gone' | 'present'> => router.probe(replica),
    onWrite: (bytes, seconds) => {
      metrics.callStateWrites.inc();
      metrics.callStateBytes.inc(bytes);
      metrics.callStateWriteDuration.observe(seconds);
    },
  });
  const cdr = await CdrPublisher.open({
    nc: ctx.nc,
    location,
    log: ctx.log.child({ layer: 'cdr' }),
    metrics: { stored: metrics.cdrStored, notStored: metrics.cdrNotStored },
    maxAgeHours: spec.cdr.maxAgeHours,
    replicas: bucketReplicas(spec),
  });
  // Retention is live: an edited spec.cdr.maxAgeHours reaches the stream without a restart.
  let retention = `${spec.cdr.maxAgeHours}/${bucketReplicas(spec)}`;
  const onCluster = (next: SipCluster): void => {
    const wanted = `${next.spec.cdr.maxAgeHours}/${bucketReplicas(next.spec)}`;
    if (wanted === retention) return;
    retention = wanted;
    cdr.retain(next.spec.cdr.maxAgeHours, bucketReplicas(next.spec)).catch((err: Error) => ctx.log.warn({ err: err.message }, 'CDR stream retention not changed'));
  };
  ctx.config.on('cluster', onCluster);
  const calls = new CallModelShell({
    model,
    media,
    b2bua,
    conferenceEvents,
    replication: replicator,
    publish: (dn, event, origin) => {
      // The requester's copy (it carries the origin) counts the request once.
      if (origin && event.event === 'EventListenDisconnected') metrics.listenDisconnects.inc();
      if (origin && event.event === 'EventListenReconnected') metrics.listenReconnects.inc();
      tlib.publish(dn, event, origin);
    },
    onSipAction: (out) => metrics.callSetup.sipAction(out),
    cdr,
    callLog: new CallLog((connId) => (model.call(connId)?.parties ?? []).flatMap((p) => b2bua.callIdOf(p.legId) ?? [])),
    log: ctx.log,
  });

  metrics.watch({
    registrations: () => registrar.count(),
    calls: () => model.stats().calls,
    conferences: () => model.stats().conferences,
    registeredDns: () => model.stats().registeredDns,
    legs: () => b2bua.activeLegs,
    eventLoopDelayMs: () => admission.eventLoopDelayMs,
    mediaLatencyMs: () => media.latencyMs(),
    legsSettingUp: () => b2bua.settingUp,
    queueDepth: () => calls.depth,
    queueWaitMs: () => calls.waitMs,
  });

  const router = new TlibRouter({
    nc: ctx.nc,
    location,
    replica: ctx.instance,
    owns: (connId) => model.call(connId) !== undefined,
    peers: () => replicator.peers(),
    takeoverPending: () => replicator.takeoverPending(),
    handle: async (request, origin) => {
      // A new call from a desktop is refused like an INVITE while overloaded, before the model allocates anything.
      if (request.request === 'MakeCall') {
        const verdict = admission.check('MakeCall');
        if (!verdict.admit) return [errorEvent(ErrorCodes.OutOfService, verdict.message, { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN })];
      }
      return calls.tlibRequest(request, origin);
    },
    log: ctx.log,
  });
  // Calls and desktop registrations this replica (or its previous incarnation) had, before any request is taken.
  await replicator.start(calls);

  let stopping = false;
  // Resolved once the edge's OPTIONS probe got our 503: from then on the edge sends us nothing new.
  let edgeProbeRefused: () => void = () => undefined;
  const edgeLetGo = new Promise<void>((resolve) => (edgeProbeRefused = resolve));
  const onRequest = (req: ServerRequest): void => {
    if (stopping && refusedWhileStopping(req)) {
      if (req.method === 'OPTIONS') edgeProbeRefused();
      return;
    }
    if (req.method === 'REGISTER') {
      const register = () =>
        registrar.onRegister(req).catch((err: Error) => {
          ctx.log.error({ err: err.stack }, 'REGISTER failed');
          if (!req.answered) req.respond(500, { reason: 'Registrar error' });
        });
      void inSpan(sipTracer, 'sip REGISTER', { kind: SpanKind.SERVER, attributes: { 'sip.call_id': req.message.callId } }, register, componentContext(ctx.nc));
      return;
    }
    b2bua.onRequest(req);
  };
  // An in-dialog request for a call of a replica that just died (or stops) is served once its calls
  // are claimed here; one for a call another live replica owns is relayed to it.
  const onUnknownDialog = (req: ServerRequest): void => {
    void replicator.takeOverDialog(req.message.callId, () => stack.deliver(req)).then((outcome) => {
      if (outcome === 'delivered' || req.answered) return;
      const owner = outcome === 'unknown' ? undefined : sipEndpoint(outcome.relay);
      if (!owner || !stack.relay(req, owner)) req.respond(481);
    });
  };
  media.onEvents((event) => calls.mediaEvent({ kind: 'media.event', event }));
  media.watchInstances(
    (bridgeIds, instance, reason) => calls.bridgesLost(bridgeIds, instance, reason),
    (bridgeIds, instance) => calls.bridgesRebuilt(bridgeIds, instance),
  );
  router.start();
  tlib.start((request, origin, id) => router.route(request, origin, id));
  // Core NATS loses what was in flight through a server that died: the DNs sent events lately are
  // resynced (tlib-api/README.md "Resync") when a gateway's connection, or ours, moved.
  const resync = (why: string, select: () => string[]) =>
    void calls.resync(select).then((dns) => {
      if (dns.length > 0) ctx.log.info({ why, dns }, 'desktops resynced after a NATS reconnect');
    });
  tlib.watchGateways(
    (gateway) => calls.gatewayGone(gateway),
    (gateway) => resync(`gateway ${gateway} reconnected`, () => tlib.recentlyEvented().filter((dn) => model.registeredVia(dn, gateway))),
  );
  onReconnect(ctx.nc, () => resync('signaling reconnected', () => tlib.recentlyEvented()));

  started({ request: onRequest, unknownDialog: onUnknownDialog });
  ctx.addReadiness('sip', () => (stopping ? 'stopping' : true));
  const sip = stack.addresses.map((a) => `${a.transport} ${a.host}:${a.port}`).join(', ');
  ctx.log.info({ sip }, 'signaling started');

  return {
    name: 'signaling',
    endpoints: [`SIP        ${sip}`],
    stop: async () => {
      stopping = true;
      replicator.leave();
      // Rolling upgrade: once the edge routes this replica's dialogs elsewhere and the set-ups under
      // way are confirmed, its calls go on at another replica without a BYE (only the last replica
      // releases them).
      const probeMs = spec.sip.edge.probeIntervalSeconds * 1000;
      await Promise.all([tlib.drain(), edge ? within(edgeLetGo, 2 * probeMs + 500) : undefined, until(() => b2bua.settingUp === 0, HandOverSetUpWaitMs)]);
      const handed = await replicator.handOff();
      await router.drain();
      await calls.drain();
      // In-dialog requests that still reach us (already on their way, or the edge's hash) are relayed to the claimers meanwhile.
      if (handed !== undefined) await new Promise((r) => setTimeout(r, HandOverRelayMs));
      await replicator.stop(true);
      ctx.config.off('cluster', onCluster);
      await cdr.flush(CdrFlushMs);
      await media.drain();
      await stack.close(1500);
      registrar.stopFollowing();
      admission.stop();
    },
  };
};

/** "udp 127.0.0.1:15061" (a replica's lease) as an endpoint. */
function sipEndpoint(address: string): Endpoint | undefined {
  const m = /^(udp|tcp|tls) (.+):(\d+)$/.exec(address);
  return m ? { protocol: m[1] as Endpoint['protocol'], host: m[2]!, port: Number(m[3]) } : undefined;
}

/** How long a stopping replica waits for its last call detail records to be stored. */
const CdrFlushMs = 2000;

/** How long a stopping replica lets the set-ups under way finish before it hands its calls over. */
const HandOverSetUpWaitMs = 3000;

/** How long a replica that handed its calls over still relays their in-dialog requests before its SIP stack closes. */
const HandOverRelayMs = 1500;

/** Resolves once `done` holds (checked every 20 ms), or after `ms`. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** What the pure call model may know of the world: options, DNs, music files, ids and the time. */
function modelEnv(ctx: ComponentContext, directory: DnDirectory): ModelEnv {
  return {
    location: ctx.config.cluster.spec.location,
    options: () => {
      const music = { musicRoot: ctx.musicRoot, options: ctx.config.cluster.spec.options };
      return { ...music.options, 'music-listen-disconnect': musicFileFor(music, 'music-listen-disconnect'), 'default-music': musicFileFor(music, 'default-music') };
    },
    dn: (number) => directory.dn(number),
    trunks: () => directory.trunks(),
    resolveMusic: (value) => resolveMusic(ctx.musicRoot, value),
    ids: {
      connId: () => randomBytes(8).toString('hex'),
      legId: () => `leg-${randomBytes(6).toString('hex')}`,
      bridgeId: () => `br-${randomBytes(6).toString('hex')}`,
    },
    clock: () => Date.now(),
  };
}

/**
 * What signaling knows of a DN's password: the HA1 verifiers the config bucket carries (npm start
 * and the operator publish those instead of an inline password), or the Secret key mounted under
 * HUDDLE_SECRETS_DIR, read at each use so that a rotated Secret applies.
 */
function digestSecret(directory: DnDirectory, dn: string, realm: string, ctx: ComponentContext): DigestSecret | undefined {
  const password = directory.dn(dn)?.options.password;
  if (password?.ha1) {
    if (password.ha1.realm === realm) return { ha1: { md5: password.ha1.md5, sha256: password.ha1.sha256 } };
    ctx.log.error({ dn, realm: password.ha1.realm }, 'password verifier of another realm than this site location; republish the DN');
    return undefined;
  }
  if (password?.value) return password.value;
  if (!password?.secretKeyRef) return undefined;
  const secretsDir = process.env.HUDDLE_SECRETS_DIR ?? '/etc/huddle/secrets';
  return readFileSync(path.join(secretsDir, password.secretKeyRef.name, password.secretKeyRef.key), 'utf8').trim();
}

/** One warning per DN that registers and calls without credentials, so nobody runs one unknowingly. */
function warnUnauthenticated(ctx: ComponentContext): void {
  for (const dn of ctx.config.dns) {
    if (dn.spec.options['sip-allow-unauthenticated-insecure'] === true) {
      ctx.log.warn({ dn: dn.spec.number }, `INSECURE: DN ${dn.spec.number} registers and calls without credentials (sip-allow-unauthenticated-insecure: true)`);
    }
  }
}
