/**
 * Real infrastructure for tests: a nats-server and an rtpengine on free loopback ports, with
 * state in a temporary directory, always stopped afterwards. A missing binary fails the test
 * with the Debian package that provides it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsClientOptions } from '../../common/nats/connect.js';
import { newUsers, type NatsRole, type NatsSite } from '../../common/nats/permissions.js';
import { createLogger } from '../../common/process/logger.js';
import { startNatsServer, type EmbeddedNats, type NatsServerOptions } from '../../common/supervisor/nats-server.js';
import { startRtpengine, type EmbeddedRtpengine } from '../../common/supervisor/rtpengine.js';
import { freePortRange } from '../../common/supervisor/ports.js';

const log = createLogger('test-infra', process.env.TEST_LOG_LEVEL ?? 'silent');

export interface TestNats extends EmbeddedNats {
  /** How `role` connects: its user and password when the server has users, nothing otherwise. */
  client(role: NatsRole): NatsClientOptions;
  stop(): Promise<void>;
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
    client: (role) => {
      const user = users?.find((u) => u.user === role);
      return user ? { role, user: user.user, password: user.password } : { role };
    },
    stop: async () => {
      await nats.process.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
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
