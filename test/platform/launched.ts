/**
 * `npm start` run as a person runs it, for tests: a launcher process with its real children, on a
 * copy of a shipped config moved to free ports, and the site its printed endpoints describe.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { openDesktop, type AgentSite, type Desktop } from '../e2e/site.js';

const root = path.resolve(import.meta.dirname, '../..');

export interface Launched {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm start -- --config <configFile>` with its working directory in `dir`. */
export function launch(configFile: string, dir: string): Launched {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'bin/start.ts'), '--config', configFile], {
    cwd: dir,
    // HUDDLE_TEST_LAUNCHER_LOG_LEVEL=info shows the call log of a failing run (showingOutput).
    env: { ...process.env, LOG_LEVEL: process.env.HUDDLE_TEST_LAUNCHER_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Runs `body`; a failure carries the launcher's output, the only view a CI log gives of what its children did. */
export async function showingOutput<T>(run: Pick<Launched, 'output'>, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof Error) err.message += `\n--- launcher output ---\n${run.output()}`;
    throw err;
  }
}

/** The listen ports and media range a config file names, to be moved to free ones. */
export interface ShippedConfig {
  file: string;
  sip: number;
  gateway: number;
  metrics: number;
  portMin: number;
  portMax: number;
}

export const LOCAL: ShippedConfig = { file: 'config/local.yaml', sip: 5060, gateway: 7000, metrics: 9464, portMin: 40000, portMax: 40999 };
export const HA: ShippedConfig = { ...LOCAL, file: 'config/ha.yaml' };

/** Whether a process with this pid is still running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A copy of a shipped config on free ports (SIP on `sip` if given, `mediaPorts` media ports), its state in `dir`. */
export async function configOnFreePorts(base: ShippedConfig, dir: string, o: { sip?: number; mediaPorts?: number; edit?: (text: string) => string } = {}): Promise<string> {
  const sip = o.sip ?? (await freePort());
  const [gateway, metrics] = [await freePort(), await freePort()];
  const media = await freePortRange(o.mediaPorts ?? 100);
  const text = readFileSync(path.join(root, base.file), 'utf8')
    .replaceAll(`port: ${base.sip} }`, `port: ${sip} }`)
    .replace(`listen: 127.0.0.1:${base.gateway}`, `listen: 127.0.0.1:${gateway}`)
    .replace(`listen: 127.0.0.1:${base.metrics}`, `listen: 127.0.0.1:${metrics}`)
    .replace(`portMin: ${base.portMin}`, `portMin: ${media.min}`)
    .replace(`portMax: ${base.portMax}`, `portMax: ${media.max}`)
    .replace('  options:\n    sip-enable-call-info', `  musicRoot: ${path.join(root, 'config')}\n  dataDir: ${path.join(dir, `data-${sip}`)}\n  options:\n    sip-enable-call-info`);
  const file = path.join(dir, `config-${sip}.yaml`);
  writeFileSync(file, (o.edit ?? ((t) => t))(text));
  return file;
}

/** The `  <name>  pid <PID>  metrics <URL>` lines a launcher printed, by name. */
export function processLines(output: string): Map<string, { pid: number; metrics: string }> {
  const lines = new Map<string, { pid: number; metrics: string }>();
  for (const m of output.matchAll(/^ {2}(\S+) {2}pid (\d+) {2}metrics (http:\/\/\S+)$/gm)) lines.set(m[1]!, { pid: Number(m[2]), metrics: m[3]! });
  return lines;
}

/** One metric of a process's /metrics, summed over its samples. */
export async function scrape(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  return sum;
}

/** The site a launcher runs, as its printed endpoints show it. */
export class LaunchedSite implements AgentSite {
  constructor(
    readonly sipPort: number,
    readonly gatewayUrl: string,
    private readonly token: string,
  ) {}

  /** `token` may register every DN (the shipped configs' supervisor unless given). */
  static from(output: string, token = 'supervisor-secret'): LaunchedSite {
    const sip = /^ {2}SIP +udp 127\.0\.0\.1:(\d+)/m.exec(output);
    const gateway = /^ {2}T-Library +(ws:\/\/\S+)$/m.exec(output);
    if (!sip || !gateway) throw new Error(`no SIP or T-Library endpoint in:\n${output}`);
    return new LaunchedSite(Number(sip[1]), gateway[1]!, token);
  }

  desktop(dn: string): Promise<Desktop> {
    return openDesktop(this.gatewayUrl, this.token, dn);
  }
}
