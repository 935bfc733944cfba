/**
 * media-controller as its own process (bin/media-controller.ts, as a pod runs it), so that a test
 * can SIGKILL it mid-call and start it again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../common/supervisor/ports.js';
import type { TestNatsBus } from '../support/infra.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface MediaProcessOptions {
  nats: TestNatsBus;
  cluster: string;
  configBucket: string;
  rtpengine: string;
  musicRoot: string;
  /** The instance name (POD_NAME): a restarted pod keeps it. */
  podName: string;
}

export class MediaControllerProcess {
  private output = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly metricsPort: number,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', resolve));
  }

  /** Starts the process and resolves once its /readyz says ready. */
  static async start(o: MediaProcessOptions): Promise<MediaControllerProcess> {
    const metricsPort = await freePort();
    const client = o.nats.client('media-controller');
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'bin/media-controller.ts')], {
      env: {
        ...process.env,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
        HUDDLE_NATS_URL: o.nats.url,
        ...(client.user !== undefined ? { HUDDLE_NATS_USER: client.user } : {}),
        ...(client.password !== undefined ? { HUDDLE_NATS_PASSWORD: client.password } : {}),
        HUDDLE_CLUSTER: o.cluster,
        HUDDLE_CONFIG_BUCKET: o.configBucket,
        HUDDLE_RTPENGINE: o.rtpengine,
        HUDDLE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        HUDDLE_MUSIC_ROOT: o.musicRoot,
        HUDDLE_MEDIA_BRIDGE_HOST: '127.0.0.1',
        POD_NAME: o.podName,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const mc = new MediaControllerProcess(child, metricsPort);
    const deadline = Date.now() + 40_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (r) => r.text(),
        () => '',
      );
      if (ready === 'ready\n') return mc;
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`media-controller did not become ready: ${mc.output.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** One gauge of the process's /metrics (e.g. huddle_media_bridges), summed over its samples. */
  async gauge(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** SIGKILL, as a crash or an OOM kill: no goodbye to anyone. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process is frozen (a paused container, a node under memory pressure). */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
