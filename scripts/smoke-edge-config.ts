/**
 * The SIP edge's files as the operator puts them in its ConfigMap (operator/edge.ts), for the
 * smoke test of the edge image: the smoke site with TLS and WebSocket (wss) listeners and a test certificate, the
 * pod's interface and the Services' names read as loopback. `npx tsx scripts/smoke-edge-config.ts DIR`
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../common/config/load.js';
import { edgeFiles } from '../operator/edge.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: smoke-edge-config.ts DIR');
const smoke = path.join(import.meta.dirname, '../images/smoke');
const site = readFileSync(path.join(smoke, 'site.yaml'), 'utf8')
  .replaceAll(/@[A-Z_]+@/g, '5070')
  .replace('      - { transport: udp, host: 127.0.0.1, port: 5070 }', '      - { transport: udp, host: 127.0.0.1, port: 5070 }\n      - { transport: wss, host: 127.0.0.1, port: 8443 }\n    tls: { certFile: /etc/huddle/sip-tls/tls.crt, keyFile: /etc/huddle/sip-tls/tls.key, port: 5061 }');
const config = parseConfig(site, 'site.yaml', smoke);
const cluster = { ...config.cluster, metadata: { ...config.cluster.metadata, namespace: 'telephony', uid: 'smoke' } } as Parameters<typeof edgeFiles>[0];
const files = edgeFiles(cluster, { namespace: 'telephony', edge: 'smoke-sip-edge', internal: 'smoke-sip-edge-internal', signaling: 'smoke-signaling' });
for (const [name, body] of Object.entries(files) as [string, string][]) {
  writeFileSync(path.join(dir, name), body.replaceAll(':eth0:', ':127.0.0.1:').replaceAll('smoke-sip-edge-internal.telephony.svc.cluster.local', '127.0.0.1'));
}
