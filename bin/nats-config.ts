/**
 * `npm run nats-config -- <file>...`: the NATS users a platform needs, for the SipClusters in the
 * given files (Kubernetes manifests or npm start config files). Prints an `authorization` block
 * for the NATS server's configuration (one user per component and SipCluster, plus the
 * operator's, each allowed only the subjects common/nats/permissions.ts gives its role) and the
 * kubectl commands that create each user's Secret (spec.nats.users, the chart's
 * nats.credentialsSecret). Passwords are fresh random ones at every run.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { authorizationBlock, permissionsFor, type NatsRole, type NatsSite, type NatsUser } from '../common/nats/permissions.js';

interface ClusterRef extends NatsSite {
  name: string;
  namespace: string;
}

/** Each SipCluster's name, namespace, location and config bucket. */
function clustersIn(file: string): ClusterRef[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string }; spec?: { location?: string; nats?: { configBucket?: string } } } | null)
    .filter((d) => d?.kind === 'SipCluster')
    .map((d) => {
      if (!d?.metadata?.name || !d.spec?.location) throw new Error(`${file}: a SipCluster without metadata.name or spec.location`);
      return { name: d.metadata.name, namespace: d.metadata.namespace ?? 'default', location: d.spec.location, configBucket: d.spec.nats?.configBucket };
    });
}

const COMPONENTS: [NatsRole, 'signaling' | 'mediaController' | 'gateway'][] = [
  ['signaling', 'signaling'],
  ['media-controller', 'mediaController'],
  ['gateway', 'gateway'],
];

const password = () => randomBytes(24).toString('base64url');

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: npm run nats-config -- <SipCluster manifest or config file>...\n');
  process.exit(2);
}
const clusters = files.flatMap(clustersIn);
if (clusters.length === 0) {
  process.stderr.write(`no SipCluster in ${files.join(', ')}\n`);
  process.exit(1);
}
const users: NatsUser[] = [];
const commands: string[] = [];
for (const cluster of clusters) {
  const fields: string[] = [];
  for (const [role, field] of COMPONENTS) {
    const user = `${cluster.name}-${role}`;
    const secret = `${cluster.name}-nats-${role}`;
    const pw = password();
    users.push({ user, password: pw, permissions: permissionsFor(role, cluster) });
    fields.push(`${field}: ${secret}`);
    commands.push(`kubectl -n ${cluster.namespace} create secret generic ${secret} --from-literal=user=${user} --from-literal=password=${pw}`);
  }
  commands.push(`# SipCluster ${cluster.namespace}/${cluster.name}: spec.nats.users: { ${fields.join(', ')} }`);
}
const operatorPassword = password();
users.push({ user: 'huddle-operator', password: operatorPassword, permissions: permissionsFor('config-publisher', ...clusters) });
commands.push(`kubectl -n huddle-system create secret generic huddle-operator-nats --from-literal=user=huddle-operator --from-literal=password=${operatorPassword}`);
commands.push('# chart values: nats.credentialsSecret=huddle-operator-nats');

process.stdout.write(`# NATS server configuration (include it in the server's config file):\n${authorizationBlock(users)}\n# Secrets for the users:\n${commands.join('\n')}\n`);
