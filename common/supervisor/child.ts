/**
 * Supervised child processes (nats-server, rtpengine): started, watched, restarted with backoff
 * when they die unexpectedly, and always stopped with the parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

export class MissingBinaryError extends Error {
  constructor(
    readonly binary: string,
    readonly debianPackage: string,
  ) {
    super(`${binary} not found on PATH: install the Debian package "${debianPackage}" (sudo apt-get install -y ${debianPackage}, or run: npm run setup)`);
    this.name = 'MissingBinaryError';
  }
}

/** Finds an executable on PATH (and in /usr/sbin, where Debian puts nats-server). */
export function findBinary(binary: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  throw new MissingBinaryError(binary, debianPackage);
}

const live = new Set<ChildProcess>();
const setpriv = (() => {
  try {
    return findBinary('setpriv', 'util-linux');
  } catch {
    return undefined;
  }
})();
let exitHookInstalled = false;

/** Children must not outlive us, whichever way the process ends. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export interface SupervisedOptions {
  name: string;
  binary: string;
  args: string[];
  /** Where the pid file goes, so a later start can clean up after a crash of ours. */
  stateDir: string;
  log: Logger;
  /** Resolves when the child is ready to serve; rejects or times out otherwise. */
  ready: () => Promise<void>;
  readyTimeoutMs?: number;
  restart?: boolean;
  /** Environment of the child (default: ours). */
  env?: NodeJS.ProcessEnv;
  /** Called with the new pid each time a restarted child is ready again. */
  onRestarted?: (pid: number | undefined) => void;
}

export class SupervisedProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private readonly pidFile: string;
  private lastStderr: string[] = [];

  constructor(private readonly opts: SupervisedOptions) {
    this.pidFile = path.join(opts.stateDir, `${opts.name}.pid`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    installExitHook();
    mkdirSync(this.opts.stateDir, { recursive: true });
    killStale(this.pidFile, this.opts.log);
    await this.spawnOnce();
  }

  private async spawnOnce(): Promise<void> {
    const { name, binary, args, log } = this.opts;
    // Own process group: a Ctrl-C to the terminal's group reaches us only, and we stop children in
    // order. setpriv's parent-death signal ends the child even if we are killed without a chance
    // to clean up.
    const [command, argv] = setpriv ? [setpriv, ['--pdeathsig', 'TERM', '--', binary, ...args]] : [binary, args];
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(this.opts.env ? { env: this.opts.env } : {}) });
    this.child = child;
    live.add(child);
    if (child.pid) writeFileSync(this.pidFile, String(child.pid));
    this.lastStderr = [];
    const capture = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        this.lastStderr.push(line);
        if (this.lastStderr.length > 20) this.lastStderr.shift();
        log.debug({ child: name }, line);
      }
    };
    child.stdout?.on('data', capture);
    child.stderr?.on('data', capture);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        killGroup(child.pid);
        reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready: ${this.lastStderr.slice(-5).join(' | ')}`));
      });
      child.once('error', (err) => reject(new Error(`${name} could not start: ${err.message}`)));
    });
    exited.catch(() => undefined);
    const timeoutMs = this.opts.readyTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name} not ready within ${timeoutMs} ms: ${this.lastStderr.slice(-5).join(' | ')}`)), timeoutMs);
    });
    try {
      await Promise.race([this.opts.ready(), exited, timeout]);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    } finally {
      clearTimeout(timer);
    }
    log.info({ child: name, pid: child.pid }, 'child process ready');
    child.once('exit', (code, signal) => {
      live.delete(child);
      killGroup(child.pid);
      if (this.stopping || this.opts.restart === false) return;
      log.error({ child: name, code, signal }, 'child process died; restarting');
      this.restartLater();
    });
  }

  /** Starts the child again after a growing delay, and again if that start fails. */
  private restartLater(): void {
    const { name, log } = this.opts;
    const delay = Math.min(10_000, 250 * 2 ** this.restarts++);
    setTimeout(() => {
      if (this.stopping) return;
      this.spawnOnce()
        .then(() => this.opts.onRestarted?.(this.child?.pid))
        .catch((err: Error) => {
          log.error({ child: name, err: err.message, delay }, 'restart failed; trying again');
          this.restartLater();
        });
    }, delay).unref();
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      rmSync(this.pidFile, { force: true });
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(timer);
        live.delete(child);
        killGroup(child.pid);
        resolve();
      });
      child.kill('SIGTERM');
    });
    rmSync(this.pidFile, { force: true });
  }
}

/**
 * A child that forks workers (kamailio) leaves them running, holding its sockets, when it is
 * SIGKILLed; they share its process group (spawned detached), which goes with it.
 */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    return;
  }
}

function killStale(pidFile: string, log: Logger): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(path.basename(pidFile, '.pid').split('-')[0] ?? '')) return;
    process.kill(pid, 'SIGKILL');
    killGroup(pid);
    log.warn({ pid, pidFile }, 'killed a child left behind by an earlier run');
  } catch {
    return;
  } finally {
    rmSync(pidFile, { force: true });
  }
}
