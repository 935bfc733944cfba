/** The chart gives the operator's own NATS connection its credentials and TLS files (issue 15, point 4). */
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { helm } from './helm.js';
import { validateK8sObjects } from './k8s-models.js';

async function operatorDeployment(args: string[]): Promise<{ deployment: Deployment; objects: unknown[] }> {
  const r = await helm(['template', 'huddle', 'charts/huddle-operator', '--namespace', 'huddle-system', ...args]);
  expect(r.stderr).toBe('');
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as { kind?: string } | null)
    .filter((d) => d !== null);
  return { deployment: objects.find((o) => o.kind === 'Deployment') as Deployment, objects };
}

describe('charts/huddle-operator: NATS credentials', () => {
  it("mounts the operator's NATS user, CA and client certificate when given, and validates", async () => {
    const { deployment, objects } = await operatorDeployment([
      '--set', 'nats.url=tls://nats.nats.svc:4222',
      '--set', 'nats.credentialsSecret=huddle-operator-nats',
      '--set', 'nats.tls.caSecret=nats-ca',
      '--set', 'nats.tls.clientSecret=huddle-operator-nats-client',
    ]);
    expect(await validateK8sObjects(objects)).toEqual([]);
    const pod = deployment.spec!.template.spec!;
    const env = pod.containers[0]!.env!;
    expect(env.find((e) => e.name === 'HUDDLE_NATS_USER')?.valueFrom?.secretKeyRef).toEqual({ name: 'huddle-operator-nats', key: 'user' });
    expect(Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]))).toMatchObject({
      HUDDLE_NATS_URL: 'tls://nats.nats.svc:4222',
      HUDDLE_NATS_PASSWORD_FILE: '/etc/huddle/nats-user/password',
      HUDDLE_NATS_CA: '/etc/huddle/nats-ca/ca.crt',
      HUDDLE_NATS_CERT: '/etc/huddle/nats-client/tls.crt',
      HUDDLE_NATS_KEY: '/etc/huddle/nats-client/tls.key',
    });
    expect(pod.volumes?.map((v) => v.secret?.secretName)).toEqual(['huddle-operator-nats', 'nats-ca', 'huddle-operator-nats-client']);
    expect(pod.containers[0]!.volumeMounts?.map((m) => m.mountPath)).toEqual(['/etc/huddle/nats-user', '/etc/huddle/nats-ca', '/etc/huddle/nats-client']);
  });

  it('renders no NATS credentials with the defaults', async () => {
    const { deployment } = await operatorDeployment([]);
    expect(deployment.spec!.template.spec!.volumes).toBeUndefined();
    expect(deployment.spec!.template.spec!.containers[0]!.env!.map((e) => e.name).filter((n) => n.startsWith('HUDDLE_NATS_'))).toEqual(['HUDDLE_NATS_URL']);
  });
});
