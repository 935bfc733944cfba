/**
 * The chart's alerts and dashboard against what our processes export: every metric a rule or a
 * panel names is registered by some component (or is Prometheus' `up` / kube-state-metrics), every
 * alert has a runbook section, and promtool accepts the rules and fires them on the series they
 * are about.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { newRegistry } from '../../common/process/http.js';
import { operatorMetrics } from '../../operator/metrics.js';
import { Site } from '../e2e/site.js';
import { helm } from './helm.js';

const CHART = 'charts/huddle-operator';
const RUNBOOKS = 'docs/runbooks.md';

/** Series that come from Prometheus itself or kube-state-metrics, not from our processes. */
const EXTERNAL = new Set(['up', 'kube_deployment_status_replicas_ready', 'kube_statefulset_status_replicas_ready']);

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

/**
 * What our processes export: a real site (media-controller, signaling and the gateway started as
 * npm start starts them, on real nats-server and rtpengine), and the operator's registry as
 * operator/main.ts builds it (its metrics and the process metrics every component has).
 */
async function exportedMetricNames(): Promise<Set<string>> {
  const site = await Site.start();
  try {
    const operator = newRegistry('operator');
    operatorMetrics(operator);
    const names = new Set<string>();
    for (const registry of [site.registry, operator]) {
      for (const metric of await registry.getMetricsAsJSON()) {
        names.add(metric.name);
        // A histogram is scraped as its _bucket, _sum and _count series; a summary as _sum and _count.
        if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
        if (String(metric.type) === 'summary') for (const suffix of ['_sum', '_count']) names.add(metric.name + suffix);
      }
    }
    return names;
  } finally {
    await site.stop();
  }
}

let exported: Promise<Set<string>> | undefined;
/** One site for the whole file. */
const exportedOnce = () => (exported ??= exportedMetricNames());

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** The metric names a PromQL expression selects: identifiers that are neither functions, keywords, label names nor numbers. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+\w+/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[a-zA-Z_:][\w:]*/gi)) {
    const token = m[0];
    if (/^\d/.test(token) || KEYWORDS.has(token.toLowerCase())) continue;
    if (/^\s*\(/.test(stripped.slice(m.index + token.length))) continue;
    names.add(token);
  }
  return [...names];
}

function missing(exprs: string[], exported: Set<string>): string[] {
  return [...new Set(exprs.flatMap(metricNames))].filter((name) => !exported.has(name) && !EXTERNAL.has(name)).sort();
}

async function rendered(args: string[] = []): Promise<{ groups: RuleGroup[]; dashboardExprs: string[] }> {
  const r = await helm(['template', 'huddle', CHART, '--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; spec?: { groups: RuleGroup[] }; data?: Record<string, string> } | null);
  const rule = objects.find((o) => o?.kind === 'PrometheusRule');
  const dashboards = objects.find((o) => o?.kind === 'ConfigMap' && o.data?.['huddle.json'] !== undefined);
  const dashboard = JSON.parse(dashboards?.data?.['huddle.json'] ?? '{"panels":[]}') as { panels: { targets?: { expr: string }[] }[] };
  return { groups: rule?.spec?.groups ?? [], dashboardExprs: dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)) };
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

describe('alerts and dashboard', () => {
  it('finds the metric names in PromQL, and names the one nobody exports', async () => {
    expect(metricNames('histogram_quantile(0.99, sum by (namespace, le) (rate(huddle_call_setup_seconds_bucket{request="x"}[10m]))) > 1').sort()).toEqual(['huddle_call_setup_seconds_bucket']);
    expect(metricNames('max by (a) (kube_x{d=~".+-signaling"}) < 1 or on (a) up{job="j"} == 0 and bool b_total offset 5m').sort()).toEqual(['b_total', 'kube_x', 'up']);
    const exported = await exportedOnce();
    expect(missing(['sum(rate(huddle_tlib_requests_total[5m])) / sum(rate(huddle_nobody_exports_this_total[5m]))'], exported)).toEqual(['huddle_nobody_exports_this_total']);
    expect(missing(['histogram_quantile(0.5, rate(huddle_media_mixer_tick_lateness_seconds_bucket[1m]))', 'huddle_media_mixer_tick_lateness_seconds_total'], exported)).toEqual([
      'huddle_media_mixer_tick_lateness_seconds_total',
    ]);
  });

  it('uses only metrics some component exports, in every alert and every dashboard panel', async () => {
    const { groups, dashboardExprs } = await rendered();
    const alertExprs = groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(alertExprs.length).toBeGreaterThan(10);
    expect(dashboardExprs.length).toBeGreaterThan(10);
    const exported = await exportedOnce();
    expect(missing(alertExprs, exported)).toEqual([]);
    expect(missing(dashboardExprs, exported)).toEqual([]);
  });

  it('has a scrape-down alert per component, the set-up and ListenDisconnect SLO alerts, and dashboard panels for both histograms', async () => {
    const { groups, dashboardExprs } = await rendered();
    const alerts = new Map(groups.flatMap((g) => g.rules.map((r) => [r.alert, r] as const)));
    for (const component of ['signaling', 'media', 'gateway', 'edge', 'operator'])
      expect([...alerts.values()].some((r) => r.expr.replace(/\s/g, '') === `up{huddle_component="${component}"}==0`), component).toBe(true);
    expect(alerts.get('HuddleCallSetupSlow')?.expr).toMatch(/histogram_quantile\(0\.99, .*huddle_call_setup_seconds_bucket/);
    expect(alerts.get('HuddleListenDisconnectSlow')?.expr).toMatch(/huddle_tlib_request_duration_seconds_bucket\{request="ListenDisconnect"\}/);
    expect(dashboardExprs.some((e) => e.includes('huddle_call_setup_seconds_bucket'))).toBe(true);
    expect(dashboardExprs.some((e) => e.includes('huddle_tlib_request_duration_seconds_bucket') && e.includes('ListenDisconnect'))).toBe(true);
  });

  it('gives every alert a runbook_url to its own section of docs/runbooks.md, which says what it means, what to check and what to do', async () => {
    const runbooks = readFileSync(RUNBOOKS, 'utf8');
    const sections = new Map(runbooks.split(/^## /m).slice(1).map((s) => [s.slice(0, s.indexOf('\n')).trim(), s] as const));
    for (const args of [[], ['--set', 'prometheusRule.runbookBaseUrl=https://wiki.example/huddle']]) {
      const { groups } = await rendered(args);
      const base = args.length === 0 ? 'https://github.com/huddle-sip/huddle/blob/main/docs/runbooks.md' : 'https://wiki.example/huddle';
      for (const rule of groups.flatMap((g) => g.rules)) {
        expect(rule.annotations.runbook_url, rule.alert).toBe(`${base}#${rule.alert.toLowerCase()}`);
        const section = sections.get(rule.alert);
        expect(section, `${RUNBOOKS} has no "## ${rule.alert}"`).toBeDefined();
        for (const part of ['**What it means**', '**What to check**', '**What to do**']) expect(section, `${rule.alert}: ${part}`).toContain(part);
        for (const metric of metricNames(rule.expr).filter((m) => !EXTERNAL.has(m))) expect(section, `${rule.alert} runbook names ${metric}`).toContain(metric.replace(/_(bucket|sum|count)$/, ''));
      }
    }
  });

  it('passes promtool check rules, and promtool fires the scrape-down, SLO and lost-CDR alerts on their series', async () => {
    const { groups } = await rendered(['--set', 'prometheusRule.callSetupP99Seconds=1']);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-rules-'));
    try {
      writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
      const check = await run('promtool', ['check', 'rules', 'rules.yaml'], dir);
      expect(check.out).toMatch(/SUCCESS: \d+ rules found/);
      expect(check.code, check.out).toBe(0);
      // 10 set-ups a minute: all under 0.5 s in namespace fast, all between 1 and 2.5 s in slow (p99 interpolated: 1 + 1.5 × 0.99 = 2.485 s);
      // ListenDisconnects in slow between 0.5 and 1 s (p99 0.995 s).
      const bucket = (ns: string, le: string, perMinute: number) => ({ series: `huddle_call_setup_seconds_bucket{namespace="${ns}",le="${le}"}`, values: `0+${perMinute}x40` });
      const ld = (le: string, perMinute: number) => ({ series: `huddle_tlib_request_duration_seconds_bucket{namespace="slow",request="ListenDisconnect",le="${le}"}`, values: `0+${perMinute}x40` });
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              { series: 'up{huddle_component="media",namespace="telephony",pod="site-a-media-x",job="j"}', values: '0x10' },
              { series: 'up{huddle_component="edge",namespace="telephony",pod="site-a-sip-edge-x",job="j"}', values: '1x10' },
              ...['0.5', '1', '2.5', '+Inf'].map((le) => bucket('fast', le, 10)),
              ...[bucket('slow', '0.5', 0), bucket('slow', '1', 0), bucket('slow', '2.5', 10), bucket('slow', '+Inf', 10)],
              ...['fast', 'slow'].map((ns) => ({ series: `huddle_call_setup_seconds_count{namespace="${ns}"}`, values: '0+10x40' })),
              ...[ld('0.25', 0), ld('0.5', 0), ld('1', 10), ld('+Inf', 10)],
              { series: 'huddle_tlib_request_duration_seconds_count{namespace="slow",request="ListenDisconnect"}', values: '0+10x40' },
              // One record lost at minute 3 in telephony; none in fast.
              { series: 'huddle_cdr_not_stored_total{namespace="telephony",reason="failed"}', values: '0 0 0 1x40' },
              { series: 'huddle_cdr_not_stored_total{namespace="fast",reason="failed"}', values: '0x40' },
            ],
            alert_rule_test: [
              {
                eval_time: '5m',
                alertname: 'HuddleMediaScrapeDown',
                exp_alerts: [{ exp_labels: { severity: 'critical', huddle_component: 'media', namespace: 'telephony', pod: 'site-a-media-x', job: 'j' }, exp_annotations: expectAnnotations(groups, 'HuddleMediaScrapeDown', { pod: 'site-a-media-x', namespace: 'telephony', job: 'j' }) }],
              },
              { eval_time: '5m', alertname: 'HuddleSipEdgeScrapeDown', exp_alerts: [] },
              { eval_time: '30m', alertname: 'HuddleCallSetupSlow', exp_alerts: [{ exp_labels: { severity: 'warning', namespace: 'slow' }, exp_annotations: expectAnnotations(groups, 'HuddleCallSetupSlow', { namespace: 'slow' }, '2.485s') }] },
              {
                eval_time: '5m',
                alertname: 'HuddleCdrNotStored',
                exp_alerts: [{ exp_labels: { severity: 'warning', namespace: 'telephony', reason: 'failed' }, exp_annotations: expectAnnotations(groups, 'HuddleCdrNotStored', { namespace: 'telephony', reason: 'failed' }) }],
              },
              // Ten minutes after the loss the alert clears by itself.
              { eval_time: '20m', alertname: 'HuddleCdrNotStored', exp_alerts: [] },
              { eval_time: '30m', alertname: 'HuddleListenDisconnectSlow', exp_alerts: [{ exp_labels: { severity: 'warning', namespace: 'slow' }, exp_annotations: expectAnnotations(groups, 'HuddleListenDisconnectSlow', { namespace: 'slow' }, '995ms') }] },
            ],
          },
        ],
      };
      writeFileSync(path.join(dir, 'tests.yaml'), stringify(tests));
      const test = await run('promtool', ['test', 'rules', 'tests.yaml'], dir);
      expect(test.out).toContain('SUCCESS');
      expect(test.code, test.out).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** An alert's annotations as Prometheus expands them for these labels and value. */
function expectAnnotations(groups: RuleGroup[], alert: string, labels: Record<string, string>, value = ''): Record<string, string> {
  const rule = groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  if (!rule) throw new Error(`no alert ${alert}`);
  const expand = (text: string) =>
    text
      .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, l: string) => labels[l] ?? '')
      .replace(/\{\{ \$value \| humanizeDuration \}\}/g, value);
  return Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, expand(v)]));
}
