/**
 * The T-Library tests run against a whole real site (test/e2e/site.ts): nats-server, rtpengine,
 * media-controller, signaling with the real call model and the gateway, with SIP test phones
 * making the calls. This adds what the gateway, SDK and CLI tests need on top: gateway replicas
 * on the same NATS and metric reads. Always `await h.stop()` in afterAll.
 */
import path from 'node:path';
import { Registry } from 'prom-client';
import { createGateway, type Gateway, type GatewayOptions } from '../../tlib-api/gateway/gateway.js';
import { Site, type Agent, type SiteOptions } from '../e2e/site.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface Replica extends Gateway {
  registry: Registry;
}

export interface TlibSite {
  site: Site;
  /** The site's gateway: ws://…/tlib. */
  wsUrl: string;
  /** The site's registry (gateway, signaling and media-controller metrics). */
  registry: Registry;
  location: string;
  /** Registered SIP test phones (no desktops), tone k for the n-th DN given. */
  phones(...dns: string[]): Promise<Agent[]>;
  /** Another gateway replica on the site's NATS, with its own registry; stopped with the site. */
  startReplica(instance: string, options?: GatewayOptions): Promise<Replica>;
  stop(): Promise<void>;
}

export async function startTlibSite(options: SiteOptions = {}): Promise<TlibSite> {
  const site = await Site.start(options);
  const replicas: Replica[] = [];
  let tone = 0;
  return {
    site,
    wsUrl: site.gatewayUrl,
    registry: site.registry,
    location: site.location,
    phones: async (...dns) => {
      const agents: Agent[] = [];
      for (const dn of dns) agents.push(await site.agent(dn, tone++, { desktop: false }));
      return agents;
    },
    startReplica: async (instance, replicaOptions = {}) => {
      const registry = new Registry();
      const gateway = await createGateway(site.context(instance, registry), { listen: '127.0.0.1:0', ...replicaOptions });
      const replica = Object.assign(gateway, { registry });
      replicas.push(replica);
      return replica;
    },
    stop: async () => {
      // A replica stopped by its test already stops again at once.
      for (const replica of replicas.reverse()) await replica.stop();
      await site.stop();
    },
  };
}

export { metricValue, until as waitUntil } from '../e2e/site.js';
