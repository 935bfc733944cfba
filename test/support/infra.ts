/**
 * Real infrastructure for tests: a nats-server and an rtpengine on free loopback ports, with
 * state in a temporary directory, always stopped afterwards. A missing binary fails the test
 * with the Debian package that provides it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../common/process/logger.js';
import { startNatsServer, type EmbeddedNats } from '../../common/supervisor/nats-server.js';
import { startRtpengine, type EmbeddedRtpengine } from '../../common/supervisor/rtpengine.js';
import { freePortRange } from '../../common/supervisor/ports.js';

const log = createLogger('test-infra', process.env.TEST_LOG_LEVEL ?? 'silent');

export interface TestNats extends EmbeddedNats {
  stop(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-nats-'));
  const nats = await startNatsServer({ dataDir, log });
  return {
    ...nats,
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
