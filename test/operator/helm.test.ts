/** The operator's Helm chart through the real helm binary, every rendered object validated. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { MANAGED_KINDS } from '../../operator/desired.js';
import { helm } from './helm.js';
import { validateK8sObjects } from './k8s-models.js';

const CHART = 'charts/huddle-operator';

interface Rendered {
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

async function template(args: string[]): Promise<Rendered[]> {
  const r = await helm(['template', 'huddle', CHART, '--namespace', 'huddle-system', '--include-crds', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Rendered | null)
    .filter((d): d is Rendered => d !== null);
}

const everything = ['--set', 'serviceMonitor.enabled=true', '--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true'];

describe('charts/huddle-operator', () => {
  it('passes helm lint --strict, with defaults and with every option on', async () => {
    for (const args of [[], everything, ['--set', 'watchNamespaces={telephony}'], ['--set', 'clusterWide=true', '--set', 'networkPolicy.nats.enabled=true']]) {
      const r = await helm(['lint', '--strict', CHART, ...args]);
      expect(r.stdout + r.stderr, args.join(' ')).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      expect(r.code).toBe(0);
    }
  });

  it('renders objects that kubernetes-models accepts, the CRDs included', async () => {
    const objects = await template(everything);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'Role/huddle-huddle-operator',
        'RoleBinding/huddle-huddle-operator',
        'NetworkPolicy/huddle-huddle-operator',
        'ConfigMap/huddle-huddle-operator-dashboards',
        'CustomResourceDefinition/sipclusters.sip.huddle.dev',
        'CustomResourceDefinition/sipdns.sip.huddle.dev',
        'Deployment/huddle-huddle-operator',
        'PrometheusRule/huddle-huddle-operator',
        'Role/huddle-huddle-operator-leader-election',
        'RoleBinding/huddle-huddle-operator-leader-election',
        'Service/huddle-huddle-operator-metrics',
        'ServiceAccount/huddle-huddle-operator',
        'ServiceMonitor/huddle-huddle-operator',
      ].sort(),
    );
    expect(await validateK8sObjects(objects)).toEqual([]);
    const clusterWide = await template([...everything, '--set', 'clusterWide=true', '--set', 'networkPolicy.nats.enabled=true']);
    expect(clusterWide.filter((o) => /Cluster|NetworkPolicy/.test(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/huddle-huddle-operator',
      'ClusterRoleBinding/huddle-huddle-operator',
      'NetworkPolicy/huddle-huddle-operator',
      'NetworkPolicy/huddle-huddle-operator-nats-clients',
    ]);
    expect(await validateK8sObjects(clusterWide)).toEqual([]);
  });

  it('alerts on rtpengine down, no ready signaling and the T-Library error rate; ships a dashboard that parses', async () => {
    const objects = await template(everything);
    const rule = objects.find((o) => o.kind === 'PrometheusRule') as { spec: { groups: { rules: { alert: string; expr: string }[] }[] } } | undefined;
    const alerts = rule?.spec.groups.flatMap((g) => g.rules) ?? [];
    expect(alerts.map((a) => a.alert)).toEqual(expect.arrayContaining(['HuddleRtpengineDown', 'HuddleNoReadySignaling', 'HuddleTLibErrorRate']));
    expect(alerts.find((a) => a.alert === 'HuddleRtpengineDown')?.expr).toContain('huddle_media_rtpengine_up');
    expect(alerts.find((a) => a.alert === 'HuddleTLibErrorRate')?.expr).toContain('huddle_tlib_requests_total');
    const dashboards = objects.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> } | undefined;
    const dashboard = JSON.parse(dashboards?.data['huddle.json'] ?? '{}') as { panels: { targets: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const metric of ['huddle_calls_active', 'huddle_conferences_active', 'huddle_listen_disconnects_total', 'huddle_media_mixer_tick_lateness_seconds_bucket'])
      expect(exprs).toContain(metric);
    expect(dashboards?.data['huddle.json']).toBe(readFileSync(`${CHART}/dashboards/huddle.json`, 'utf8'));
  });

  it('grants least privilege: namespaced RBAC unless clusterWide, delete only on the kinds the operator renders, no secrets anywhere', async () => {
    // Exactly the kinds the operator renders (and prunes when no longer desired).
    const plural = (kind: string) => kind.toLowerCase().replace(/y$/, 'ie') + 's';
    const deletable = MANAGED_KINDS.map(({ apiVersion, kind }) => `${apiVersion.includes('/') ? apiVersion.split('/')[0] : ''}/${plural(kind)}`).sort();
    expect(deletable).toEqual([
      '/configmaps',
      '/services',
      'apps/deployments',
      'apps/statefulsets',
      'monitoring.coreos.com/servicemonitors',
      'networking.k8s.io/networkpolicies',
      'policy/poddisruptionbudgets',
    ]);
    for (const { args, clusterWide } of [
      { args: ['--set', 'watchNamespaces={telephony}'], clusterWide: false },
      { args: [], clusterWide: false },
      { args: everything, clusterWide: false },
      { args: [...everything, '--set', 'clusterWide=true'], clusterWide: true },
    ]) {
      const objects = await template(args);
      expect(objects.some((o) => o.kind === 'ClusterRole'), args.join(' ')).toBe(clusterWide);
      const roles = objects.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole') as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
      const rules = roles.flatMap((r) => r.rules);
      const withDelete = rules.filter((r) => r.verbs.includes('delete')).flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`)));
      expect([...new Set(withDelete)].sort(), args.join(' ')).toEqual(deletable);
      expect(rules.flatMap((r) => [...r.verbs, ...r.resources, ...r.apiGroups])).not.toContain('*');
      expect(rules.flatMap((r) => r.resources)).not.toContain('secrets');
      if (!clusterWide)
        expect(objects.find((o) => o.kind === 'Role' && o.metadata.name === 'huddle-huddle-operator')?.metadata.namespace).toBe(args.includes('watchNamespaces={telephony}') ? 'telephony' : 'huddle-system');
    }
  });

  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
  /** What operator/ calls: informers list+watch, apply.ts get/create/patch, prune.ts list/delete, finalizer and status updates, Events. */
  const operatorRules = (serviceMonitor: boolean): Rule[] => [
    { apiGroups: ['sip.huddle.dev'], resources: ['sipclusters'], verbs: ['list', 'watch', 'update'] },
    { apiGroups: ['sip.huddle.dev'], resources: ['sipdns'], verbs: ['list', 'watch'] },
    { apiGroups: ['sip.huddle.dev'], resources: ['sipclusters/status', 'sipdns/status'], verbs: ['update'] },
    { apiGroups: ['sip.huddle.dev'], resources: ['sipclusters/finalizers'], verbs: ['update'] },
    { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
    { apiGroups: [''], resources: ['services', 'configmaps'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
    { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    { apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors'], verbs: ['list', 'delete'] },
    ...(serviceMonitor ? [{ apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors'], verbs: ['get', 'create', 'patch'] }] : []),
  ];
  const env = (objects: Rendered[], name: string) =>
    (objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }).spec.template.spec.containers[0]?.env.find(
      (e) => e.name === name,
    )?.value;

  it('with default values: a Role in the release namespace only, these verbs exactly, the operator watching that namespace', async () => {
    const objects = await template([]);
    expect(objects.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toBe(false);
    const roles = objects.filter((o) => o.kind === 'Role');
    expect(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort()).toEqual(['huddle-system/huddle-huddle-operator', 'huddle-system/huddle-huddle-operator-leader-election']);
    expect((roles.find((r) => r.metadata.name === 'huddle-huddle-operator') as unknown as { rules: Rule[] }).rules).toEqual(operatorRules(false));
    expect((roles.find((r) => r.metadata.name === 'huddle-huddle-operator-leader-election') as unknown as { rules: Rule[] }).rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['huddle-operator'], verbs: ['get', 'update'] },
    ]);
    const binding = objects.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'huddle-huddle-operator') as unknown as { metadata: { namespace: string }; roleRef: { kind: string }; subjects: unknown[] };
    expect(binding).toMatchObject({ metadata: { namespace: 'huddle-system' }, roleRef: { kind: 'Role' }, subjects: [{ kind: 'ServiceAccount', name: 'huddle-huddle-operator', namespace: 'huddle-system' }] });
    expect(env(objects, 'WATCH_NAMESPACE')).toBe('huddle-system');
    expect(env(objects, 'HUDDLE_REQUIRE_SECRET_REFS')).toBe('true');
  });

  it('watchNamespaces: a Role and RoleBinding in each; clusterWide: true a ClusterRole with the same verbs and the operator watching everything', async () => {
    const several = await template(['--set', 'watchNamespaces={telephony,branch}', '--set', 'serviceMonitor.enabled=true']);
    const roles = several.filter((o) => o.kind === 'Role' && o.metadata.name === 'huddle-huddle-operator');
    expect(roles.map((r) => r.metadata.namespace)).toEqual(['telephony', 'branch']);
    for (const r of roles) expect((r as unknown as { rules: Rule[] }).rules).toEqual(operatorRules(true));
    expect(several.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === 'huddle-huddle-operator').map((b) => b.metadata.namespace)).toEqual(['telephony', 'branch']);
    expect(env(several, 'WATCH_NAMESPACE')).toBe('telephony,branch');

    const wide = await template(['--set', 'clusterWide=true']);
    expect((wide.find((o) => o.kind === 'ClusterRole') as unknown as { rules: Rule[] }).rules).toEqual(operatorRules(false));
    expect(wide.find((o) => o.kind === 'ClusterRoleBinding')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'huddle-huddle-operator' } });
    expect(wide.some((o) => o.kind === 'Role' && o.metadata.name === 'huddle-huddle-operator')).toBe(false);
    expect(env(wide, 'WATCH_NAMESPACE')).toBe('');
    const both = await helm(['template', 'huddle', CHART, '--set', 'clusterWide=true', '--set', 'watchNamespaces={telephony}']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/watchNamespaces must be empty with clusterWide: true/);
  });

  it('renders a NetworkPolicy for the operator (metrics from the monitoring namespaces only) and, opted in, one for NATS', async () => {
    const objects = await template([]);
    const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { selector: { matchLabels: Record<string, string> } } };
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    expect(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['huddle-system/huddle-huddle-operator']);
    expect(policies[0]?.spec).toEqual({
      podSelector: { matchLabels: deployment.spec.selector.matchLabels },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 9464 }] }],
    });
    expect((await template(['--set', 'networkPolicy.enabled=false'])).some((o) => o.kind === 'NetworkPolicy')).toBe(false);

    const withNats = await template(['--set', 'networkPolicy.nats.enabled=true', '--set', 'watchNamespaces={telephony}']);
    const nats = withNats.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'huddle-huddle-operator-nats-clients') as unknown as {
      metadata: { namespace: string };
      spec: { podSelector: unknown; ingress: { from: unknown[]; ports?: unknown[] }[] };
    };
    expect(nats.metadata.namespace).toBe('nats');
    expect(nats.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'nats' } });
    expect(nats.spec.ingress).toEqual([
      {
        from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'huddle-system' } }, podSelector: { matchLabels: deployment.spec.selector.matchLabels } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'telephony' } }, podSelector: { matchLabels: { 'app.kubernetes.io/managed-by': 'huddle-operator' } } },
        ],
        ports: [{ protocol: 'TCP', port: 4222 }],
      },
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 8222 }] },
      { from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'nats' } } }] },
    ]);
    expect(await validateK8sObjects(withNats)).toEqual([]);
  });

  it('values.schema.json rejects bad values', async () => {
    const r = await helm(['template', 'huddle', CHART, '--set', 'replicaCount=two']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/replicaCount/);
    const oldValue = await helm(['template', 'huddle', CHART, '--set', 'watchNamespace=telephony']);
    expect(oldValue.code).not.toBe(0);
    expect(oldValue.stderr).toMatch(/watchNamespace/);
    const nats = await helm(['template', 'huddle', CHART, '--set', 'nats.url=http://nats:4222']);
    expect(nats.code).not.toBe(0);
    expect(nats.stderr).toMatch(/nats/);
  });
});
