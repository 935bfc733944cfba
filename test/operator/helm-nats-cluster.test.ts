/**
 * The chart's HA setting (issue 16 point 7): nats.cluster renders a 3-server NATS JetStream
 * cluster (StatefulSet with routes and a file store per server, PodDisruptionBudget) and points the
 * operator at it with bucket replicas 3. The rendered nats.conf is checked by the real nats-server.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigMap, Service } from 'kubernetes-types/core/v1.js';
import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { authorizationBlock, newUsers } from '../../common/nats/permissions.js';
import { findBinary } from '../../common/supervisor/child.js';
import { helm } from './helm.js';
import { validateK8sObjects } from './k8s-models.js';

interface Rendered {
  kind?: string;
  metadata?: { name?: string };
}

async function render(args: string[]): Promise<Rendered[]> {
  const r = await helm(['template', 'huddle', 'charts/huddle-operator', '--namespace', 'huddle-system', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Rendered | null)
    .filter((d): d is Rendered => d !== null);
}

function one<T>(objects: Rendered[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind}/${name} among ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found as T;
}

const NAME = 'huddle-huddle-operator-nats';
const HA = ['--set', 'nats.cluster.enabled=true', '--set', 'nats.cluster.authSecret=huddle-nats-auth'];

describe('charts/huddle-operator: nats.cluster, the 3-server NATS of the HA setting', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('passes helm lint --strict', async () => {
    const r = await helm(['lint', '--strict', 'charts/huddle-operator', ...HA]);
    expect(r.stdout + r.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders a StatefulSet of 3 routed servers with file storage, its Services and a PodDisruptionBudget, all valid', async () => {
    const objects = await render(HA);
    expect(await validateK8sObjects(objects)).toEqual([]);
    const sts = one<StatefulSet>(objects, 'StatefulSet', NAME);
    expect(sts.spec!.replicas).toBe(3);
    expect(sts.spec!.serviceName).toBe(`${NAME}-headless`);
    expect(sts.spec!.podManagementPolicy).toBe('Parallel');
    expect(sts.spec!.volumeClaimTemplates![0]!.spec!.resources!.requests!.storage).toBe('10Gi');
    const pod = sts.spec!.template.spec!;
    expect(pod.containers[0]!.args).toEqual(['--config', '/etc/nats/nats.conf']);
    expect(pod.containers[0]!.readinessProbe!.httpGet!.path).toBe('/healthz');
    expect(pod.containers[0]!.volumeMounts!.map((m) => m.mountPath).sort()).toEqual(['/data', '/etc/nats', '/var/run/nats']);
    expect(pod.volumes!.find((v) => v.name === 'config')!.projected!.sources!.map((s) => s.configMap?.name ?? s.secret?.name)).toEqual([`${NAME}-config`, 'huddle-nats-auth']);
    expect(pod.topologySpreadConstraints![0]!.topologyKey).toBe('kubernetes.io/hostname');

    const headless = one<Service>(objects, 'Service', `${NAME}-headless`);
    expect(headless.spec!.clusterIP).toBe('None');
    expect(headless.spec!.publishNotReadyAddresses).toBe(true);
    expect(one<Service>(objects, 'Service', NAME).spec!.ports!.map((p) => p.port)).toEqual([4222]);
    const pdb = one<PodDisruptionBudget>(objects, 'PodDisruptionBudget', NAME);
    expect(pdb.spec!.maxUnavailable).toBe(1);
    expect(pdb.spec!.selector!.matchLabels).toEqual(sts.spec!.selector.matchLabels);

    // The NATS pods are not the operator's: its Deployment (and its metrics Service) select others.
    const operator = one<Deployment>(objects, 'Deployment', 'huddle-huddle-operator');
    const natsLabels = sts.spec!.template.metadata!.labels!;
    expect(Object.entries(operator.spec!.selector.matchLabels!).every(([k, v]) => natsLabels[k] === v)).toBe(false);

    const config = one<ConfigMap>(objects, 'ConfigMap', `${NAME}-config`).data!['nats.conf']!;
    for (let i = 0; i < 3; i++) expect(config).toContain(`nats://${NAME}-${i}.${NAME}-headless.huddle-system.svc:6222`);
    expect(config).toMatch(/jetstream \{\s*store_dir: \/data/);
    expect(config).toContain('include ./auth/auth.conf');
  });

  it('points the operator at the cluster, with bucket replicas 3', async () => {
    const operator = one<Deployment>(await render(HA), 'Deployment', 'huddle-huddle-operator');
    const env = Object.fromEntries(operator.spec!.template.spec!.containers[0]!.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ HUDDLE_NATS_URL: `nats://${NAME}.huddle-system.svc:4222`, HUDDLE_NATS_REPLICAS: '3' });
  });

  it('renders a nats.conf that nats-server accepts, with the users of npm run nats-config', async () => {
    const config = one<ConfigMap>(await render(HA), 'ConfigMap', `${NAME}-config`).data!['nats.conf']!;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-nats-conf-'));
    dirs.push(dir);
    mkdirSync(path.join(dir, 'auth'));
    writeFileSync(path.join(dir, 'nats.conf'), config);
    writeFileSync(path.join(dir, 'auth/auth.conf'), authorizationBlock(newUsers({ location: 'SiteA', configBucket: 'huddle-config' })));
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(findBinary('nats-server', 'nats-server'), ['-t', '--config', path.join(dir, 'nats.conf')], { env: { ...process.env, POD_NAME: `${NAME}-0` }, timeout: 10_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, output: stdout + stderr }),
      );
    });
    expect(result.output).toMatch(/configuration file .* is valid/);
    expect(result.code).toBe(0);
  });

  it('renders no NATS and no bucket replicas by default (an external NATS at nats.url)', async () => {
    const objects = await render([]);
    expect(objects.filter((o) => o.metadata?.name?.startsWith(NAME))).toEqual([]);
    const env = one<Deployment>(objects, 'Deployment', 'huddle-huddle-operator').spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'HUDDLE_NATS_URL')?.value).toBe('nats://nats.nats.svc:4222');
    expect(env.some((e) => e.name === 'HUDDLE_NATS_REPLICAS')).toBe(false);
  });

  it('refuses a cluster of an even size', async () => {
    const r = await helm(['template', 'huddle', 'charts/huddle-operator', '--set', 'nats.cluster.enabled=true', '--set', 'nats.cluster.replicas=2']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nats\.cluster\.replicas/);
  });
});
