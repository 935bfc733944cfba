/**
 * Process facts for benchmarks, read from /proc: resident memory and CPU of a process tree, the
 * machine's load (this machine is shared, so every figure is printed with it), and stopping a child.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';

const CLK_TCK = 100;
const PAGE = 4096;

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  rssBytes: number;
  name: string;
}

function readAll(): ProcStat[] {
  const all: ProcStat[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      all.push({ pid: Number(d), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rssBytes: Number(f[21]) * PAGE, name });
    } catch {
      continue;
    }
  }
  return all;
}

/** The process `root` and all its descendants. */
export function processTree(root: number): ProcStat[] {
  const all = readAll();
  const byParent = new Map<number, ProcStat[]>();
  for (const p of all) {
    const siblings = byParent.get(p.ppid);
    if (siblings) siblings.push(p);
    else byParent.set(p.ppid, [p]);
  }
  const out: ProcStat[] = [];
  const stack = all.filter((p) => p.pid === root);
  for (let i = 0; stack.length > 0 && i < 10_000; i++) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(byParent.get(p.pid) ?? []));
  }
  return out;
}

/** Resident memory in bytes of the processes of `root`'s tree whose name passes `which`. */
export function treeRss(root: number, which: (name: string) => boolean = () => true): number {
  return processTree(root)
    .filter((p) => which(p.name))
    .reduce((n, p) => n + p.rssBytes, 0);
}

/**
 * CPU (user+system) of `root`'s tree, in µs: /proc/PID/stat of every process in it, each of which
 * counts all its threads. Every bench reads a server's CPU this way, ours and the peer's alike.
 */
export function treeCpuUs(root: number): number {
  return (processTree(root).reduce((n, p) => n + p.ticks, 0) * 1_000_000) / CLK_TCK;
}

/** CPU (user+system) of `root`'s tree in µs by process name (e.g. node, nats-server, rtpengine, kamailio). */
export function treeCpuUsByName(root: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of processTree(root)) out.set(p.name, (out.get(p.name) ?? 0) + (p.ticks * 1_000_000) / CLK_TCK);
  return out;
}

/** CPU µs per second that `cpuUs` (e.g. a treeCpuUs) grows by with no load, over `ms`: the idle use a bench subtracts. */
export async function idleCpuUsPerS(cpuUs: () => number, ms = 3000): Promise<number> {
  const before = cpuUs();
  await sleep(ms);
  return ((cpuUs() - before) * 1000) / ms;
}

export function loadLine(): string {
  const [l1, l5, l15] = os.loadavg().map((l) => l.toFixed(2));
  return `load average ${l1} ${l5} ${l15} on ${os.cpus().length} cores`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Asks a child to stop, and kills it if it has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, ask: () => void = () => child.kill('SIGTERM'), graceMs = 8000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  ask();
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `everyMs` until it returns true; throws `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** `bin args` run by taskset on one CPU, as [command, args] for spawn. */
export function onCpu(cpu: number, bin: string, args: string[]): [string, string[]] {
  return [findBinary('taskset', 'util-linux'), ['-c', String(cpu), bin, ...args]];
}

/** Percentile (0..100) of a list, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * A bench program compiled by tsc (node dist/...), as the image runs our code, not through tsx,
 * whose transform wraps each named closure as it is created (~30% per call in bench:sip-stack).
 * Built under dist/<name> (git-ignored); returns the compiled path of `source` (relative to the repo).
 */
export function compileBenchProgram(root: string, name: string, source: string): string {
  const outDir = path.join(root, 'dist', name);
  mkdirSync(outDir, { recursive: true });
  const project = path.join(outDir, 'tsconfig.json');
  writeFileSync(project, JSON.stringify({ extends: '../../tsconfig.build.json', compilerOptions: { outDir: '.', rootDir: '../..', sourceMap: false }, include: [`../../${source}`] }));
  execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', project], { stdio: 'inherit' });
  return path.join(outDir, source.replace(/\.ts$/, '.js'));
}

/** A child speaking the bench IPC: it sends one message when ready, answers {cmd:'stats'} with its figures, exits on {cmd:'stop'}. */
export interface StatsChild<S> {
  pid: number;
  stats(): Promise<S>;
  stop(): Promise<void>;
}

/** Spawns `[command, args]` (the program `name`) with an IPC channel; resolves once it says it is ready. */
export async function startStatsChild<S>(name: string, [command, args]: [string, string[]]): Promise<StatsChild<S>> {
  const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (c) => reject(new Error(`${name} exited ${c}`)));
  });
  return {
    pid: child.pid!,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as S));
        child.send({ cmd: 'stats' });
      }),
    stop: () => stopChild(child, () => child.send({ cmd: 'stop' }), 5000),
  };
}
