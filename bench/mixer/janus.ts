/**
 * Janus AudioBridge (Debian `janus`) as the reference mixer for bench/mixer: started pinned to a
 * core with a generated configuration (HTTP transport and AudioBridge only), rooms created over
 * the Janus HTTP API, each participant joined as a plain-RTP PCMU participant.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange, waitForTcp } from '../../common/supervisor/ports.js';
import { onCpu } from '../common/proc.js';

const LIBDIR = '/usr/lib/x86_64-linux-gnu/janus';

interface JanusReply {
  janus: string;
  data?: { id: number };
  error?: { code: number; reason: string };
  sender?: number;
  plugindata?: { data: Record<string, unknown> };
}

export class JanusBridge {
  private session = 0;
  private polling = true;
  private readonly events = new Map<number, Record<string, unknown>>();
  private poller: Promise<void> | undefined;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly base: string,
    private readonly dir: string,
  ) {}

  get pid(): number {
    return this.proc.pid!;
  }

  /** Starts janus on `core` with a port range for `participants` plain-RTP participants. */
  static async start(core: number, participants: number): Promise<JanusBridge> {
    const janus = findBinary('janus', 'janus');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-janus-'));
    const httpPort = await freePort();
    const range = await freePortRange(Math.max(100, participants * 2 + 20));
    const disabledPlugins = ['duktape', 'echotest', 'lua', 'nosip', 'recordplay', 'sip', 'streaming', 'textroom', 'videocall', 'videoroom', 'voicemail']
      .map((p) => `libjanus_${p}.so`)
      .join(',');
    writeFileSync(
      path.join(dir, 'janus.jcfg'),
      `general: {\n configs_folder = "${dir}"\n plugins_folder = "${LIBDIR}/plugins"\n transports_folder = "${LIBDIR}/transports"\n events_folder = "${LIBDIR}/events"\n loggers_folder = "${LIBDIR}/loggers"\n debug_level = 2\n session_timeout = 0\n}\n` +
        `media: {}\nnat: { ice_ignore_list = "vmnet" }\nplugins: { disable = "${disabledPlugins}" }\n` +
        `transports: { disable = "libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_rabbitmq.so" }\nevents: { broadcast = false }\nloggers: { disable = "libjanus_jsonlog.so" }\n`,
    );
    writeFileSync(path.join(dir, 'janus.plugin.audiobridge.jcfg'), `general: {\n rtp_port_range = "${range.min}-${range.max}"\n local_ip = "127.0.0.1"\n}\n`);
    writeFileSync(
      path.join(dir, 'janus.transport.http.jcfg'),
      `general: {\n json = "plain"\n base_path = "/janus"\n http = true\n port = ${httpPort}\n ip = "127.0.0.1"\n https = false\n}\nadmin: { admin_http = false admin_https = false }\n`,
    );
    const log = openSync(path.join(dir, 'janus.log'), 'w');
    const proc = spawn(...onCpu(core, janus, ['-F', dir, '-C', path.join(dir, 'janus.jcfg'), '-i', '127.0.0.1', '-o']), { stdio: ['ignore', log, log] });
    const bridge = new JanusBridge(proc, `http://127.0.0.1:${httpPort}/janus`, dir);
    try {
      await waitForTcp('127.0.0.1', httpPort, 15_000);
      const created = await bridge.post('', { janus: 'create' });
      bridge.session = created.data!.id;
      bridge.poller = bridge.poll();
    } catch (err) {
      await bridge.stop();
      throw new Error(`janus did not start: ${(err as Error).message}; log: ${readFileSync(path.join(dir, 'janus.log'), 'utf8').slice(-800)}`);
    }
    return bridge;
  }

  private async post(suffix: string, body: Record<string, unknown>): Promise<JanusReply> {
    const res = await fetch(`${this.base}${suffix}`, { method: 'POST', body: JSON.stringify({ ...body, transaction: Math.random().toString(36).slice(2) }) });
    const reply = (await res.json()) as JanusReply;
    if (reply.janus === 'error') throw new Error(`janus: ${reply.error?.reason ?? 'error'}`);
    return reply;
  }

  /** Long-polls the session for asynchronous plugin events (join results). */
  private async poll(): Promise<void> {
    while (this.polling) {
      try {
        const res = await fetch(`${this.base}/${this.session}?maxev=50`);
        const body = (await res.json()) as JanusReply | JanusReply[];
        for (const ev of Array.isArray(body) ? body : [body]) {
          // Only a handle's own join result (it carries rtp, or an error); notifications about others are not.
          const data = ev.plugindata?.data;
          if (ev.sender && data && (data.rtp !== undefined || data.error_code !== undefined)) this.events.set(ev.sender, data);
        }
      } catch {
        if (!this.polling) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private async attach(): Promise<number> {
    return (await this.post(`/${this.session}`, { janus: 'attach', plugin: 'janus.plugin.audiobridge' })).data!.id;
  }

  private async waitEvent(handle: number, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ev = this.events.get(handle);
      if (ev) return ev;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no janus event for handle ${handle} within ${timeoutMs} ms`);
  }

  /** A room with one plain-RTP PCMU participant per peer; returns the port Janus receives each peer's RTP on. */
  async conference(room: number, peers: number[]): Promise<number[]> {
    const control = await this.attach();
    const created = await this.post(`/${this.session}/${control}`, {
      janus: 'message',
      body: { request: 'create', room, permanent: false, sampling_rate: 8000, allow_rtp_participants: true, audiolevel_event: false, record: false },
    });
    const data = created.plugindata?.data;
    if (data?.audiobridge !== 'created') throw new Error(`janus create room ${room}: ${JSON.stringify(data)}`);
    const ports: number[] = [];
    for (const peer of peers) {
      const handle = await this.attach();
      await this.post(`/${this.session}/${handle}`, {
        janus: 'message',
        body: { request: 'join', room, display: `p${peer}`, codec: 'pcmu', rtp: { ip: '127.0.0.1', port: peer, payload_type: 0 } },
      });
      const ev = await this.waitEvent(handle, 10_000);
      const rtp = ev.rtp as { port?: number } | undefined;
      if (ev.audiobridge !== 'joined' || !rtp?.port) throw new Error(`janus join room ${room}: ${JSON.stringify(ev)}`);
      ports.push(rtp.port);
    }
    return ports;
  }

  /** CPU time (user+system) of the janus process so far, in ms. */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  }

  async stop(): Promise<void> {
    this.polling = false;
    const proc = this.proc;
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    }
    await Promise.race([this.poller, new Promise((r) => setTimeout(r, 500))]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
