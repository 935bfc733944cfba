/**
 * The pod entry points (bin/signaling.ts, bin/media-controller.ts, bin/tlib-gateway.ts) as the
 * operator runs them: configuration from the NATS config bucket, /healthz, /readyz, /metrics,
 * and a clean exit on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../common/config/load.js';
import { openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import { connectNats } from '../../common/nats/connect.js';
import { freePort } from '../../common/supervisor/ports.js';
import { startTestNats, startTestRtpengine, type TestNats, type TestRtpengine } from '../support/infra.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('component entry points', () => {
  let nats: TestNats;
  let rtp: TestRtpengine;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // Each entry point as its own NATS user, as the operator gives them.
    [nats, rtp] = await Promise.all([startTestNats({ sites: [{ location: 'SiteA' }] }), startTestRtpengine(40)]);
    const sip = await freePort();
    const gateway = await freePort();
    const yaml = readFileSync(path.join(root, 'config/local.yaml'), 'utf8').replaceAll('port: 5060', `port: ${sip}`).replace('listen: 127.0.0.1:7000', `listen: 127.0.0.1:${gateway}`);
    const config = parseConfig(yaml, 'pods.yaml', path.join(root, 'config'));
    const nc = await connectNats(nats.url, 'pods-test', undefined, nats.client('config-publisher'));
    await publishConfig(await openConfigBucket(nc), config.cluster, config.dns);
    await nc.close();
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all([nats?.stop(), rtp?.stop()]);
  });

  for (const [component, role] of [
    ['media-controller', 'media-controller'],
    ['signaling', 'signaling'],
    ['tlib-gateway', 'gateway'],
  ] as const) {
    it(`${component} reads the config bucket, serves /readyz and /metrics, and exits 0 on SIGTERM`, async () => {
      const metricsPort = await freePort();
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, `bin/${component}.ts`)], {
        env: {
          ...process.env,
          LOG_LEVEL: 'warn',
          HUDDLE_NATS_URL: nats.url,
          HUDDLE_NATS_USER: nats.client(role).user,
          HUDDLE_NATS_PASSWORD: nats.client(role).password,
          HUDDLE_CLUSTER: 'site-a',
          HUDDLE_RTPENGINE: rtp.ng,
          HUDDLE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
          HUDDLE_MUSIC_ROOT: path.join(root, 'config'),
          POD_NAME: `${component}-0`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let output = '';
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const base = `http://127.0.0.1:${metricsPort}`;
      const deadline = Date.now() + 40_000;
      let ready = '';
      while (Date.now() < deadline) {
        ready = await fetch(`${base}/readyz`).then(
          (r) => r.text(),
          () => '',
        );
        if (ready === 'ready\n') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready, output).toBe('ready\n');
      expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok\n');
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain(`component="${component}"`);
      child.kill('SIGTERM');
      expect(await exited, output).toBe(0);
    });
  }
});
