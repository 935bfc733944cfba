/** SipCluster / SipDN resources for operator tests, defaulted by the same schema the CRDs carry. */
import { validateDocument } from '../../common/config/validate.js';
import { API_GROUP_VERSION, type SipClusterResource, type SipDNResource } from '../../operator/resources.js';

export function testCluster(name = 'site-a', namespace = 'telephony', spec: Record<string, unknown> = {}): SipClusterResource {
  const doc = {
    apiVersion: API_GROUP_VERSION,
    kind: 'SipCluster',
    metadata: { name, namespace, uid: `uid-${name}`, generation: 1 },
    spec: { location: 'SiteA', nats: { url: 'nats://nats.telephony:4222' }, ...spec },
  };
  const problems = validateDocument('SipCluster', doc);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return doc as unknown as SipClusterResource;
}

export function testDn(cluster: string, number: string, namespace = 'telephony', spec: Record<string, unknown> = {}): SipDNResource {
  const doc = {
    apiVersion: API_GROUP_VERSION,
    kind: 'SipDN',
    metadata: { name: `${cluster}-${number}`.toLowerCase(), namespace, uid: `uid-${cluster}-${number}` },
    spec: { cluster, number, type: 'Extension', ...spec },
  };
  const problems = validateDocument('SipDN', doc);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return doc as unknown as SipDNResource;
}
