/**
 * The SIP edge (common/edge/kamailio-config.ts) with a real kamailio, two replicas and a phone,
 * all of them our SIP stack on loopback: which replica gets which request.
 */
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/process/logger.js';
import { newSourceToken } from '../../common/edge/kamailio-config.js';
import { startKamailioEdge, type EmbeddedEdge } from '../../common/supervisor/kamailio.js';
import { freePort } from '../../common/supervisor/ports.js';
import { SipPhone } from '../support/sip-phone.js';
import { TonePhone } from '../support/tone-phone.js';
import { WsPhone } from '../support/ws-phone.js';
import { createTestCa } from '../support/test-ca.js';
import { createSipStack, type Dialog, type Endpoint, type SipRequest, type SipStack, type Transport, type TransportHandler } from '../../signaling/sip/index.js';

const log = createLogger('edge-test', 'silent');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-edge-'));
const timers = { t1Ms: 100, t2Ms: 400, t4Ms: 500 };

/** A signaling replica stand-in: answers what the edge sends it and notes every request it receives. */
class Replica {
  stopping = false;
  /** Refuses new calls 503 as admission control does, while answering the probe 200. */
  overloaded = false;
  readonly invites = new Set<string>();
  /** Where each INVITE came from before the edge, by Call-ID. */
  readonly origins = new Map<string, Endpoint>();
  /** "<method> <Call-ID>" of each request that reached this replica's socket, answered or not. */
  readonly received: string[] = [];
  /** The dialogs of the INVITEs it answered, by Call-ID. */
  readonly dialogs = new Map<string, Dialog>();
  /** The last request of each Call-ID that reached it, as received. */
  readonly requests = new Map<string, SipRequest>();

  private constructor(
    readonly name: string,
    readonly stack: SipStack,
  ) {}

  static async start(name: string, port: number, edge: { public: number; internal: number }): Promise<Replica> {
    const received: string[] = [];
    const stack = await createSipStack({
      listen: [{ transport: 'udp', host: '127.0.0.1', port }],
      contactAddress: { host: '127.0.0.1', port: edge.public },
      outboundProxy: { protocol: 'udp', host: '127.0.0.1', port: edge.internal },
      edgeSourceToken: sourceToken,
      timers,
      wrapTransport: (t) => recording(t, received),
    });
    const replica = new Replica(name, stack);
    replica.received.push(...received.splice(0));
    stack.onRequest((req) => {
      if (replica.stopping && (req.method === 'OPTIONS' || req.method === 'INVITE')) {
        req.respond(503, { headers: { 'Retry-After': '1' } });
        return;
      }
      if (replica.overloaded && req.method === 'INVITE') {
        req.respond(503, { reason: 'Overloaded', headers: { 'Retry-After': '2' } });
        return;
      }
      replica.origins.set(req.message.callId, req.origin);
      replica.requests.set(req.message.callId, req.message);
      if (req.method !== 'INVITE') {
        // A registrar's 200 lists the bindings: SIP.js takes a REGISTER answered without them for a failure.
        req.respond(200, req.method === 'REGISTER' ? { headers: { Contact: req.message.getAll('contact') } } : {});
        return;
      }
      replica.invites.add(req.message.callId);
      replica.origins.set(req.message.callId, req.origin);
      const dialog = req.accept();
      replica.dialogs.set(req.message.callId, dialog);
      replica.watch(dialog);
    });
    // From now on the recorder writes straight into the replica's list.
    Object.defineProperty(replica, 'received', { value: received });
    return replica;
  }

  watch(dialog: Dialog): void {
    dialog.onRequest((r) => r.respond(200));
  }

  saw(method: string, callId: string): boolean {
    return this.received.includes(`${method} ${callId}`);
  }
}

/** Notes "<method> <Call-ID>" of each request a transport receives, then hands it on. */
function recording(t: Transport, log: string[]): Transport {
  const setHandler = t.setHandler.bind(t);
  t.setHandler = (handler: TransportHandler) =>
    setHandler({
      onMessage: (data, source, transport) => {
        const text = data.toString('latin1');
        const method = /^([A-Z]+) /.exec(text)?.[1];
        const callId = /^(?:Call-ID|i):\s*(\S+)/im.exec(text)?.[1];
        if (method && callId) log.push(`${method} ${callId}`);
        handler.onMessage(data, source, transport);
      },
      onFramingError: (...args) => handler.onFramingError(...args),
    });
  return t;
}

/** The edge's source token, as the launcher gives it to the edge and to every replica. */
const sourceToken = newSourceToken();
let edge: EmbeddedEdge;
let edgePort: number;
let replicas: [Replica, Replica];
let phone: SipStack;
const phoneDialogs: Dialog[] = [];

beforeAll(async () => {
  edgePort = await freePort();
  const internal = await freePort();
  const ports = [await freePort(), await freePort()];
  const sockets = { public: edgePort, internal };
  replicas = [await Replica.start('signaling-0', ports[0]!, sockets), await Replica.start('signaling-1', ports[1]!, sockets)];
  edge = await startKamailioEdge({
    sourceToken,
    internal: { host: '127.0.0.1', port: internal },
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: edgePort },
      { transport: 'tcp', host: '127.0.0.1', port: edgePort },
    ],
    replicas: replicas.map((r, i) => ({ name: r.name, host: '127.0.0.1', port: ports[i]! })),
    dataDir: tmp,
    log,
  });
  phone = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers });
  phone.onRequest((req) => {
    if (req.method === 'INVITE') phoneDialogs.push(req.accept());
    else req.respond(200);
  });
});

afterAll(async () => {
  await edge?.process.stop();
  await Promise.all([phone, ...(replicas ?? []).map((r) => r.stack)].map((s) => s?.close(0)));
  rmSync(tmp, { recursive: true, force: true });
});

/** A call from the phone through the edge; resolves with its dialog and the replica that took it. */
async function call(): Promise<{ dialog: Dialog; replica: Replica }> {
  const result = await phone.invite(`sip:7002@127.0.0.1:${edgePort}`).result;
  if (!result.ok) throw new Error(`INVITE through the edge failed: ${result.status} ${result.reason}`);
  const replica = replicas.find((r) => r.invites.has(result.dialog.callId));
  if (!replica) throw new Error('no replica saw the INVITE');
  return { dialog: result.dialog, replica };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the SIP edge (kamailio)', () => {
  it('spreads new calls over both replicas by Call-ID; each dialog is Record-Routed naming its replica and its in-dialog requests reach that replica', async () => {
    const calls: { dialog: Dialog; replica: Replica }[] = [];
    for (let i = 0; i < 16; i++) calls.push(await call());
    const perReplica = replicas.map((r) => calls.filter((c) => c.replica === r).length);
    expect(perReplica.every((n) => n > 0)).toBe(true);
    for (const { dialog, replica } of calls) {
      // The phone reaches the dialog through the edge: its route set names the edge and the replica.
      expect(dialog.routeSet.length).toBeGreaterThan(0);
      expect(dialog.routeSet[0]).toContain(`127.0.0.1:${edgePort}`);
      const port = replica.stack.addresses[0]!.port;
      expect(dialog.routeSet[0]).toContain(`hr=127.0.0.1:${port}`);
      expect(dialog.remoteTarget).toContain(`@127.0.0.1:${edgePort}`);
      expect((await dialog.request('OPTIONS')).status).toBe(200);
      expect((await dialog.bye()).status).toBe(200);
      expect(replica.saw('OPTIONS', dialog.callId)).toBe(true);
      await until(() => replica.saw('BYE', dialog.callId), 'the BYE at the replica of the dialog');
      const other = replicas.find((r) => r !== replica)!;
      expect(other.saw('BYE', dialog.callId)).toBe(false);
    }
  });

  it("tells the replica where a request came from (a trunk is known by its address), whatever the sender's own header says", async () => {
    const result = await phone.invite(`sip:7002@127.0.0.1:${edgePort}`, { headers: { 'X-Huddle-Source': 'udp 10.9.9.9 5090' } }).result;
    if (!result.ok) throw new Error(`INVITE failed: ${result.status}`);
    const replica = replicas.find((r) => r.invites.has(result.dialog.callId))!;
    expect(replica.origins.get(result.dialog.callId)).toEqual({ protocol: 'udp', host: '127.0.0.1', port: phone.addresses[0]!.port });
    expect((await result.dialog.bye()).status).toBe(200);
  });

  it("a request sent straight to a replica is not believed about its source: a forged header without the edge's token is ignored", async () => {
    const [replica] = replicas;
    for (const forged of ['udp 10.9.9.9 5090', 'udp 10.9.9.9 5090 not-the-token', `udp 10.9.9.9 5090 ${sourceToken}x`]) {
      const callId = `forged-${randomUUID()}`;
      const res = await phone.request('OPTIONS', `sip:7002@127.0.0.1:${replica.stack.addresses[0]!.port}`, { callId, headers: { 'X-Huddle-Source': forged } });
      expect(res.status).toBe(200);
      expect(replica.origins.get(callId)).toEqual({ protocol: 'udp', host: '127.0.0.1', port: phone.addresses[0]!.port });
    }
  });

  it('reaches a phone behind NAT over the TCP connection it registered on (Path), and in the dialog through its Contact alias', async () => {
    const natted = await createSipStack({ listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }], timers });
    // Behind NAT the Contact a phone sends names an address nobody outside can connect to.
    const contact = `sip:7009@127.0.0.1:${await freePort()};transport=tcp`;
    const answered: Dialog[] = [];
    natted.onRequest((req) => {
      if (req.method === 'INVITE') answered.push(req.accept({ contact }));
      else req.respond(200);
    });
    try {
      const reg = await natted.request('REGISTER', `sip:127.0.0.1:${edgePort};transport=tcp`, { headers: { Contact: `<${contact}>` } });
      expect(reg.status).toBe(200);
      const replica = replicas.find((r) => r.requests.get(reg.callId)?.method === 'REGISTER')!;
      const path = replica.requests.get(reg.callId)!.getAll('path');
      expect(path).toEqual([expect.stringMatching(/;lr;received=/)]);
      // The replica calls the registered contact through the Path, as the registrar has it do.
      const invite = await replica.stack.invite(contact, { route: path }).result;
      expect(invite.ok ? 200 : `${invite.status} ${invite.reason}`).toBe(200);
      if (!invite.ok) return;
      expect(answered).toHaveLength(1);
      // In the dialog the phone's Contact is unreachable too: the edge's alias in it leads to the connection.
      expect((await invite.dialog.request('OPTIONS')).status).toBe(200);
      expect((await invite.dialog.bye()).status).toBe(200);
      await until(() => answered[0]!.state === 'terminated', 'the BYE at the phone behind NAT');
    } finally {
      await natted.close(0);
    }
  });

  it("a replica's INVITE goes through the edge to the phone, and the phone's BYE comes back to that replica", async () => {
    for (const replica of replicas) {
      const before = phoneDialogs.length;
      const result = await replica.stack.invite(phone.contact('7001')).result;
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      replica.watch(result.dialog);
      await until(() => phoneDialogs.length > before, 'the phone side of the dialog');
      const phoneDialog = phoneDialogs[phoneDialogs.length - 1]!;
      expect(phoneDialog.routeSet[0]).toContain(`hr=127.0.0.1:${replica.stack.addresses[0]!.port}`);
      // The replica's own in-dialog requests go through the edge too (its route set), to the socket for replicas.
      expect(result.dialog.routeSet[0]).toContain(`127.0.0.1:${edge.internal.port}`);
      expect((await result.dialog.request('INFO')).status).toBe(200);
      expect((await phoneDialog.bye()).status).toBe(200);
      await until(() => replica.saw('BYE', result.dialog.callId), "the phone's BYE at the replica that called");
    }
  });

  it('an INVITE an overloaded replica refuses 503 is taken by the other, and the refusing replica stays in the set: its dialogs\' requests still reach it', async () => {
    let ongoing = await call();
    for (let i = 0; i < 16 && ongoing.replica !== replicas[0]; i++) ongoing = await call();
    const [loaded, other] = [ongoing.replica, replicas[1]];
    expect(loaded).toBe(replicas[0]);
    loaded.overloaded = true;
    try {
      for (let i = 0; i < 6; i++) expect((await call()).replica).toBe(other);
      // Marked dead on a 503, it would lose this INFO to the hash survivor.
      expect((await ongoing.dialog.request('INFO')).status).toBe(200);
      expect(loaded.saw('INFO', ongoing.dialog.callId)).toBe(true);
      expect(other.saw('INFO', ongoing.dialog.callId)).toBe(false);
    } finally {
      loaded.overloaded = false;
    }
  });

  it('a replica that answers the probe 503 (stopping) gets no new calls; an INVITE it refuses is taken by the other', async () => {
    const [stopping, other] = replicas;
    stopping.stopping = true;
    try {
      const started = Date.now();
      const first = await call();
      // Refused with 503 or already marked inactive: the call lands on the other replica at once.
      expect(first.replica).toBe(other);
      await new Promise((r) => setTimeout(r, 1500));
      const invitesBefore = stopping.invites.size;
      for (let i = 0; i < 10; i++) expect((await call()).replica).toBe(other);
      expect(stopping.invites.size).toBe(invitesBefore);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      stopping.stopping = false;
    }
    // Back in the set at its next probe.
    await new Promise((r) => setTimeout(r, 1500));
    const after: { dialog: Dialog; replica: Replica }[] = [];
    for (let i = 0; i < 16; i++) after.push(await call());
    expect(after.some((c) => c.replica === stopping)).toBe(true);
  });

  it('a SIGKILLed edge is restarted with none of its workers left behind, and routes the dialogs made through its predecessor', async () => {
    const before = await call();
    const killed = edge.process.pid!;
    process.kill(killed, 'SIGKILL');
    await until(() => edge.process.pid !== undefined && edge.process.pid !== killed, 'the restarted edge', 15_000);
    // Its workers shared its process group: none still runs (holding the sockets). Zombies waiting
    // for init to reap them hold nothing.
    const running = execFileSync('ps', ['-e', '-o', 'pgid=,stat='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([pgid, stat]) => Number(pgid) === killed && !stat?.startsWith('Z'));
    expect(running).toEqual([]);
    // The dialog's route names the edge's address, not the process: the new edge serves it.
    let options: number | undefined;
    for (let attempt = 0; attempt < 50 && options !== 200; attempt++) {
      options = (await before.dialog.request('OPTIONS')).status;
      if (options !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(options).toBe(200);
    expect((await before.dialog.bye()).status).toBe(200);
    expect(before.replica.saw('BYE', before.dialog.callId)).toBe(true);
    expect((await call()).dialog.callId).toBeTruthy();
  });

  it("a dead replica's dialogs all go to one survivor; new calls go to the survivors", async () => {
    // A set of three needs the list to name it: this test runs an edge of its own, on the same
    // internal socket (the first edge stops meanwhile) so that the first two replicas reach it.
    await edge.process.stop();
    const extraPort = await freePort();
    const port3 = await freePort();
    const third = await Replica.start('signaling-2', extraPort, { public: port3, internal: edge.internal.port });
    const edgeDir = mkdtempSync(path.join(tmp, 'three-'));
    const ports = [...replicas.map((r) => r.stack.addresses[0]!.port), extraPort];
    const all = [...replicas, third];
    const edge3 = await startKamailioEdge({
      listen: [{ transport: 'udp', host: '127.0.0.1', port: port3 }],
      internal: edge.internal,
      replicas: all.map((r, i) => ({ name: r.name, host: '127.0.0.1', port: ports[i]! })),
      sourceToken,
      dataDir: edgeDir,
      log,
    });
    try {
      const dialogs: { dialog: Dialog; replica: Replica }[] = [];
      for (let i = 0; i < 24; i++) {
        const result = await phone.invite(`sip:7002@127.0.0.1:${port3}`).result;
        if (!result.ok) throw new Error(`INVITE failed: ${result.status}`);
        dialogs.push({ dialog: result.dialog, replica: all.find((r) => r.invites.has(result.dialog.callId))! });
      }
      const victim = third;
      const orphans = dialogs.filter((d) => d.replica === victim);
      expect(orphans.length).toBeGreaterThan(0);
      await victim.stack.close(0);
      // The edge finds it dead at its next probe: 1 s interval, 1 s without an answer.
      await new Promise((r) => setTimeout(r, 2200));
      // The survivor stand-in knows none of these dialogs (taking them over is signaling's part):
      // what counts here is that every one of them reached the same survivor.
      for (const { dialog } of orphans) await dialog.request('OPTIONS');
      const takers = replicas.filter((r) => orphans.some((o) => r.saw('OPTIONS', o.dialog.callId)));
      expect(takers).toHaveLength(1);
      expect(orphans.every((o) => takers[0]!.saw('OPTIONS', o.dialog.callId))).toBe(true);
      for (let i = 0; i < 6; i++) {
        const result = await phone.invite(`sip:7002@127.0.0.1:${port3}`).result;
        expect(result.ok).toBe(true);
      }
    } finally {
      await edge3.process.stop();
    }
  });
});

describe('the SIP edge over TLS (Debian kamailio-tls-modules)', () => {
  it("takes a phone's call over TLS to a replica, which learns it came over TLS; the replica's BYE reaches the phone over that connection", async () => {
    const ca = createTestCa();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-edge-tls-'));
    const [tlsPort, internal, replicaPort] = [await freePort(), await freePort(), await freePort()];
    const replica = await Replica.start('signaling-tls', replicaPort, { public: tlsPort, internal });
    const tlsEdge = await startKamailioEdge({
      sourceToken,
      internal: { host: '127.0.0.1', port: internal },
      listen: [{ transport: 'tls', host: '127.0.0.1', port: tlsPort }],
      replicas: [{ name: replica.name, host: '127.0.0.1', port: replicaPort }],
      tls: ca.issue('edge'),
      dataDir: dir,
      log,
    });
    const tlsPhone = await SipPhone.start({ user: '7001', transport: 'tls', tls: { ...ca.issue('phone-7001'), ca: ca.caPem } });
    try {
      const outcome = await tlsPhone.call(`sip:7002@127.0.0.1:${tlsPort}`, '');
      expect(outcome.answered ? 200 : `${outcome.status} ${outcome.reason}`).toBe(200);
      if (!outcome.answered) return;
      const callId = outcome.dialog.callId;
      expect(replica.origins.get(callId)).toMatchObject({ protocol: 'tls', host: '127.0.0.1' });
      // In-dialog, both ways, through the edge over the phone's TLS connection.
      expect((await outcome.dialog.request('OPTIONS')).status).toBe(200);
      expect((await replica.dialogs.get(callId)!.bye()).status).toBe(200);
      await until(() => outcome.dialog.state === 'terminated', 'the BYE at the TLS phone');
    } finally {
      await tlsPhone.close();
      await tlsEdge.process.stop();
      await replica.stack.close(0);
      rmSync(dir, { recursive: true, force: true });
      ca.remove();
    }
  });
});

describe('the SIP edge over WebSocket (Debian kamailio-websocket-modules)', () => {
  it("registers a browser (SIP.js over ws) through the edge with a Path naming its connection; the replica's request reaches the browser over that connection", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-edge-ws-'));
    const [wsPort, internal, replicaPort] = [await freePort(), await freePort(), await freePort()];
    const replica = await Replica.start('signaling-ws', replicaPort, { public: wsPort, internal });
    const wsEdge = await startKamailioEdge({
      sourceToken,
      internal: { host: '127.0.0.1', port: internal },
      listen: [{ transport: 'ws', host: '127.0.0.1', port: wsPort }],
      replicas: [{ name: replica.name, host: '127.0.0.1', port: replicaPort }],
      dataDir: dir,
      log,
    });
    const media = await TonePhone.start({ frequency: null });
    const browser = await WsPhone.start({ dn: '7001', password: 'unused: the stand-in replica does not challenge', server: `ws://127.0.0.1:${wsPort}`, domain: '127.0.0.1', media });
    try {
      expect(await browser.register()).toBe(200);
      const register = [...replica.requests.values()].find((r) => r.method === 'REGISTER')!;
      expect(replica.origins.get(register.callId)).toMatchObject({ protocol: 'ws', host: '127.0.0.1' });
      const paths = register.getAll('path');
      expect(paths.join(',')).toMatch(/received=sip:127\.0\.0\.1:\d+(;|%3B)transport(=|%3D)ws/i);
      // What the registrar does with the binding: the contact (a .invalid host) through the Path.
      const contact = /<([^>]+)>/.exec(register.get('contact')!)![1]!;
      expect(contact).toMatch(/\.invalid;transport=ws/);
      const res = await replica.stack.request('MESSAGE', contact, { route: paths, to: `<sip:7001@127.0.0.1>`, body: 'hello browser', contentType: 'text/plain' });
      expect(res.status).toBe(200);
      expect(browser.messages).toEqual(['hello browser']);
      expect(browser.socketsOpened).toBe(1);
      // The edge's Via names its ws socket, where the browser's connection is.
      expect(browser.lastRequest?.getHeader('Via')).toMatch(new RegExp(`^SIP/2\\.0/WS +127\\.0\\.0\\.1:${wsPort};`));
      // The tab closes: the edge cannot reach the browser any more, and says so (no 500).
      browser.dropConnection();
      await new Promise((r) => setTimeout(r, 300));
      const late = await replica.stack.request('MESSAGE', contact, { route: paths, to: `<sip:7001@127.0.0.1>`, body: 'anyone there?', contentType: 'text/plain' });
      expect(`${late.status} ${late.reason}`).toBe('480 WebSocket connection closed');
    } finally {
      await browser.close();
      await media.close();
      await wsEdge.process.stop();
      await replica.stack.close(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
