/**
 * Our SIP Server as `npm start` runs it (bin/start.ts: embedded nats-server and rtpengine, then
 * media-controller, signaling and gateway in one Node process), in a child process with a
 * generated configuration on free loopback ports, so its CPU and memory are its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { processTree, stopChild } from './proc.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const SUPERVISOR_TOKEN = 'bench-supervisor';

export interface BenchDN {
  number: string;
  type: 'Extension' | 'Trunk';
  options?: Record<string, unknown>;
}

export interface HuddleOptions {
  dns: BenchDN[];
  /** rtpengine media ports (each leg takes 2 on each side). */
  mediaPorts: number;
  logLevel?: string;
  /** One process per component, as pods run (bench/common/split-site.ts), instead of `npm start`'s one. */
  split?: boolean;
}

export interface Huddle {
  sipPort: number;
  gatewayUrl: string;
  metricsUrl: string;
  /** rtpengine ng address (host:port). */
  ng: string;
  pid: number;
  /** Last lines the server wrote (for error reports). */
  tail(): string;
  stop(): Promise<void>;
}

export async function startHuddle(opts: HuddleOptions): Promise<Huddle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-bench-'));
  const sipPort = await freePort();
  const gatewayPort = await freePort();
  const metricsPort = await freePort();
  const media = await freePortRange(opts.mediaPorts);
  const cluster = {
    apiVersion: 'sip.huddle.dev/v1alpha1',
    kind: 'SipCluster',
    metadata: { name: 'bench' },
    spec: {
      location: 'Bench',
      // The load generators all send from loopback: exempt from the per-source rate limit, as trunks are.
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: sipPort }], rateLimit: { exemptSources: ['127.0.0.0/8'] } },
      options: { 'sip-enable-call-info': true, 'sip-enable-call-info-extended': true, 'music-listen-disconnect': 'music/on_hold', 'default-music': 'music/on_hold' },
      media: { portMin: media.min, portMax: media.max, rtpengineThreads: 1 },
      // One bench client stands in for every desktop: the per-client limits are those of all of them.
      gateway: {
        listen: `127.0.0.1:${gatewayPort}`,
        tokens: [{ name: 'supervisor', token: SUPERVISOR_TOKEN, dns: ['*'] }],
        clientLimits: { maxInFlight: 10_000, requestsPerSecond: 100_000, burst: 100_000 },
      },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      musicRoot: path.join(ROOT, 'config'),
      dataDir: dir,
    },
  };
  const docs = [cluster, ...opts.dns.map((d) => ({ apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipDN', metadata: { name: `bench-${d.number}` }, spec: { cluster: 'bench', number: d.number, type: d.type, options: d.options ?? {} } }))];
  const file = path.join(dir, 'bench.yaml');
  writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));

  const entry = opts.split ? 'bench/common/split-site.ts' : 'bin/start.ts';
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry), '--config', file], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: opts.logLevel ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const ng = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`our server did not start within 60 s:\n${out}`)), 60_000);
    const onData = () => {
      const m = /huddle SIP Server[\s\S]*rtpengine\s+ng (\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(m[1]!.replace(/,$/, ''));
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`our server exited (${code}) while starting:\n${out}`));
    });
  });
  return {
    sipPort,
    gatewayUrl: `ws://127.0.0.1:${gatewayPort}/tlib`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    ng,
    pid: child.pid!,
    tail: () => out,
    stop: async () => {
      // If the launcher has to be killed, its nats-server and rtpengine must not outlive it.
      const tree = processTree(child.pid!).filter((p) => p.pid !== child.pid);
      await stopChild(child, () => child.kill('SIGTERM'), 10_000);
      for (const p of tree) {
        try {
          if (readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim() === p.name) process.kill(p.pid, 'SIGKILL');
        } catch {
          continue;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One sample of a gauge/counter from the Prometheus text at `url` (sum over label sets). */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      found = true;
    }
  }
  return found ? sum : NaN;
}
