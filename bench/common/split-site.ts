/**
 * A site laid out as pods are: media-controller, signaling and the T-Library gateway each in its
 * own process (bin/<component>.ts reading the config bucket), beside an embedded nats-server and
 * rtpengine. Used by benchmarks (`--split`) so the mixer does not share an event loop with
 * signaling. Prints the same banner as bin/start.ts and serves the components' metrics, joined, on
 * spec.metrics.listen.
 *
 *   tsx bench/common/split-site.ts --config <file>
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../../common/config/load.js';
import { openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import { connectNats } from '../../common/nats/connect.js';
import { parseHostPort } from '../../common/process/http.js';
import { createLogger } from '../../common/process/logger.js';
import { startNatsServer } from '../../common/supervisor/nats-server.js';
import { freePort } from '../../common/supervisor/ports.js';
import { startRtpengine } from '../../common/supervisor/rtpengine.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const log = createLogger('split-site');
const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = loadConfigFile(values.config ?? 'config/local.yaml');
const spec = config.cluster.spec;
const dataDir = path.resolve(spec.dataDir, config.cluster.metadata.name);

const nats = await startNatsServer({ dataDir, log });
const rtp = await startRtpengine({ portMin: spec.media.portMin, portMax: spec.media.portMax, threads: spec.media.rtpengineThreads, dataDir, log });
const nc = await connectNats(nats.url, 'split-site');
await publishConfig(await openConfigBucket(nc, spec.nats.configBucket), config.cluster, config.dns);
await nc.close();

const children: ChildProcess[] = [];
const metricsPorts: number[] = [];
for (const component of ['media-controller', 'signaling', 'tlib-gateway']) {
  const port = await freePort();
  metricsPorts.push(port);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, `bin/${component}.ts`)], {
    env: {
      ...process.env,
      HUDDLE_NATS_URL: nats.url,
      HUDDLE_CLUSTER: config.cluster.metadata.name,
      HUDDLE_CONFIG_BUCKET: spec.nats.configBucket,
      HUDDLE_RTPENGINE: rtp.ng,
      HUDDLE_METRICS_LISTEN: `127.0.0.1:${port}`,
      HUDDLE_MUSIC_ROOT: config.musicRoot,
      POD_NAME: `${component}-0`,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${component} did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const { host, port } = parseHostPort(spec.metrics.listen);
const server = http.createServer((_req, res) => {
  Promise.all(metricsPorts.map((p) => fetch(`http://127.0.0.1:${p}/metrics`).then((r) => r.text())))
    .then((texts) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(texts.join('\n'));
    })
    .catch((err: Error) => {
      res.writeHead(500);
      res.end(err.message);
    });
});
await new Promise<void>((resolve) => server.listen(port, host, resolve));
process.stdout.write(`huddle SIP Server, site ${spec.location} (split: one process per component)\n  rtpengine  ng ${rtp.ng}\n`);

const stop = async () => {
  server.close();
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r)))));
  await rtp.process.stop();
  await nats.process.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
