/**
 * T-Library over wss:// (issue 15 point 3): a gateway with a certificate serves TLS only; the SDK
 * connects with the test CA; the certificate is re-read when its files are replaced.
 */
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlibClient } from '../../tlib-api/client/index.js';
import { createGateway, type Gateway } from '../../tlib-api/gateway/gateway.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';
import { Site, until } from './site.js';

let ca: TestCa;
let site: Site;
const clients: TlibClient[] = [];

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue('gateway');
  site = await Site.start({ edit: (yaml) => yaml.replace(/\n {2}gateway:\n/, `\n  gateway:\n    tls: { certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }\n`) });
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  await site?.stop();
  ca?.remove();
});

const wssUrl = () => site.gatewayUrl.replace(/^ws:/, 'wss:');

async function client(url: string, opts: { ca?: string } = {}): Promise<TlibClient> {
  const c = new TlibClient({ url, token: site.supervisorToken, reconnect: false, connectTimeoutMs: 3000, ...opts });
  clients.push(c);
  await c.open();
  return c;
}

function peerName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.destroy();
    });
    s.once('error', reject);
  });
}

describe('T-Library over wss', () => {
  it('the SDK trusting the test CA registers a DN over wss://', async () => {
    const c = await client(wssUrl(), { ca: ca.caPem });
    const registered = await c.registerAddress({ thisDN: '7001' });
    expect(registered.event).toBe('EventRegistered');
  });

  it('a plain ws:// client is refused: the port speaks TLS only', async () => {
    await expect(client(site.gatewayUrl)).rejects.toThrow();
  });

  it('a client that does not trust the certificate is refused', async () => {
    await expect(client(wssUrl())).rejects.toThrow(/certificate/i);
  });

  it('prints wss:// and https:// endpoints; a rotated certificate reaches new connections while open clients keep working', async () => {
    const files = ca.issue('replica', 'before-rotation');
    const replica: Gateway = await createGateway(site.context('gateway-2'), { listen: '127.0.0.1:0', tls: { ...files, reloadMs: 100 } });
    try {
      expect(replica.wsUrl).toMatch(/^wss:\/\//);
      expect(replica.endpoints.join('\n')).toMatch(/wss:\/\/.*\n.*https:\/\//);
      const port = Number(new URL(replica.url).port);
      const open = await client(replica.wsUrl, { ca: ca.caPem });
      await open.registerAddress({ thisDN: '7002' });
      expect(await peerName(port)).toBe('before-rotation');

      ca.rotate(files, 'after-rotation');
      let seen = '';
      await until(async () => (seen = await peerName(port)) === 'after-rotation', 'the new certificate on a new connection', 5000);
      expect(seen).toBe('after-rotation');
      expect((await open.registerAddress({ thisDN: '7003' })).event).toBe('EventRegistered');
      const fresh = await client(replica.wsUrl, { ca: ca.caPem });
      expect((await fresh.registerAddress({ thisDN: '7004' })).event).toBe('EventRegistered');
    } finally {
      for (const c of clients.splice(1)) await c.close();
      await replica.stop();
    }
  });
});
