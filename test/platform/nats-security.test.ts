/**
 * NATS locked down (issue 15, point 4): a bare client is refused by `npm start`'s server; each
 * component's user may publish and subscribe only what it needs (the server refuses the rest);
 * the config bucket holds no agent token; NATS over TLS with a test CA.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../common/config/load.js';
import { openConfigBucket, publishConfig } from '../../common/nats/config-kv.js';
import { connectNats, type NatsClientOptions } from '../../common/nats/connect.js';
import type { NatsRole } from '../../common/nats/permissions.js';
import { openBucket, openStream } from '../../common/nats/buckets.js';
import { CallStateKeys, CdrStream, ConfigKeys, MediaKeys, Subjects } from '../../common/nats/subjects.js';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import { openDesktop } from '../e2e/site.js';
import { startTestNats, type TestNats } from '../support/infra.js';

const root = path.resolve(import.meta.dirname, '../..');

/** nats-server on a free port with a configuration file of ours (the supervisor writes its own otherwise). */
async function startNatsServerWithConfig(dir: string, configFile: string): Promise<{ url: string }> {
  const port = await freePort();
  const child = spawn(findBinary('nats-server', 'nats-server'), ['-c', configFile, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  children.push(child);
  const url = `nats://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    // Refused credentials mean it is up (nobody may connect without a user).
    const up = await connectNats(url, 'probe').then(
      (nc) => nc.close().then(() => true),
      (err: Error) => /Authorization Violation/.test(err.message),
    );
    if (up) return { url };
    if (Date.now() > deadline) throw new Error(`nats-server with ${configFile} not up in ${dir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'huddle-nats-security-'));
const children: ChildProcess[] = [];
const connections: NatsConnection[] = [];
const servers: TestNats[] = [];
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const nc of connections) await nc.close();
  for (const s of servers) await s.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const localYaml = readFileSync(path.join(root, 'config/local.yaml'), 'utf8');
const tokens = parseConfig(localYaml, 'local.yaml', path.join(root, 'config')).cluster.spec.gateway.tokens.map((t) => t.token);
const SITE = 'SiteA';

async function connect(nats: { url: string }, name: string, client: NatsClientOptions): Promise<NatsConnection> {
  const nc = await connectNats(nats.url, name, undefined, client);
  connections.push(nc);
  return nc;
}

/** The next permissions violation the server reports to this connection, or undefined after 2 s. */
async function violation(nc: NatsConnection): Promise<string | undefined> {
  const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000));
  const reported = (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && /Permissions Violation/i.test(String(s.error))) return String(s.error);
    }
    return undefined;
  })();
  return Promise.race([reported, timeout]);
}

/** Messages `sub` gets within `ms`. */
async function received(sub: Subscription, ms = 300): Promise<string[]> {
  const got: string[] = [];
  void (async () => {
    for await (const m of sub) got.push(m.string());
  })();
  await new Promise((r) => setTimeout(r, ms));
  return got;
}

describe("npm start's embedded NATS", () => {
  it('refuses a bare client; the generated users are in a 0600 file; the bucket holds token verifiers, and agents still log in', async () => {
    const [sip, gateway, metrics] = [await freePort(), await freePort(), await freePort()];
    const media = await freePortRange(40);
    const dataDir = path.join(tmp, 'data');
    const file = path.join(tmp, 'local.yaml');
    writeFileSync(
      file,
      localYaml
        .replaceAll('port: 5060 }', `port: ${sip} }`)
        .replace('listen: 127.0.0.1:7000', `listen: 127.0.0.1:${gateway}`)
        .replace('listen: 127.0.0.1:9464', `listen: 127.0.0.1:${metrics}`)
        .replace('portMin: 40000', `portMin: ${media.min}`)
        .replace('portMax: 40999', `portMax: ${media.max}`)
        .replace('  options:\n    sip-enable-call-info', `  musicRoot: ${path.join(root, 'config')}\n  dataDir: ${dataDir}\n  options:\n    sip-enable-call-info`),
    );
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'bin/start.ts'), '--config', file], {
      cwd: tmp,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 40_000;
    while (!/Metrics +http/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const url = /NATS +(nats:\/\/\S+) \(embedded\)/.exec(out)?.[1];
    expect(url, out).toBeDefined();

    // The finding: a bare client registered 7001 in a made-up gateway's name and released a call.
    await expect(connectNats(url!, 'stranger')).rejects.toThrow(/Authorization Violation/);
    await expect(connectNats(url!, 'stranger', undefined, { user: 'gateway', password: 'guess' })).rejects.toThrow(/Authorization Violation/);

    const serverConfig = path.join(dataDir, 'site-a', 'nats-server.conf');
    expect(statSync(serverConfig).mode & 0o777).toBe(0o600);
    const users = JSON.parse(readFileSync(serverConfig, 'utf8').replace(/^authorization /, '').split('\ntls ')[0]!) as { users: { user: string; password: string }[] };
    expect(users.users.map((u) => u.user).sort()).toEqual(['config-publisher', 'gateway', 'media-controller', 'signaling']);
    expect(new Set(users.users.map((u) => u.password)).size).toBe(4);

    // What any component may read of the bucket: no agent token, only verifiers.
    const gatewayUser = users.users.find((u) => u.user === 'gateway')!;
    const nc = await connect({ url: url! }, 'reader', { role: 'gateway', user: gatewayUser.user, password: gatewayUser.password });
    const stored = (await (await openConfigBucket(nc)).get(ConfigKeys.cluster('site-a')))!.string();
    for (const token of tokens) expect(stored).not.toContain(token);
    expect(stored).toMatch(/"token":"sha256:[0-9a-f]{64}"/);

    const desktop = await openDesktop(`ws://127.0.0.1:${gateway}/tlib`, 'agent-7001-secret', '7001');
    await desktop.client.close();
    child.kill('SIGTERM');
  });
});

describe('subject permissions per component', () => {
  async function lockedNats(): Promise<TestNats> {
    const nats = await startTestNats({ sites: [{ location: SITE }] });
    servers.push(nats);
    return nats;
  }
  const as = (nats: TestNats, role: NatsRole) => connect(nats, role, nats.client(role));

  it('the gateway cannot publish media commands; signaling can', async () => {
    const nats = await lockedNats();
    const [gateway, signaling, media] = [await as(nats, 'gateway'), await as(nats, 'signaling'), await as(nats, 'media-controller')];
    const commands = media.subscribe(Subjects.mediaInstanceCommandAll(SITE));
    const shared = media.subscribe(Subjects.mediaCommand(SITE));
    await media.flush();
    const refused = violation(gateway);
    gateway.publish(Subjects.mediaInstanceCommand(SITE, 'media-0'), 'from-gateway');
    gateway.publish(Subjects.mediaCommand(SITE), 'from-gateway');
    expect(await refused).toMatch(/Permissions Violation for Publish to "huddle\.SiteA\.media\.cmd/);
    signaling.publish(Subjects.mediaInstanceCommand(SITE, 'media-0'), 'from-signaling');
    signaling.publish(Subjects.mediaCommand(SITE), 'from-signaling');
    expect(await received(commands)).toEqual(['from-signaling']);
    expect(await received(shared)).toEqual(['from-signaling']);
  });

  it('only signaling may subscribe to (answer) T-Library requests; the media-controller answers media commands only', async () => {
    const nats = await lockedNats();
    const [gateway, signaling, media, publisher] = [await as(nats, 'gateway'), await as(nats, 'signaling'), await as(nats, 'media-controller'), await as(nats, 'config-publisher')];
    for (const [nc, role] of [
      [gateway, 'gateway'],
      [media, 'media-controller'],
      [publisher, 'config-publisher'],
    ] as const) {
      const refused = violation(nc);
      nc.subscribe(Subjects.tlibRequestAll(SITE));
      expect(await refused, role).toMatch(/Permissions Violation for Subscription to "huddle\.SiteA\.tlib\.req\.\*"/);
    }
    const refused = violation(media);
    media.publish(Subjects.tlibEvent(SITE, '7001'), 'EventReleased');
    expect(await refused).toMatch(/Permissions Violation for Publish to "huddle\.SiteA\.tlib\.evt\.7001"/);

    signaling.subscribe(Subjects.tlibRequestAll(SITE), { callback: (_err, m) => void m.respond('answered by signaling') });
    await signaling.flush();
    expect((await gateway.request(Subjects.tlibRequest(SITE, '7001'), 'RequestRegisterAddress', { timeout: 2000 })).string()).toBe('answered by signaling');
  });

  it('only signaling writes the call state (leases, calls, dialogs), only media-controllers the bridge records', async () => {
    const nats = await lockedNats();
    const [gateway, signaling, media] = [await as(nats, 'gateway'), await as(nats, 'signaling'), await as(nats, 'media-controller')];
    const calls = await openBucket(signaling, CallStateKeys.bucket);
    await calls.put(CallStateKeys.replica(SITE, 'signaling-0'), '{"replica":"signaling-0"}');
    const bridges = await openBucket(media, MediaKeys.bucket);
    await bridges.put(MediaKeys.bridge(SITE, 'b1'), '{"instance":"media-0","legs":[]}');
    const attempts: [NatsConnection, string, string][] = [
      // A forged lease or call group would let a stranger take calls over; a forged bridge record, their media.
      [gateway, `$KV.${CallStateKeys.bucket}.${CallStateKeys.replica(SITE, 'signaling-0')}`, 'gateway'],
      [media, `$KV.${CallStateKeys.bucket}.${CallStateKeys.replica(SITE, 'signaling-0')}`, 'media-controller'],
      [gateway, `$KV.${MediaKeys.bucket}.${MediaKeys.bridge(SITE, 'b1')}`, 'gateway'],
      [signaling, `$KV.${MediaKeys.bucket}.${MediaKeys.bridge(SITE, 'b1')}`, 'signaling'],
      // Nor may the gateway read a call's dialogs and SDP.
      [gateway, `$JS.API.DIRECT.GET.KV_${CallStateKeys.bucket}.$KV.${CallStateKeys.bucket}.${CallStateKeys.replica(SITE, 'signaling-0')}`, 'gateway reading'],
    ];
    for (const [nc, subject, who] of attempts) {
      const refused = violation(nc);
      nc.publish(subject, '{"forged":true}');
      expect(await refused, who).toMatch(/Permissions Violation for Publish/);
    }
    expect((await calls.get(CallStateKeys.replica(SITE, 'signaling-0')))!.string()).toBe('{"replica":"signaling-0"}');
    expect((await bridges.get(MediaKeys.bridge(SITE, 'b1')))!.string()).toBe('{"instance":"media-0","legs":[]}');
  });

  it('only signaling stores call detail records; the gateway reads them and cannot write them; the media-controller neither', async () => {
    const nats = await lockedNats();
    const [gateway, signaling, media] = [await as(nats, 'gateway'), await as(nats, 'signaling'), await as(nats, 'media-controller')];
    const stream = CdrStream.name(SITE);
    await openStream(signaling, stream, { subjects: [Subjects.cdrAll(SITE)], maxAgeHours: 1, replicas: 1 });
    const ack = await jetstream(signaling).publish(Subjects.cdr(SITE, '00000000000000a1'), '{"connId":"00000000000000a1"}', { msgID: CdrStream.msgId('00000000000000a1', 1) });
    expect(ack.seq).toBe(1);

    const read = async (nc: NatsConnection): Promise<string[]> => {
      const messages = await (await jetstream(nc).consumers.get(stream)).fetch({ max_messages: 10, expires: 1000 });
      const got: string[] = [];
      for await (const m of messages) got.push(m.string());
      return got;
    };
    expect(await read(gateway)).toEqual(['{"connId":"00000000000000a1"}']);
    // A forged record, a stream of the gateway's own making, or a reader the site did not credential: refused.
    const attempts: [NatsConnection, string, string][] = [
      [gateway, Subjects.cdr(SITE, '00000000000000a2'), 'gateway writing'],
      [gateway, `$JS.API.STREAM.CREATE.${stream}`, 'gateway creating'],
      [gateway, `$JS.API.STREAM.PURGE.${stream}`, 'gateway purging'],
      [media, Subjects.cdr(SITE, '00000000000000a2'), 'media-controller writing'],
      [media, `$JS.API.CONSUMER.CREATE.${stream}`, 'media-controller reading'],
    ];
    for (const [nc, subject, who] of attempts) {
      const refused = violation(nc);
      nc.publish(subject, '{"forged":true}');
      expect(await refused, who).toMatch(/Permissions Violation for Publish/);
    }
    expect((await (await jetstream(signaling).jetstreamManager()).streams.info(stream)).state.messages).toBe(1);
  });

  it('a component may read the config bucket but not write it', async () => {
    const nats = await lockedNats();
    const config = parseConfig(localYaml, 'local.yaml', path.join(root, 'config'));
    await publishConfig(await openConfigBucket(await as(nats, 'config-publisher')), config.cluster, config.dns);
    const kv = await openConfigBucket(await as(nats, 'gateway'));
    expect((await kv.get(ConfigKeys.cluster('site-a')))?.operation).toBe('PUT');
    await expect(kv.put(ConfigKeys.cluster('site-a'), '{}')).rejects.toThrow(/Permissions Violation|timeout/i);
  });
});

describe('npm run nats-config', () => {
  it("prints users a real nats-server takes: each site's gateway reaches only its own site's signaling, the operator writes the config buckets", async () => {
    const out = execFileSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'bin/nats-config.ts'), path.join(root, 'examples/two-sites.yaml')], { encoding: 'utf8' });
    const block = /^authorization (\{[\s\S]*?\n\})$/m.exec(out)?.[1];
    expect(block, out).toBeDefined();
    const { users } = JSON.parse(block!) as { users: { user: string; password: string }[] };
    expect(users.map((u) => u.user)).toEqual(['site-a-signaling', 'site-a-media-controller', 'site-a-gateway', 'site-b-signaling', 'site-b-media-controller', 'site-b-gateway', 'huddle-operator']);
    for (const u of users) expect(out).toContain(`--from-literal=user=${u.user} --from-literal=password=${u.password}`);

    const dataDir = mkdtempSync(path.join(tmp, 'nats-config-'));
    writeFileSync(path.join(dataDir, 'users.conf'), `authorization ${block!}\njetstream { store_dir: ${JSON.stringify(path.join(dataDir, 'js'))} }\n`);
    const nats = await startNatsServerWithConfig(dataDir, path.join(dataDir, 'users.conf'));
    const login = (user: string, role: NatsRole) => connect(nats, user, { role, user, password: users.find((u) => u.user === user)!.password });
    const operator = await login('huddle-operator', 'config-publisher');
    const config = parseConfig(localYaml, 'local.yaml', path.join(root, 'config'));
    await publishConfig(await openConfigBucket(operator), config.cluster, config.dns);
    const [gatewayB, signalingA] = [await login('site-b-gateway', 'gateway'), await login('site-a-signaling', 'signaling')];
    const requests = signalingA.subscribe(Subjects.tlibRequestAll('SiteA'));
    await signalingA.flush();
    const refused = violation(gatewayB);
    gatewayB.publish(Subjects.tlibRequest('SiteA', '7001'), 'RequestReleaseCall');
    expect(await refused).toMatch(/Permissions Violation for Publish to "huddle\.SiteA\.tlib\.req\.7001"/);
    expect(await received(requests)).toEqual([]);
  });
});

describe('NATS over TLS', () => {
  /** A test CA and, signed by it, a server certificate for 127.0.0.1 and a client certificate. */
  function testCertificates(): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
    const openssl = findBinary('openssl', 'openssl');
    const dir = mkdtempSync(path.join(tmp, 'pki-'));
    const f = (name: string) => path.join(dir, name);
    const run = (...args: string[]) => execFileSync(openssl, args, { stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=huddle test CA');
    writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const who of ['server', 'client']) {
      run('req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=huddle ${who}`);
      run('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '1', ...(who === 'server' ? ['-extfile', f('server.ext')] : []));
    }
    return { ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
  }

  it('a component connects with tls:// and the CA and client certificate; without the CA it is refused', async () => {
    const pki = testCertificates();
    const nats = await startTestNats({ sites: [{ location: SITE }], tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
    servers.push(nats);
    expect(nats.url).toMatch(/^tls:\/\//);
    const tls = { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey };
    await expect(connectNats(nats.url, 'no-ca', undefined, { ...nats.client('gateway'), tls: { certFile: pki.clientCert, keyFile: pki.clientKey } })).rejects.toThrow(/unable to verify/);

    const config = parseConfig(localYaml.replace('listen: 127.0.0.1:7000', `listen: 127.0.0.1:${await freePort()}`), 'local.yaml', path.join(root, 'config'));
    await publishConfig(await openConfigBucket(await connect(nats, 'publisher', { ...nats.client('config-publisher'), tls })), config.cluster, config.dns);

    // The gateway's pod entry point, as the operator runs it against a TLS NATS.
    const metricsPort = await freePort();
    const passwordFile = path.join(tmp, 'gateway-password');
    writeFileSync(passwordFile, `${nats.client('gateway').password}\n`, { mode: 0o600 });
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'bin/tlib-gateway.ts')], {
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        HUDDLE_NATS_URL: nats.url,
        HUDDLE_NATS_USER: 'gateway',
        HUDDLE_NATS_PASSWORD_FILE: passwordFile,
        HUDDLE_NATS_CA: pki.ca,
        HUDDLE_NATS_CERT: pki.clientCert,
        HUDDLE_NATS_KEY: pki.clientKey,
        HUDDLE_CLUSTER: 'site-a',
        HUDDLE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        POD_NAME: 'tlib-gateway-tls',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    let ready = '';
    const deadline = Date.now() + 40_000;
    while (ready !== 'ready\n' && Date.now() < deadline && child.exitCode === null) {
      ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (r) => r.text(),
        () => '',
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready, output).toBe('ready\n');
    child.kill('SIGTERM');
  });
});
