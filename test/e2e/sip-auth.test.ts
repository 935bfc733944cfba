/**
 * Secure by default (issue 15, points 1 and 2, and DN passwords in the config bucket): strangers on
 * the network can neither register a DN, remove its binding, call from it, reach the carrier, nor
 * pass for the trunk by forging a Via; the config bucket holds digest verifiers, never a password.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { openConfigBucket } from '../../common/nats/config-kv.js';
import { connectNats } from '../../common/nats/connect.js';
import { ConfigKeys } from '../../common/nats/subjects.js';
import { freePort } from '../../common/supervisor/ports.js';
import { SipPhone } from '../support/sip-phone.js';
import { metric, Site, type Agent } from './site.js';

const MoreDns = `
---
apiVersion: sip.huddle.dev/v1alpha1
kind: SipDN
metadata: { name: site-a-7006 }
spec: { cluster: site-a, number: "7006", type: Extension, options: { password: { value: secret-7006 } } }
---
apiVersion: sip.huddle.dev/v1alpha1
kind: SipDN
metadata: { name: site-a-7007 }
spec: { cluster: site-a, number: "7007", type: Extension, options: { sip-allow-unauthenticated-insecure: true } }
---
apiVersion: sip.huddle.dev/v1alpha1
kind: SipDN
metadata: { name: site-a-7008 }
spec: { cluster: site-a, number: "7008", type: Extension }
---
apiVersion: sip.huddle.dev/v1alpha1
kind: SipDN
metadata: { name: site-a-7009 }
spec: { cluster: site-a, number: "7009", type: Extension, options: { password: { value: secret-7009 }, sip-digest-algorithms: [SHA-256] } }
`;

/** What a carrier on the trunk's address receives: every datagram, kept. */
interface Carrier {
  received: string[];
  socket: dgram.Socket;
}

async function carrierOn(port: number): Promise<Carrier> {
  const socket = dgram.createSocket('udp4');
  const received: string[] = [];
  socket.on('message', (m) => received.push(m.toString()));
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  return { received, socket };
}

const Offer = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 49170 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');

describe('SIP authentication by default', () => {
  let site: Site;
  let carrier: Carrier;
  let trunkPort: number;
  let owner: Agent;
  const strangers: SipPhone[] = [];

  async function stranger(user: string, o: { from?: string; password?: string } = {}): Promise<SipPhone> {
    const phone = await SipPhone.start({ user, ...o });
    strangers.push(phone);
    return phone;
  }

  beforeAll(async () => {
    trunkPort = await freePort();
    carrier = await carrierOn(trunkPort);
    site = await Site.start({ edit: (yaml) => yaml.replace('contact: sip:127.0.0.1:5090', `contact: sip:127.0.0.1:${trunkPort}`) + MoreDns });
    owner = await site.agent('7001', 0);
  });
  afterAll(async () => {
    for (const p of strangers) await p.close();
    carrier?.socket.close();
    await site?.stop();
  });

  it('a stranger registering 7006 without credentials, or with a wrong password, gets 401 and no binding', async () => {
    const registrar = `sip:127.0.0.1:${site.sipPort}`;
    const before = await metric(site, 'huddle_sip_registrations');
    const bare = await stranger('7006');
    const res = await bare.register(registrar, 'sip:7006@127.0.0.1');
    expect(res.status).toBe(401);
    const challenges = res.getAll('www-authenticate');
    // MD5 alone by default: sipp answers only the first challenge, and baresip (libre) refuses a
    // 401 that offers any algorithm but MD5 ("Function not implemented"); SHA-256 is per DN.
    expect(challenges.map((c) => /algorithm=([\w-]+)/.exec(c)?.[1])).toEqual(['MD5']);
    expect(challenges[0]).toMatch(/realm="SiteA".*qop="auth"/);
    expect((await bare.register(registrar, 'sip:7006@127.0.0.1', bare.contact, { password: 'guess' })).status).toBe(401);
    expect(await metric(site, 'huddle_sip_registrations')).toBe(before);
    // The owner, with the password of the configuration, registers.
    const real = await stranger('7006', { password: site.password('7006') });
    expect((await real.register(registrar, 'sip:7006@127.0.0.1')).status).toBe(200);
    expect(await metric(site, 'huddle_sip_registrations')).toBe(before + 1);
  });

  it('a DN configured for SHA-256 is challenged with SHA-256 only, and its owner registers with it', async () => {
    const registrar = `sip:127.0.0.1:${site.sipPort}`;
    const bare = await stranger('7009');
    const res = await bare.register(registrar, 'sip:7009@127.0.0.1');
    expect(res.status).toBe(401);
    expect(res.getAll('www-authenticate').map((c) => /algorithm=([\w-]+)/.exec(c)?.[1])).toEqual(['SHA-256']);
    const real = await stranger('7009', { password: site.password('7009') });
    expect((await real.register(registrar, 'sip:7009@127.0.0.1')).status).toBe(200);
  });

  it('REGISTER Contact: * / Expires: 0 without credentials gets 401 and the owner keeps its binding', async () => {
    const before = await metric(site, 'huddle_sip_registrations');
    const bare = await stranger('7001');
    const res = await bare.stack.request('REGISTER', `sip:127.0.0.1:${site.sipPort}`, { from: 'sip:7001@127.0.0.1', to: 'sip:7001@127.0.0.1', headers: { Contact: '*', Expires: '0' } });
    expect(res.status).toBe(401);
    expect(await metric(site, 'huddle_sip_registrations')).toBe(before);
    // 7001's phone is still reachable: a call to it rings there and is answered.
    const caller = await site.agent('7005', 1);
    const dialing = await caller.desktop!.client.makeCall({ thisDN: '7005', otherDN: '7001' });
    await owner.desktop!.waitFor((e) => e.event === 'EventEstablished' && e.ConnID === dialing.ConnID, 'EventEstablished on 7001');
    await caller.desktop!.client.releaseCall({ thisDN: '7005', connID: dialing.ConnID! });
  });

  it('a DN without credentials cannot register (403 naming the missing option); the insecure opt-out registers without any', async () => {
    const registrar = `sip:127.0.0.1:${site.sipPort}`;
    const none = await stranger('7008');
    const refused = await none.register(registrar, 'sip:7008@127.0.0.1');
    expect(refused.status).toBe(403);
    expect(refused.reason).toBe('DN 7008 has no credentials configured (SipDN options.password)');
    const open = await stranger('7007');
    expect((await open.register(registrar, 'sip:7007@127.0.0.1')).status).toBe(200);
  });

  it('a stranger calling 7002: challenged (407) when From names a DN, refused (403) when it names nobody; 7002 never rings', async () => {
    const callee = await stranger('7002', { password: site.password('7002') });
    expect((await callee.register(`sip:127.0.0.1:${site.sipPort}`, 'sip:7002@127.0.0.1')).status).toBe(200);
    callee.onIncoming(() => Offer);
    const posing = await stranger('7003');
    const challenged = await posing.call(`sip:7002@127.0.0.1:${site.sipPort}`, Offer);
    expect(challenged).toMatchObject({ answered: false, status: 407 });
    const wrong = await posing.call(`sip:7002@127.0.0.1:${site.sipPort}`, Offer, { password: 'guess' });
    expect(wrong).toMatchObject({ answered: false, status: 407 });
    const nobody = await stranger('mallory', { from: 'sip:mallory@evil.example' });
    expect(await nobody.call(`sip:7002@127.0.0.1:${site.sipPort}`, Offer)).toEqual({ answered: false, status: 403, reason: 'DN mallory is not configured' });
    const sub = await nobody.subscribe(`sip:conf-x@127.0.0.1:${site.sipPort}`, 'conference');
    expect(sub.response.status).toBe(403);
    const posingSub = await stranger('7004');
    expect((await posingSub.subscribe(`sip:conf-x@127.0.0.1:${site.sipPort}`, 'conference')).response.status).toBe(407);
    await new Promise((r) => setTimeout(r, 200));
    expect(callee.incoming).toHaveLength(0);
  });

  it('a stranger calling the trunk prefix is refused and the carrier receives nothing; so is an authenticated DN without sip-trunk-access', async () => {
    const carrierBefore = carrier.received.length;
    const nobody = await stranger('mallory', { from: 'sip:mallory@evil.example' });
    expect(await nobody.call(`sip:00442071234567@127.0.0.1:${site.sipPort}`, Offer)).toMatchObject({ answered: false, status: 403 });
    const posing = await stranger('7001');
    expect(await posing.call(`sip:00442071234567@127.0.0.1:${site.sipPort}`, Offer)).toMatchObject({ answered: false, status: 407 });
    const noAccess = await stranger('7003', { password: site.password('7003') });
    expect(await noAccess.call(`sip:00442071234567@127.0.0.1:${site.sipPort}`, Offer)).toEqual({
      answered: false,
      status: 403,
      reason: 'DN 7003 may not call out through Trunk 9000',
    });
    const desk = await site.desktop('7003');
    onTestFinished(() => desk.close());
    await expect(desk.client.makeCall({ thisDN: '7003', otherDN: '00442071234567' })).rejects.toMatchObject({
      event: { ErrorCode: 71, ErrorMessage: 'DN 7003 may not call out through Trunk 9000 (SipDN option sip-trunk-access)' },
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(carrier.received.slice(carrierBefore)).toEqual([]);
  });

  it('a forged top Via naming the trunk does not make a stranger the trunk', async () => {
    const forger = dgram.createSocket('udp4');
    onTestFinished(() => void forger.close());
    await new Promise<void>((resolve) => forger.bind(0, '127.0.0.1', resolve));
    const answers: string[] = [];
    forger.on('message', (m) => answers.push(m.toString()));
    const carrierBefore = carrier.received.length;
    const rangBefore = owner.phone.incoming.length;
    const body = Offer;
    const invite = [
      `INVITE sip:7001@127.0.0.1:${site.sipPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${trunkPort};branch=z9hG4bKforged1;rport`,
      'Max-Forwards: 70',
      'From: <sip:5551234@carrier.example>;tag=f1',
      `To: <sip:7001@127.0.0.1:${site.sipPort}>`,
      'Call-ID: forged-via@carrier.example',
      'CSeq: 1 INVITE',
      `Contact: <sip:5551234@127.0.0.1:${trunkPort}>`,
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    forger.send(invite, site.sipPort, '127.0.0.1');
    const deadline = Date.now() + 5000;
    const final = () => [...answers, ...carrier.received.slice(carrierBefore)].find((m) => /^SIP\/2\.0 [2-6]\d\d/.test(m));
    while (!final() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(final()).toMatch(/^SIP\/2\.0 403 DN 5551234 is not configured/);
    await new Promise((r) => setTimeout(r, 200));
    expect(owner.phone.incoming).toHaveLength(rangBefore);
  });

  it('the config bucket holds each DN password as digest HA1 verifiers, never in clear text', async () => {
    // What any component may read: signaling's user, as the other processes can too.
    const nc = await connectNats(site.nats.url, 'bucket-reader', undefined, site.nats.client('signaling'));
    onTestFinished(() => nc.close());
    const kv = await openConfigBucket(nc, `cfg-${site.config.cluster.metadata.name}`);
    const entry = await kv.get(ConfigKeys.dn(site.config.cluster.metadata.name, '7001'));
    const text = Buffer.from(entry!.value).toString();
    expect(text).not.toContain(site.password('7001'));
    expect(JSON.parse(text).spec.options.password).toEqual({ ha1: { realm: 'SiteA', md5: expect.stringMatching(/^[0-9a-f]{32}$/), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
  });
});
