/**
 * SIP over TLS through a whole site (issue 15 point 3): our test phones and baresip register and call
 * over TLS with certificates of a test CA (openssl CLI); media flows through rtpengine as over UDP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { freePort, freePortRange } from '../../common/supervisor/ports.js';
import type { SipRequest } from '../../signaling/sip/index.js';
import { SipPhone } from '../support/sip-phone.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';
import { TonePhone, toneFrequency } from '../support/tone-phone.js';
import { metric, Site, until } from './site.js';
import { writeBaresipConfig } from '../support/baresip.js';

let ca: TestCa;
let site: Site;
let tlsPort: number;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  ca = createTestCa();
  const server = ca.issue('site');
  tlsPort = await freePort();
  site = await Site.start({
    edit: (yaml) => yaml.replace(/\n {2}sip:\n/, `\n  sip:\n    tls: { certFile: ${server.certFile}, keyFile: ${server.keyFile}, port: ${tlsPort} }\n`),
  });
}, 60_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await site?.stop();
  ca?.remove();
});

/** The DN's digest password in the site's configuration, when it has one. */
function passwordOf(dn: string): string | undefined {
  return site.config.dns.find((d) => d.spec.number === dn)?.spec.options.password?.value;
}

async function tlsAgent(dn: string, tone: number): Promise<{ phone: SipPhone; media: TonePhone; invites: SipRequest[] }> {
  const password = passwordOf(dn);
  const phone = await SipPhone.start({ user: dn, transport: 'tls', tls: { ...ca.issue(`phone-${dn}`), ca: ca.caPem }, ...(password ? { password } : {}) });
  const media = await TonePhone.start({ frequency: toneFrequency(tone) });
  closers.push(async () => {
    await phone.close();
    await media.close();
  });
  const invites: SipRequest[] = [];
  phone.onIncoming((offer, req) => {
    invites.push(req.message);
    return media.answer(offer);
  });
  const res = await phone.register(`sip:127.0.0.1:${tlsPort}`, `sip:${dn}@127.0.0.1`);
  expect(res.status, `REGISTER ${dn}: ${res.reason}`).toBe(200);
  return { phone, media, invites };
}

describe('SIP over TLS through a site', () => {
  it('two test phones register and call each other over TLS; the call reaches the callee over its registered connection', async () => {
    const a = await tlsAgent('7001', 1);
    const b = await tlsAgent('7002', 2);
    const outcome = await a.phone.call(`sip:7002@127.0.0.1:${tlsPort}`, a.media.offer());
    if (!outcome.answered) throw new Error(`7001 calling 7002: ${outcome.status} ${outcome.reason}`);
    a.media.accept(outcome.answerSdp);
    await a.media.waitFor((h) => h.tones.includes(toneFrequency(2)), 8000);
    await b.media.waitFor((h) => h.tones.includes(toneFrequency(1)), 8000);

    const invite = b.invites[0]!;
    expect(invite.get('via')).toMatch(/^SIP\/2\.0\/TLS 127\.0\.0\.1:/);
    expect(invite.get('contact')).toMatch(/;transport=tls/);
    // Two phones, two connections: signaling opened none of its own towards 7002.
    expect(await metric(site, 'huddle_sip_connections', { transport: 'tls' })).toBe(2);
    await a.phone.hangup();
  }, 40_000);

  it('baresip registers and calls over TLS, trusting the site certificate through the test CA', async () => {
    const callee = await tlsAgent('7004', 4);
    const bs = await startBaresip('7003');
    await until(() => /\{0\/TLS\/v4\} 200 OK/.test(bs.output()), 'baresip to register over TLS', 15_000);
    bs.command(`/dial sip:7004@127.0.0.1:${tlsPort};transport=tls`);
    await until(() => callee.invites.length > 0, `the call to reach 7004:\n${bs.output()}`, 15_000);
    await until(() => /established/i.test(bs.output()), `baresip to report the call:\n${bs.output()}`, 15_000);
    expect(callee.invites[0]!.get('via')).toMatch(/^SIP\/2\.0\/TLS /);
    // baresip's microphone is a WAV file: something arrives at the callee through rtpengine.
    await callee.media.waitFor((h) => h.packets > 0, 8000);
    await callee.phone.hangup();
  }, 60_000);
});

interface Baresip {
  output: () => string;
  command: (line: string) => void;
}

async function startBaresip(dn: string): Promise<Baresip> {
  const bin = findBinary('baresip', 'baresip');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-baresip-tls-'));
  const port = await freePort();
  const rtp = await freePortRange(20);
  // baresip takes its certificate and key in one PEM file.
  const own = ca.issue(`baresip-${dn}`);
  writeFileSync(path.join(dir, 'cert.pem'), readFileSync(own.certFile, 'utf8') + readFileSync(own.keyFile, 'utf8'));
  const tone = path.resolve(import.meta.dirname, '../../config/music/on_hold.wav');
  writeBaresipConfig(dir, { port, rtp, tone, extra: [`sip_certificate ${path.join(dir, 'cert.pem')}`, `sip_cafile ${ca.caFile}`] });
  const password = passwordOf(dn);
  writeFileSync(path.join(dir, 'accounts'), `<sip:${dn}@127.0.0.1:${tlsPort};transport=tls>;regint=600${password ? `;auth_pass=${password}` : ''}\n`);
  const child: ChildProcess = spawn(bin, ['-f', dir, '-t', '55'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  closers.push(async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await until(() => out.includes('baresip is ready') || child.exitCode !== null, 'baresip to start', 15_000);
  if (child.exitCode !== null) throw new Error('baresip did not start:\n' + out);
  return { output: () => out, command: (line) => child.stdin!.write(line + '\n') };
}
