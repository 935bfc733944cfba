import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Container, PodSpec } from 'kubernetes-types/core/v1.js';
import { describe, expect, it } from 'vitest';
import { validateK8sObjects } from '../test/operator/k8s-models.js';
import { testCluster } from '../test/operator/fixtures.js';
import type { OperatorSettings } from './desired.js';
import { planCluster } from './plan.js';

const settings: OperatorSettings = { defaultNatsUrl: 'tls://operator-nats:4222', serviceMonitor: false };

describe('NATS identity of each workload', () => {
  const cluster = testCluster('site-a', 'telephony', {
    nats: { users: { signaling: 'nats-signaling', mediaController: 'nats-media', gateway: 'nats-gateway' }, tls: { caSecret: 'nats-ca', clientSecret: 'nats-client' } },
  });
  const plan = planCluster(cluster, [], settings);
  const pods = plan.objects
    .filter((o): o is Deployment | StatefulSet => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => [o.metadata?.name ?? '', o.spec?.template.spec as PodSpec] as const);
  const platform = (pod: PodSpec): Container => pod.containers.find((c) => c.name !== 'rtpengine')!;

  it("gives each workload its own NATS user's Secret, and no other's", async () => {
    const users = Object.fromEntries(pods.map(([name, pod]) => [name, platform(pod).env?.find((e) => e.name === 'HUDDLE_NATS_USER')?.valueFrom?.secretKeyRef?.name]));
    expect(users).toEqual({ 'site-a-signaling': 'nats-signaling', 'site-a-media': 'nats-media', 'site-a-gateway': 'nats-gateway' });
    for (const [name, pod] of pods) {
      const secrets = (pod.volumes ?? []).flatMap((v) => (v.secret?.secretName ? [v.secret.secretName] : []));
      expect(secrets.filter((s) => s.startsWith('nats-') && !['nats-ca', 'nats-client'].includes(s)), name).toEqual([users[name]]);
      const env = Object.fromEntries((platform(pod).env ?? []).map((e) => [e.name, e.value]));
      expect(env, name).toMatchObject({
        HUDDLE_NATS_PASSWORD_FILE: '/etc/huddle/nats-user/password',
        HUDDLE_NATS_CA: '/etc/huddle/nats-ca/ca.crt',
        HUDDLE_NATS_CERT: '/etc/huddle/nats-client/tls.crt',
        HUDDLE_NATS_KEY: '/etc/huddle/nats-client/tls.key',
      });
      for (const dir of ['/etc/huddle/nats-user', '/etc/huddle/nats-ca', '/etc/huddle/nats-client']) expect(platform(pod).volumeMounts?.some((m) => m.mountPath === dir && m.readOnly), `${name} ${dir}`).toBe(true);
    }
    expect(await validateK8sObjects(plan.objects)).toEqual([]);
  });

  it('renders no NATS identity where spec.nats names none', () => {
    const bare = planCluster(testCluster('site-b', 'telephony'), [], settings);
    const env = bare.objects.flatMap((o) => (o.kind === 'Deployment' ? ((o as Deployment).spec?.template.spec?.containers.flatMap((c) => c.env ?? []) ?? []) : []));
    expect(env.filter((e) => e.name.startsWith('HUDDLE_NATS_'))).toEqual([]);
  });
});
