/**
 * `npm run bench:gateway`: N simulated desktops (default 5,000) on one T-Library gateway process,
 * each registered on its own DN; events published on NATS at a steady rate to random DNs.
 * Prints p50/p99 event delivery latency (NATS publish -> desktop receive, same clock) and the
 * gateway's RSS per connection. A responder answers RegisterAddress as signaling would
 * (responder.ts), so the figures are the gateway's own.
 *
 * Options: --desktops 5000 --rate 2000 (events/s) --seconds 20
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../common/config/load.js';
import { waitForTcp, freePort } from '../../common/supervisor/ports.js';
import { startTestNats } from '../../test/support/infra.js';
import { TlibClient } from '../../tlib-api/client/index.js';
import { BenchResponder } from './responder.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    desktops: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
  },
});
const desktops = Number(values.desktops);
const rate = Number(values.rate);
const seconds = Number(values.seconds);

/** Each desktop needs a descriptor here and one in the gateway: raise the soft limit if it is low. */
function ensureOpenFiles(needed: number): void {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const match = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
  const soft = match?.[1] === 'unlimited' ? Infinity : Number(match?.[1] ?? 0);
  if (soft >= needed || process.env.BENCH_GATEWAY_REEXEC) return;
  const hard = match?.[2] ?? String(needed);
  process.stderr.write(`raising the open-files limit from ${soft} to ${hard}\n`);
  const quoted = [process.execPath, ...process.execArgv, ...process.argv.slice(1)].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const run = spawnSync('bash', ['-c', `ulimit -n ${hard} && exec ${quoted}`], { stdio: 'inherit', env: { ...process.env, BENCH_GATEWAY_REEXEC: '1' } });
  process.exit(run.status ?? 1);
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  ensureOpenFiles(desktops + 1000);
  const nats = await startTestNats();
  const work = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-gateway-'));
  let gateway: ChildProcess | undefined;
  const clients: TlibClient[] = [];
  try {
    const nc = await connect({ servers: nats.url });
    const base = loadConfigFile(path.join(ROOT, 'config/local.yaml'));
    const port = await freePort();
    const cluster = structuredClone(base.cluster);
    cluster.spec.gateway.listen = `127.0.0.1:${port}`;
    cluster.spec.nats = { ...cluster.spec.nats, url: nats.url };
    const configFile = path.join(work, 'bench.yaml');
    writeFileSync(configFile, stringify(cluster));
    const signaling = new BenchResponder(nc, cluster.spec.location);

    // The gateway alone in its own process, as a pod runs it, so its RSS is its own.
    gateway = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'bin/tlib-gateway.ts')], {
      env: { ...process.env, HUDDLE_CONFIG: configFile, HUDDLE_MUSIC_ROOT: path.join(ROOT, 'config'), HUDDLE_METRICS_LISTEN: `127.0.0.1:${await freePort()}`, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await waitForTcp('127.0.0.1', port, 30_000);
    const pid = gateway.pid!;
    const rssIdle = rssBytes(pid);
    const url = `ws://127.0.0.1:${port}/tlib`;

    /** [send time relative to the start of publishing, latency] per delivered event. */
    const received: [number, number][] = [];
    let publishStart = 0;
    const connectStart = performance.now();
    for (let i = 0; i < desktops; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(200, desktops - i) }, async (_, j) => {
          const client = await TlibClient.connect({ url, token: 'supervisor-secret', reconnect: false, requestTimeoutMs: 30_000 });
          client.on('event', (e) => {
            const sent = e.UserData?.sent;
            if (e.event === 'EventUserEvent' && typeof sent === 'number') {
              const now = performance.timeOrigin + performance.now();
              received.push([sent - publishStart, now - sent]);
            }
          });
          await client.registerAddress({ thisDN: String(100_000 + i + j) });
          return client;
        }),
      );
      clients.push(...batch);
    }
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const rssConnected = rssBytes(pid);
    process.stdout.write(`${desktops} desktops connected and registered in ${connectSeconds.toFixed(1)} s\n`);

    // Steady publishing: rate/100 events every 10 ms, bounded by the run length.
    const total = rate * seconds;
    let published = 0;
    const started = performance.now();
    publishStart = performance.timeOrigin + started;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.round(((performance.now() - started) / 1000) * rate));
        for (; published < due; published++) {
          const dn = String(100_000 + Math.floor(Math.random() * desktops));
          signaling.publish(dn, { event: 'EventUserEvent', ThisDN: dn, UserData: { sent: performance.timeOrigin + performance.now() } });
        }
        if (published >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    const deadline = Date.now() + 15_000;
    while (received.length < published && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const rssLoaded = rssBytes(pid);

    const sorted = received.map(([, latency]) => latency).sort((a, b) => a - b);
    const windows: string[] = [];
    for (let from = 0; from < seconds; from += 5) {
      const inWindow = received.filter(([at]) => at >= from * 1000 && at < (from + 5) * 1000).map(([, l]) => l).sort((a, b) => a - b);
      windows.push(`${from}-${from + 5} s ${percentile(inWindow, 50).toFixed(1)}/${percentile(inWindow, 99).toFixed(1)}`);
    }
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    process.stdout.write(
      [
        `events: ${published} published at ${rate}/s for ${seconds} s, ${received.length} delivered (${published - received.length} missing)`,
        `delivery latency: p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(2)} ms`,
        `p50/p99 ms by send time: ${windows.join(', ')}`,
        `gateway RSS: idle ${mb(rssIdle)} MiB, ${desktops} registered ${mb(rssConnected)} MiB, after the events ${mb(rssLoaded)} MiB`,
        `gateway RSS per connection: ${((rssConnected - rssIdle) / desktops / 1024).toFixed(1)} KiB (registered, idle), ${((rssLoaded - rssIdle) / desktops / 1024).toFixed(1)} KiB (after the events)`,
        `machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
      ].join('\n') + '\n',
    );
    await signaling.drain();
    await nc.close();
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway!.once('exit', r));
      gateway.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (gateway.exitCode === null) gateway.kill('SIGKILL');
    }
    await nats.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
