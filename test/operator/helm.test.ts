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
    for (const args of [[], everything, ['--set', 'watchNamespace=telephony']]) {
      const r = await helm(['lint', '--strict', CHART, ...args]);
      expect(r.stdout + r.stderr, args.join(' ')).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      expect(r.code).toBe(0);
    }
  });

  it('renders objects that kubernetes-models accepts, the CRDs included', async () => {
    const objects = await template(everything);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ClusterRole/huddle-huddle-operator',
        'ClusterRoleBinding/huddle-huddle-operator',
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

  it('grants least privilege: namespaced RBAC with watchNamespace, delete only on the kinds the operator renders, no secrets anywhere', async () => {
    // Exactly the kinds the operator renders (and prunes when no longer desired); all their plurals are kind + "s".
    const deletable = MANAGED_KINDS.map(({ apiVersion, kind }) => `${apiVersion.includes('/') ? apiVersion.split('/')[0] : ''}/${kind.toLowerCase()}s`).sort();
    expect(deletable).toEqual(['/configmaps', '/services', 'apps/deployments', 'apps/statefulsets', 'monitoring.coreos.com/servicemonitors', 'policy/poddisruptionbudgets']);
    for (const { args, clusterWide } of [
      { args: ['--set', 'watchNamespace=telephony'], clusterWide: false },
      { args: [], clusterWide: true },
      { args: everything, clusterWide: true },
    ]) {
      const objects = await template(args);
      expect(objects.some((o) => o.kind === 'ClusterRole'), args.join(' ')).toBe(clusterWide);
      const roles = objects.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole') as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
      const rules = roles.flatMap((r) => r.rules);
      const withDelete = rules.filter((r) => r.verbs.includes('delete')).flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`)));
      expect([...new Set(withDelete)].sort(), args.join(' ')).toEqual(deletable);
      expect(rules.flatMap((r) => [...r.verbs, ...r.resources, ...r.apiGroups])).not.toContain('*');
      expect(rules.flatMap((r) => r.resources)).not.toContain('secrets');
      if (!clusterWide) expect(objects.find((o) => o.kind === 'Role' && o.metadata.name === 'huddle-huddle-operator')?.metadata.namespace).toBe('telephony');
    }
  });

  it('values.schema.json rejects bad values', async () => {
    const r = await helm(['template', 'huddle', CHART, '--set', 'replicaCount=two']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/replicaCount/);
    const nats = await helm(['template', 'huddle', CHART, '--set', 'nats.url=http://nats:4222']);
    expect(nats.code).not.toBe(0);
    expect(nats.stderr).toMatch(/nats/);
  });
});
