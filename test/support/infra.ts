/**
 * Real infrastructure for tests: a nats-server (or a cluster of them) and an rtpengine on free loopback ports, with
 * state in a temporary directory, always stopped afterwards. A missing binary fails the test
 * with the Debian package that provides it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsClientOptions } from '../../common/nats/connect.js';
import { newUsers, type NatsRole, type NatsSite, type NatsUser } from '../../common/nats/permissions.js';
import { createLogger } from '../../common/process/logger.js';
import { startNatsCluster, startNatsServer, type EmbeddedNats, type NatsClusterNode, type NatsServerOptions } from '../../common/supervisor/nats-server.js';
import { startRtpengine, type EmbeddedRtpengine } from '../../common/supervisor/rtpengine.js';
import { freePortRange } from '../../common/supervisor/ports.js';

const log = createLogger('test-infra', process.env.TEST_LOG_LEVEL ?? 'silent');

/** A NATS for tests, one server or a cluster. */
export interface TestNatsBus {
  /** One URL, or a cluster's URLs comma-separated. */
  url: string;
  /** How `role` connects: its user and password when the server has users, nothing otherwise. */
  client(role: NatsRole): NatsClientOptions;
  stop(): Promise<void>;
}

export interface TestNats extends EmbeddedNats, TestNatsBus {}

/** A JetStream cluster on loopback whose servers a test kills (SIGKILL) and starts again (`node.start()`); they are not restarted by themselves. */
export interface TestNatsCluster extends TestNatsBus {
  nodes: NatsClusterNode[];
}

export interface TestNatsOptions {
  /** Users per role for these sites, as `npm start` runs it; left out, an open server (for tests of other things). */
  sites?: NatsSite[];
  tls?: NatsServerOptions['tls'];
}

export async function startTestNats(opts: TestNatsOptions = {}): Promise<TestNats> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-nats-'));
  const users = opts.sites ? newUsers(...opts.sites) : undefined;
  const nats = await startNatsServer({ dataDir, log, users, tls: opts.tls });
  return {
    ...nats,
    client: clientOf(users),
    stop: async () => {
      await nats.process.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startTestNatsCluster(opts: TestNatsOptions & { servers?: number } = {}): Promise<TestNatsCluster> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-nats-cluster-'));
  const users = opts.sites ? newUsers(...opts.sites) : undefined;
  const cluster = await startNatsCluster({ servers: opts.servers ?? 3, dataDir, log, users, tls: opts.tls, restart: false });
  return {
    url: cluster.url,
    nodes: cluster.nodes,
    client: clientOf(users),
    stop: async () => {
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function clientOf(users: NatsUser[] | undefined): (role: NatsRole) => NatsClientOptions {
  return (role) => {
    const user = users?.find((u) => u.user === role);
    return user ? { role, user: user.user, password: user.password } : { role };
  };
}

export interface TestRtpengine extends EmbeddedRtpengine {
  portMin: number;
  portMax: number;
  stop(): Promise<void>;
}

export async function startTestRtpengine(ports = 200): Promise<TestRtpengine> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-rtpengine-'));
  const range = await freePortRange(ports);
  const rtp = await startRtpengine({ portMin: range.min, portMax: range.max, dataDir, log });
  return {
    ...rtp,
    portMin: range.min,
    portMax: range.max,
    stop: async () => {
      await rtp.process.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
