/** operator/main.ts as a process: kubeconfig from the environment, ops endpoints, leadership, SIGTERM drain. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConfigBucket } from '../../common/nats/config-kv.js';
import { connectNats } from '../../common/nats/connect.js';
import { ConfigKeys } from '../../common/nats/subjects.js';
import { freePort } from '../../common/supervisor/ports.js';
import { startTestNats, type TestNats } from '../support/infra.js';
import { FakeApiServer } from './apiserver.js';
import { crClient, NS, waitFor } from './harness.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('operator/main.ts', () => {
  let nats: TestNats;
  let api: FakeApiServer;
  let child: ChildProcess | undefined;
  let dir: string;
  let stderr = '';

  beforeAll(async () => {
    // The operator's own NATS connection takes credentials (a user of role config-publisher).
    nats = await startTestNats({ sites: [{ location: 'SiteM' }] });
    api = await new FakeApiServer().start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-operator-main-'));
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child?.once('exit', r));
    }
    await api?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /readyz and /metrics, leads, reconciles, and gives the Lease up on SIGTERM', async () => {
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeConfig(NS).exportConfig());
    const metricsPort = await freePort();
    const passwordFile = path.join(dir, 'nats-password');
    writeFileSync(passwordFile, nats.client('config-publisher').password!, { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KUBECONFIG: kubeconfig,
      HUDDLE_NATS_URL: nats.url,
      HUDDLE_NATS_USER: 'config-publisher',
      HUDDLE_NATS_PASSWORD_FILE: passwordFile,
      POD_NAME: 'operator-main',
      POD_NAMESPACE: NS,
      WATCH_NAMESPACE: NS,
      HUDDLE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'warn',
    };
    delete env.KUBERNETES_SERVICE_HOST;
    child = spawn(process.execPath, ['--import', 'tsx', 'operator/main.ts'], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const base = `http://127.0.0.1:${metricsPort}`;
    await waitFor('/readyz 200', async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 30_000);
    await waitFor('the Lease held by operator-main', () => (api.get('coordination.k8s.io/v1', 'Lease', NS, 'huddle-operator')?.spec as { holderIdentity?: string } | undefined)?.holderIdentity === 'operator-main');

    await crClient(api).create('sipclusters', { apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipCluster', metadata: { name: 'site-m' }, spec: { location: 'SiteM' } });
    await waitFor('site-m signaling Deployment', () => api.get('apps/v1', 'Deployment', NS, 'site-m-signaling'));
    const metrics = await waitFor('a successful reconcile in /metrics', async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return /huddle_operator_reconciles_total\{result="success",component="operator"\} [1-9]/.test(text) && text;
    });
    expect(metrics).toMatch(/huddle_operator_leader\{component="operator"\} 1/);
    const reader = await connectNats(nats.url, 'reader', undefined, nats.client('gateway'));
    expect((await (await openConfigBucket(reader)).get(ConfigKeys.cluster('site-m')))?.operation).toBe('PUT');
    await reader.close();

    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    expect((api.get('coordination.k8s.io/v1', 'Lease', NS, 'huddle-operator')?.spec as { holderIdentity?: string }).holderIdentity).toBeUndefined();
  });
});
