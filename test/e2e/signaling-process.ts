/**
 * Signaling as a child process of a test (bin/signaling.ts under tsx, as a pod runs it), on a
 * Site started with `signaling: false`: a test can SIGKILL, SIGSTOP and restart it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../common/supervisor/ports.js';
import type { Site } from './site.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export class SignalingProcess {
  output = '';
  private child: ChildProcess;
  private exited: Promise<number | null>;

  private constructor(
    private readonly site: Site,
    readonly pod: string,
    readonly metricsPort: number,
    private readonly env: Record<string, string> = {},
  ) {
    this.child = this.spawn();
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  /** Starts signaling as pod `pod` (with `env` added, e.g. a replica behind the SIP edge: signaling/edge.ts) and waits until it is ready. */
  static async start(site: Site, pod: string, env: Record<string, string> = {}): Promise<SignalingProcess> {
    const p = new SignalingProcess(site, pod, await freePort(), env);
    await p.ready();
    return p;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}/metrics`;
  }

  private spawn(): ChildProcess {
    const nats = this.site.nats.client('signaling');
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'bin/signaling.ts')], {
      env: {
        ...process.env,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
        HUDDLE_NATS_URL: this.site.nats.url,
        HUDDLE_NATS_USER: nats.user,
        HUDDLE_NATS_PASSWORD: nats.password,
        HUDDLE_CLUSTER: this.site.config.cluster.metadata.name,
        HUDDLE_CONFIG_BUCKET: this.site.configBucket,
        HUDDLE_RTPENGINE: this.site.rtpengineNg,
        HUDDLE_METRICS_LISTEN: `127.0.0.1:${this.metricsPort}`,
        HUDDLE_MUSIC_ROOT: this.site.config.musicRoot,
        POD_NAME: this.pod,
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    return child;
  }

  /** Waits for /readyz. */
  async ready(timeoutMs = 40_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ready = await fetch(`http://127.0.0.1:${this.metricsPort}/readyz`).then(
        (r) => r.text(),
        () => '',
      );
      if (ready === 'ready\n') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.pod} not ready within ${timeoutMs} ms:\n${this.output.slice(-4000)}`);
  }

  /** One sample of this process's /metrics (0 when absent). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(this.metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  /** Every sample of a metric in this process's /metrics, as its lines. */
  async metricLines(name: string): Promise<string[]> {
    const text = await (await fetch(this.metricsUrl)).text();
    return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGKILL, and the process is gone. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** A new process of the same pod (as a container restart), ready. */
  async restart(): Promise<void> {
    this.child = this.spawn();
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.ready();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
