/** The example manifests apply as they are: to the generated CRDs (emulator) and to the local loader. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../../common/config/load.js';
import { desiredObjects } from '../../operator/desired.js';
import type { SipClusterResource } from '../../operator/resources.js';
import { FakeApiServer } from './apiserver.js';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

interface Doc {
  kind: 'SipCluster' | 'SipDN';
  metadata: { name: string; namespace: string };
  spec: Record<string, unknown> & { cluster?: string; number?: string; type?: string; options?: Record<string, unknown> };
}

function docs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(path.join(dir, file), 'utf8')).map((d) => d.toJS() as Doc);
}

/** `kubectl apply -f <file>` against a fresh emulator holding the generated CRDs. */
async function applyAll(api: FakeApiServer, all: Doc[]): Promise<void> {
  const custom = api.kubeConfig().makeApiClient(CustomObjectsApi);
  for (const doc of all) {
    await custom.createNamespacedCustomObject({
      group: 'sip.huddle.dev',
      version: 'v1alpha1',
      namespace: doc.metadata.namespace,
      plural: doc.kind === 'SipCluster' ? 'sipclusters' : 'sipdns',
      body: doc,
    });
  }
}

describe('examples/', () => {
  const servers: FakeApiServer[] = [];
  const emulator = async () => {
    const api = await new FakeApiServer().start();
    servers.push(api);
    return api;
  };
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  for (const file of ['one-site.yaml', 'two-sites.yaml']) {
    it(`${file} applies to the CRDs and loads per site with the local loader`, async () => {
      const all = docs(file);
      await applyAll(await emulator(), all);
      const clusters = all.filter((d) => d.kind === 'SipCluster');
      expect(clusters.length).toBeGreaterThan(0);
      for (const cluster of clusters) {
        const site = [cluster, ...all.filter((d) => d.kind === 'SipDN' && d.spec.cluster === cluster.metadata.name)];
        const config = parseConfig(site.map((d) => stringify(d)).join('---\n'), `${file}#${cluster.metadata.name}`, dir);
        expect(config.dns.length).toBeGreaterThan(0);
      }
      expect(all.filter((d) => d.kind === 'SipDN').every((dn) => clusters.some((c) => c.metadata.name === dn.spec.cluster))).toBe(true);
    });
  }

  it('keeps every secret in a Secret: each site requires references, DN passwords and agent tokens are references', () => {
    for (const file of ['one-site.yaml', 'two-sites.yaml']) {
      const all = docs(file);
      for (const cluster of all.filter((d) => d.kind === 'SipCluster')) {
        expect(cluster.spec.security, `${file} ${cluster.metadata.name}`).toEqual({ requireSecretRefs: true });
        expect((cluster.spec.gateway as { tokens?: unknown; tokensSecret?: string }).tokens, file).toBeUndefined();
        expect((cluster.spec.gateway as { tokensSecret?: string }).tokensSecret, file).toMatch(/-agent-tokens$/);
      }
      const extensions = all.filter((d) => d.kind === 'SipDN' && d.spec.type === 'Extension');
      expect(extensions.length, file).toBeGreaterThan(0);
      for (const dn of extensions) expect(dn.spec.options?.password, `${file} ${dn.metadata.name}`).toEqual({ secretKeyRef: { name: expect.stringMatching(/-sip-passwords$/), key: dn.spec.number } });
      expect(readFileSync(path.join(dir, file), 'utf8')).not.toMatch(/password:\s*\{\s*value|-secret\b/);
    }
  });

  it('two-sites.yaml joins the sites with inter-trunk DNs without music, each pointing at the other site’s SIP Service', async () => {
    const all = docs('two-sites.yaml');
    const api = await emulator();
    await applyAll(api, all);
    const trunks = all.filter((d) => d.kind === 'SipDN' && d.spec.options?.['sip-server-inter-trunk'] === true);
    expect(trunks.map((t) => t.spec.cluster).sort()).toEqual(['site-a', 'site-b']);
    for (const trunk of trunks) {
      expect(trunk.spec.type).toBe('Trunk');
      expect(trunk.spec.options?.['sip-enable-moh']).toBe(false);
      const peer = trunk.spec.cluster === 'site-a' ? 'site-b' : 'site-a';
      const peerCluster = api.get('sip.huddle.dev/v1alpha1', 'SipCluster', 'telephony', peer) as unknown as SipClusterResource;
      const sipService = desiredObjects(peerCluster, { defaultNatsUrl: 'nats://unused:4222', serviceMonitor: false }, []).find((o) => o.kind === 'Service' && o.metadata?.name === `${peer}-sip`);
      expect(sipService, `${peer}-sip Service`).toBeDefined();
      expect(trunk.spec.options?.contact).toBe(`sip:${peer}-sip.telephony.svc.cluster.local:5060`);
    }
  });
});
