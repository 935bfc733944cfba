/**
 * Reconcile as a pure function: a SipCluster and the SipDNs in its namespace in, everything the
 * operator should make true out — the owned Kubernetes objects and the config documents for the
 * NATS KV bucket — plus the DNs it had to refuse and why.
 */
import type { SipCluster, SipDN } from '../common/config/schema.js';
import { desiredObjects, type DesiredObject, type OperatorSettings } from './desired.js';
import { toConfigDocument, type SipClusterResource, type SipDNResource } from './resources.js';

/** Why a SipDN is not published: the reason of its Ready=False condition. */
export type DnRefusal = 'DuplicateNumber' | 'InlineSecretRefused';

export interface ClusterPlan {
  objects: DesiredObject[];
  /** What publishConfig writes: signaling reads options and DNs from here at the moment of use. */
  config: { cluster: SipCluster; dns: SipDN[] };
  accepted: SipDNResource[];
  rejected: { dn: SipDNResource; refusal: DnRefusal; reason: string }[];
  /** What the Secret-reference policy kept out of the published SipCluster, for its Ready condition. */
  refused?: string;
}

function age(dn: SipDNResource): string {
  return `${dn.metadata.creationTimestamp ? String(dn.metadata.creationTimestamp as unknown) : ''}/${dn.metadata.name}`;
}

/**
 * The DNs bound to this cluster (spec.cluster), oldest first; a number claimed twice goes to the
 * oldest SipDN. When Secret references are required (the SipCluster's spec.security or the
 * operator's policy), a DN with an inline password is refused and inline agent tokens are left out:
 * neither reaches the KV bucket.
 */
export function planCluster(cluster: SipClusterResource, allDns: SipDNResource[], settings: OperatorSettings): ClusterPlan {
  const requireSecretRefs = cluster.spec.security.requireSecretRefs || settings.requireSecretRefs === true;
  const bound = allDns
    .filter((dn) => dn.metadata.namespace === cluster.metadata.namespace && dn.spec.cluster === cluster.metadata.name && !dn.metadata.deletionTimestamp)
    .sort((a, b) => age(a).localeCompare(age(b)));
  const accepted: SipDNResource[] = [];
  const rejected: ClusterPlan['rejected'] = [];
  const owner = new Map<string, string>();
  for (const dn of bound) {
    const first = owner.get(dn.spec.number);
    if (requireSecretRefs && dn.spec.options.password?.value !== undefined)
      rejected.push({ dn, refusal: 'InlineSecretRefused', reason: 'Secret references are required: give the password as options.password.secretKeyRef, not options.password.value' });
    else if (first) rejected.push({ dn, refusal: 'DuplicateNumber', reason: `number ${dn.spec.number} is already configured by SipDN ${first}` });
    else {
      owner.set(dn.spec.number, dn.metadata.name);
      accepted.push(dn);
    }
  }
  const published = toConfigDocument(cluster) as SipCluster;
  const inlineTokens = requireSecretRefs && cluster.spec.gateway.tokens.length > 0;
  if (inlineTokens) published.spec = { ...published.spec, gateway: { ...published.spec.gateway, tokens: [] } };
  if (published.spec.nats.replicas === undefined && settings.defaultNatsReplicas !== undefined)
    published.spec = { ...published.spec, nats: { ...published.spec.nats, replicas: settings.defaultNatsReplicas } };
  const passwordSecrets = accepted.flatMap((dn) => (dn.spec.options.password?.secretKeyRef ? [dn.spec.options.password.secretKeyRef.name] : []));
  return {
    objects: desiredObjects(cluster, settings, passwordSecrets),
    config: { cluster: published, dns: accepted.map((dn) => toConfigDocument(dn) as SipDN) },
    accepted,
    rejected,
    ...(inlineTokens ? { refused: 'Secret references are required: the inline spec.gateway.tokens are not published; give them in spec.gateway.tokensSecret' } : {}),
  };
}
