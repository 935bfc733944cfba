/**
 * A whole site for end-to-end tests: real nats-server and rtpengine, and media-controller,
 * signaling and the T-Library gateway as `npm start` runs them, on free loopback ports; agents
 * are a SIP test phone (our stack) with a tone-sending, tone-detecting RTP endpoint, plus a
 * T-Library desktop (the SDK) registered on the same DN.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DestinationStream } from 'pino';
import { Registry } from 'prom-client';
import type { SipCluster, SipDN } from '../../common/config/schema.js';
import { parseConfig, type PlatformConfig } from '../../common/config/load.js';
import { tokenVerifier } from '../../common/config/token-verifier.js';
import { LiveConfig, openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import { bucketReplicas } from '../../common/nats/buckets.js';
import { connectNats } from '../../common/nats/connect.js';
import { NatsRoles, type NatsRole } from '../../common/nats/permissions.js';
import type { ComponentContext } from '../../common/process/component.js';
import type { Component } from '../../common/process/lifecycle.js';
import { createLogger } from '../../common/process/logger.js';
import { freePort } from '../../common/supervisor/ports.js';
import { startRtpengine } from '../../common/supervisor/rtpengine.js';
import { startMediaController } from '../../media-controller/component.js';
import { startSignaling } from '../../signaling/component.js';
import { TlibClient } from '../../tlib-api/client/index.js';
import type { TEvent } from '../../common/tlib/messages.js';
import { startGateway } from '../../tlib-api/gateway/component.js';
import { startTestNats, startTestRtpengine, type TestNats, type TestNatsBus, type TestRtpengine } from '../support/infra.js';
import { SipPhone } from '../support/sip-phone.js';
import { TonePhone, toneFrequency, type Heard } from '../support/tone-phone.js';
import { MediaControllerProcess } from './media-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface SiteOptions<N extends TestNatsBus = TestNats> {
  /** Text edits applied to config/local.yaml (or `base`) before it is loaded. */
  edit?: (yaml: string) => string;
  base?: string;
  /**
   * Share another site's NATS (two sites on one bus are still separate by location), or run on a
   * NATS cluster (startTestNatsCluster: give it this site's users, and `edit` the site to
   * `nats.replicas: 3` for buckets that outlive a server).
   */
  nats?: N;
  /** The SIP port (default a free one), for sites that must know each other's port in advance. */
  sipPort?: number;
  /** false: no signaling in this process (the test runs it as a child process: test/e2e/signaling-process.ts). */
  signaling?: boolean;
  /** Run media-controller as its own process (bin/media-controller.ts), so that a test can SIGKILL it. */
  mediaProcess?: boolean;
  /** rtpengine's media ports (default 200): a load test holding many calls needs more. */
  rtpenginePorts?: number;
  /** Where the components log, and at which level (default: TEST_LOG_LEVEL or silent, on stdout). */
  log?: { level: string; destination: DestinationStream };
}

/** What an agent needs of a site: where to register, and desktops on its gateway. */
export interface AgentSite {
  readonly sipPort: number;
  desktop(dn: string): Promise<Desktop>;
  /** A DN's digest password; default: the one in the repo's config files (configuredPassword). */
  password?(dn: string): string;
}

const ConfigFiles = ['config/local.yaml', 'config/two-site-b.yaml'];

/** A DN's password.value in config/local.yaml or config/two-site-b.yaml, which every site under test starts from. */
export function configuredPassword(dn: string): string {
  for (const file of ConfigFiles) {
    const config = parseConfig(readFileSync(path.join(ROOT, file), 'utf8'), file, path.join(ROOT, 'config'));
    const value = config.dns.find((d) => d.spec.number === dn)?.spec.options.password?.value;
    if (value !== undefined) return value;
  }
  throw new Error(`DN ${dn} has no password in ${ConfigFiles.join(' or ')}`);
}

export class Site<N extends TestNatsBus = TestNats> implements AgentSite {
  readonly agents: Agent[] = [];
  private constructor(
    readonly config: PlatformConfig,
    readonly sipPort: number,
    readonly gatewayUrl: string,
    private readonly parts: {
      nats: N;
      ownNats: boolean;
      rtpengine: TestRtpengine;
      components: Component[];
      configBucket: string;
      mediaProcesses: Map<string, MediaControllerProcess>;
      live: LiveConfig;
      kv: KV;
      close: () => Promise<void>;
      /** A component context on this site's NATS, configuration and rtpengine. */
      context: (name: string, registry: Registry) => ComponentContext;
    },
    readonly registry: Registry,
  ) {}

  static async start<N extends TestNatsBus = TestNats>(opts: SiteOptions<N> = {}): Promise<Site<N>> {
    const sipPort = opts.sipPort ?? (await freePort());
    const gatewayPort = await freePort();
    // The site's media port range is its rtpengine's: admission control counts the ports calls hold.
    const rtpengine = await startTestRtpengine(opts.rtpenginePorts ?? 200);
    let yaml = readFileSync(path.join(ROOT, opts.base ?? 'config/local.yaml'), 'utf8');
    yaml = yaml
      .replace(/port: 506\d/g, `port: ${sipPort}`)
      .replace(/listen: 127\.0\.0\.1:7[01]00/, `listen: 127.0.0.1:${gatewayPort}`)
      .replace(/portMin: \d+/, `portMin: ${rtpengine.portMin}`)
      .replace(/portMax: \d+/, `portMax: ${rtpengine.portMax}`);
    if (opts.edit) yaml = opts.edit(yaml);
    const config = parseConfig(yaml, 'test-site.yaml', path.join(ROOT, 'config'));
    const configBucket = `cfg-${config.cluster.metadata.name}`;
    // NATS as npm start runs it: every component its own user, allowed only what it needs.
    // Without opts.nats, N is its default TestNats.
    const nats = opts.nats ?? ((await startTestNats({ sites: [{ location: config.cluster.spec.location, configBucket }] })) as TestNatsBus as N);
    const connections = new Map<NatsRole, NatsConnection>();
    for (const role of NatsRoles) connections.set(role, await connectNats(nats.url, `e2e-site-${role}`, undefined, nats.client(role)));
    const nc = connections.get('config-publisher')!;
    const kv = await openConfigBucket(nc, configBucket, { replicas: bucketReplicas(config.cluster.spec) });
    await publishConfig(kv, config.cluster, config.dns);
    const live = await LiveConfig.watch(kv, config.cluster.metadata.name, undefined, nc);
    const registry = new Registry();
    const components: Component[] = [];
    const context = (name: string, reg: Registry): ComponentContext => ({
      config: live,
      musicRoot: config.musicRoot,
      nc: connections.get(roleOf(name))!,
      registry: reg,
      log: createLogger(`${config.cluster.spec.location}-${name}`, opts.log?.level ?? process.env.TEST_LOG_LEVEL ?? 'silent', opts.log?.destination),
      addReadiness: () => undefined,
      rtpengines: [rtpengine.ng],
      instance: `${config.cluster.spec.location}-${name}`,
    });
    const ctx = (name: string) => context(name, registry);
    try {
      if (!opts.mediaProcess) components.push(await startMediaController(ctx('media')));
      if (opts.signaling !== false) components.push(await startSignaling(ctx('signaling')));
      components.push(await startGateway(ctx('gateway')));
    } catch (err) {
      for (const c of components.reverse()) await c.stop();
      for (const c of connections.values()) await c.close();
      await rtpengine.stop();
      if (!opts.nats) await nats.stop();
      throw err;
    }
    const site = new Site(
      config,
      sipPort,
      `ws://127.0.0.1:${gatewayPort}/tlib`,
      {
        nats,
        ownNats: !opts.nats,
        rtpengine,
        components,
        configBucket,
        mediaProcesses: new Map(),
        live,
        kv,
        close: async () => {
          live.stop();
          for (const c of connections.values()) await c.drain();
        },
        context,
      },
      registry,
    );
    if (opts.mediaProcess) await site.startMediaProcess();
    return site;
  }

  /** Starts media-controller as its own process, under a pod name (a restarted pod keeps its name). */
  async startMediaProcess(podName = 'media-0'): Promise<MediaControllerProcess> {
    const mc = await MediaControllerProcess.start({
      nats: this.parts.nats,
      cluster: this.config.cluster.metadata.name,
      configBucket: this.parts.configBucket,
      rtpengine: this.parts.rtpengine.ng,
      musicRoot: this.config.musicRoot,
      podName,
    });
    this.parts.mediaProcesses.set(podName, mc);
    return mc;
  }

  mediaProcess(podName = 'media-0'): MediaControllerProcess {
    const mc = this.parts.mediaProcesses.get(podName);
    if (!mc) throw new Error(`no media-controller process ${podName}`);
    return mc;
  }

  /** SIGKILLs the site's rtpengine and starts it again on the same ng port; resolves with the time it was away. */
  async restartRtpengine(): Promise<number> {
    const old = this.parts.rtpengine;
    const ngPort = Number(old.ng.slice(old.ng.lastIndexOf(':') + 1));
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-rtpengine-'));
    const log = createLogger('rtpengine', process.env.TEST_LOG_LEVEL ?? 'silent');
    const killedAt = Date.now();
    process.kill(old.process.pid!, 'SIGKILL');
    await old.stop();
    const rtp = await startRtpengine({ ngPort, portMin: old.portMin, portMax: old.portMax, dataDir, log });
    this.parts.rtpengine = {
      ...rtp,
      portMin: old.portMin,
      portMax: old.portMax,
      stop: async () => {
        await rtp.process.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
    return Date.now() - killedAt;
  }

  /** The site's rtpengine process id (for SIGSTOP/SIGCONT). */
  get rtpenginePid(): number {
    return this.parts.rtpengine.process.pid ?? 0;
  }

  get nats(): N {
    return this.parts.nats;
  }

  /** The rtpengine's ng address (host:port). */
  get rtpengineNg(): string {
    return this.parts.rtpengine.ng;
  }

  /** The config bucket the site's configuration is published in. */
  get configBucket(): string {
    return `cfg-${this.config.cluster.metadata.name}`;
  }

  /** http://host:port of the site's gateway (the agent page). */
  get gatewayHttpUrl(): string {
    return this.gatewayUrl.replace(/^ws:/, 'http:').replace(/\/tlib$/, '');
  }

  /**
   * A context for one more component on this site (e.g. a second gateway replica), with its own
   * registry by default so its metrics do not clash with the site's.
   */
  context(name: string, registry = new Registry()): ComponentContext {
    return this.parts.context(name, registry);
  }

  /** Stops one of the site's components ('media-controller', 'signaling', 'tlib-gateway') for good, e.g. to test how the others cope. */
  async stopComponent(name: string): Promise<void> {
    const i = this.parts.components.findIndex((c) => c.name === name);
    if (i < 0) throw new Error(`no running component ${name}; running: ${this.parts.components.map((c) => c.name).join(', ')}`);
    const [component] = this.parts.components.splice(i, 1);
    await component!.stop();
  }

  /**
   * Changes the configuration as an operator edit would (through the config bucket) and waits
   * (up to `timeoutMs`) until the running site sees it.
   */
  async reconfigure(change: (cluster: SipCluster, dns: SipDN[]) => void, timeoutMs = 5000): Promise<void> {
    const cluster = structuredClone(this.parts.live.cluster);
    const dns = structuredClone(this.parts.live.dns);
    change(cluster, dns);
    await publishConfig(this.parts.kv, cluster, dns);
    // The bucket holds agent tokens as verifiers only.
    const stored = { ...cluster.spec, gateway: { ...cluster.spec.gateway, tokens: cluster.spec.gateway.tokens.map((t) => ({ ...t, token: tokenVerifier(t.token) })) } };
    const want = JSON.stringify({ cluster: stored, dns: dns.map((d) => d.spec) });
    const deadline = Date.now() + timeoutMs;
    const seen = () => JSON.stringify({ cluster: this.parts.live.cluster.spec, dns: this.parts.live.dns.map((d) => d.spec) });
    while (seen() !== want) {
      if (Date.now() > deadline) throw new Error(`the site did not see the new configuration within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A configured token that may register every DN. */
  get supervisorToken(): string {
    const token = this.config.cluster.spec.gateway.tokens.find((t) => t.dns.includes('*'));
    if (!token) throw new Error('the site configuration has no token for all DNs');
    return token.token;
  }

  get location(): string {
    return this.config.cluster.spec.location;
  }

  /** A DN's digest password as this site's configuration gives it (before it is published as a verifier). */
  password(dn: string): string {
    const value = this.config.dns.find((d) => d.spec.number === dn)?.spec.options.password?.value;
    if (value === undefined) throw new Error(`DN ${dn} has no password.value in this site's configuration`);
    return value;
  }

  /** A registered phone sending tone k, and a desktop registered on the same DN. */
  async agent(dn: string, tone: number, opts: { desktop?: boolean; transport?: 'udp' | 'tcp' } = {}): Promise<Agent> {
    const agent = await Agent.start(this, dn, toneFrequency(tone), opts);
    this.agents.push(agent);
    return agent;
  }

  desktop(dn: string): Promise<Desktop> {
    return openDesktop(this.gatewayUrl, this.supervisorToken, dn);
  }

  async stop(): Promise<void> {
    for (const a of this.agents) await a.close();
    for (const c of [...this.parts.components].reverse()) await c.stop();
    for (const mc of this.parts.mediaProcesses.values()) await mc.stop();
    await this.parts.close();
    await this.parts.rtpengine.stop();
    if (this.parts.ownNats) await this.parts.nats.stop();
  }
}

/** A desktop on the gateway at `url`, registered on `dn`. */
/** The NATS role of a component of a site, by the name its context is asked for. */
function roleOf(component: string): NatsRole {
  if (component.includes('media')) return 'media-controller';
  if (component.includes('signaling')) return 'signaling';
  return 'gateway';
}

export async function openDesktop(url: string, token: string, dn: string): Promise<Desktop> {
  const client = new TlibClient({ url, token, reconnect: false });
  await client.open();
  const desktop = new Desktop(dn, client);
  await client.registerAddress({ thisDN: dn });
  return desktop;
}

/** A T-Library desktop on one DN that keeps every event it gets. */
export class Desktop {
  readonly events: TEvent[] = [];
  constructor(
    readonly dn: string,
    readonly client: TlibClient,
  ) {
    client.on('event', (e) => this.events.push(e));
  }

  /** Waits for an event matching `match` among those received so far or later. */
  async waitFor(match: (e: TEvent) => boolean, what: string, timeoutMs = 10_000): Promise<TEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`${this.dn}: no ${what} within ${timeoutMs} ms; got ${this.events.map((e) => e.event).join(', ')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The latest LCTParty EventUserEvent: aliases with their states. */
  lctParties(): { alias: string; location: string; state?: string }[] | undefined {
    const last = [...this.events].reverse().find((e) => e.event === 'EventUserEvent' && e.Extensions && 'LCTPartiesLength' in e.Extensions);
    if (!last?.Extensions) return undefined;
    const ext = last.Extensions;
    const n = Number(ext.LCTPartiesLength);
    return Array.from({ length: n }, (_, i) => {
      const party: { alias: string; location: string; state?: string } = { alias: String(ext[`LCTParty${i}`]), location: String(ext[`LCTParty${i}_location`]) };
      const state = ext[`LCTParty${i}_state`];
      if (state !== undefined) party.state = String(state);
      return party;
    });
  }

  names(): string[] {
    return this.events.map((e) => e.event);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

export class Agent {
  desktop: Desktop | undefined;
  private constructor(
    readonly site: AgentSite,
    readonly dn: string,
    readonly phone: SipPhone,
    readonly media: TonePhone,
  ) {}

  static async start(site: AgentSite, dn: string, frequency: number, opts: { desktop?: boolean; transport?: 'udp' | 'tcp' }): Promise<Agent> {
    const password = site.password ? site.password(dn) : configuredPassword(dn);
    const phone = await SipPhone.start({ user: dn, transport: opts.transport ?? 'udp', password });
    const media = await TonePhone.start({ frequency });
    const agent = new Agent(site, dn, phone, media);
    phone.onIncoming((offer) => media.answer(offer));
    phone.onReinvite((offer) => media.answer(offer));
    const res = await phone.register(`sip:127.0.0.1:${site.sipPort}`, `sip:${dn}@127.0.0.1`);
    if (res.status !== 200) throw new Error(`REGISTER ${dn}: ${res.status} ${res.reason}`);
    if (opts.desktop !== false) agent.desktop = await site.desktop(dn);
    return agent;
  }

  get tone(): number {
    return this.media.frequency ?? 0;
  }

  /** Dials a number from the phone (a phone-originated call). */
  async dial(number: string): Promise<void> {
    const outcome = await this.phone.call(`sip:${number}@127.0.0.1:${this.site.sipPort}`, this.media.offer());
    if (!outcome.answered) throw new Error(`${this.dn} dialling ${number}: ${outcome.status} ${outcome.reason}`);
    this.media.accept(outcome.answerSdp);
  }

  heard(windowMs = 1000): Promise<Heard> {
    return this.media.waitFor(() => true, 100, windowMs);
  }

  /** Waits until what this phone hears satisfies `predicate` (the last observation is in the error). */
  hears(predicate: (h: Heard) => boolean, timeoutMs = 8000): Promise<Heard> {
    return this.media.waitFor(predicate, timeoutMs);
  }

  async close(): Promise<void> {
    await this.desktop?.close();
    await this.phone.close();
    await this.media.close();
  }
}

/** Exactly these tones heard (order-free), with or without music. */
export function exactly(tones: number[], music = false): (h: Heard) => boolean {
  const want = [...tones].sort((a, b) => a - b);
  return (h) => h.music === music && h.tones.length === want.length && h.tones.every((t, i) => t === want[i]);
}

/**
 * Over a second: what `want` says, and of 50 packets at least 30. Run alone, every window holds 45
 * or more; on a loaded machine the test's own event loop takes every phone's packets late alike,
 * so the bound proves no gap over 400 ms.
 */
export const steady = (want: (h: Heard) => boolean) => (h: Heard) => h.packets >= 30 && want(h);

/** Samples what every phone hears every 250 ms until stopped; resolves with the samples that were not as expected. */
export function watchAudio(expected: Map<Agent, (h: Heard) => boolean>): () => Promise<string[]> {
  const gaps: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const [agent, want] of expected) {
        const heard = agent.media.heard(1000);
        if (!want(heard)) gaps.push(`${agent.dn}: ${JSON.stringify(heard)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return async () => {
    watching = false;
    await watcher;
    return gaps;
  };
}

/**
 * The calls the fault tests keep alive: a conference of a, b and c with c listen-disconnected by
 * a, and d calling e. Resolves once every phone hears what it should, with what that is (c: music).
 */
export async function conferenceAndCall(a: Agent, b: Agent, c: Agent, d: Agent, e: Agent): Promise<{ connID: string; expected: Map<Agent, (h: Heard) => boolean> }> {
  const connID = await conference(a, b, c);
  await a.desktop!.client.listenDisconnect({ thisDN: a.dn, connID, otherDN: c.dn });
  await d.dial(e.dn);
  await c.hears(exactly([], true));
  const expected = new Map<Agent, (h: Heard) => boolean>([
    [a, steady(exactly([b.tone]))],
    [b, steady(exactly([a.tone]))],
    // The music's notes change: a window may hold one only, never a party tone.
    [c, steady((h) => h.tones.length === 0 && !h.silence)],
    [d, steady(exactly([e.tone]))],
    [e, steady(exactly([d.tone]))],
  ]);
  for (const [agent, want] of expected) await agent.hears(want);
  return { connID, expected };
}

/** a dials b, then a's desktop adds each of `more` with SingleStepConference; resolves with the ConnID. */
export async function conference(a: Agent, b: Agent, ...more: Agent[]): Promise<string> {
  const before = a.desktop!.events.length;
  await a.dial(b.dn);
  const established = await a.desktop!.waitFor((e) => e.event === 'EventEstablished' && a.desktop!.events.indexOf(e) >= before, 'EventEstablished');
  const connID = established.ConnID!;
  for (const c of more) {
    await a.desktop!.client.singleStepConference({ thisDN: a.dn, connID, otherDN: c.dn });
    // A party on another site is in that site's own call, with its own ConnID.
    const sameSite = c.site === a.site;
    await c.desktop!.waitFor((e) => e.event === 'EventEstablished' && (!sameSite || e.ConnID === connID), `EventEstablished on ${c.dn}`);
  }
  return connID;
}

/** The value of one metric sample in the site's registry (0 when absent), e.g. metric(site, 'huddle_sip_requests_total', { direction: 'in', method: 'INVITE' }). */
export function metric(site: Site, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(site.registry, name, labels);
}

/** One metric of a registry, summed over the samples matching `labels` (a histogram: its count). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = await registry.getSingleMetric(name)?.get();
  if (!found) return 0;
  return found.values
    .filter((v) => {
      const metricName = (v as { metricName?: string }).metricName;
      return (metricName === undefined || metricName === name || metricName === `${name}_count`) && Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val);
    })
    .reduce((sum, v) => sum + v.value, 0);
}

const NotCallEvents = new Set(['EventUserEvent', 'EventPartyInfo', 'EventError']);

/** The call-state events a desktop got about one call, by name (no LCTParty user events, query answers or errors). */
export function callEvents(desktop: Desktop, connID: string): string[] {
  return desktop.events.filter((e) => e.ConnID === connID && !NotCallEvents.has(e.event)).map((e) => e.event);
}

/** Waits until `condition` holds (polling), failing with `what` (read then: it may name output seen meanwhile) after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
