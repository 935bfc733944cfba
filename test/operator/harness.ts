/** Shared pieces of the operator end-to-end tests: the emulator, a real nats-server, controllers. */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { createLogger } from '../../common/process/logger.js';
import { NatsConfigStore } from '../../operator/config-store.js';
import { Controller, type ControllerOptions } from '../../operator/controller.js';
import { API_GROUP } from '../../operator/resources.js';
import type { FakeApiServer } from './apiserver.js';

export const NS = 'telephony';
export const log = createLogger('operator-test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** Polls until `check` returns a value other than undefined/false; fails naming `what` at the deadline. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

export function startController(api: FakeApiServer, natsUrl: string, identity: string, extra: Partial<ControllerOptions> = {}): { controller: Controller; registry: Registry; store: NatsConfigStore } {
  const registry = new Registry();
  const store = new NatsConfigStore(log);
  const controller = new Controller({
    kubeConfig: api.kubeConfig(NS),
    settings: { defaultNatsUrl: natsUrl, serviceMonitor: true },
    configStore: store,
    registry,
    log: log.child({ identity }),
    identity,
    leaseNamespace: NS,
    leaseDurationSeconds: 5,
    leaseRetryMs: 200,
    resyncMs: 1500,
    queue: { baseDelayMs: 50, maxDelayMs: 1000, ratePerSecond: 50, burst: 50 },
    ...extra,
  });
  controller.start();
  return { controller, registry, store };
}

/** What `kubectl apply` would do with a SipCluster / SipDN manifest. */
export function crClient(api: FakeApiServer) {
  const custom = api.kubeConfig(NS).makeApiClient(CustomObjectsApi);
  const ref = (plural: 'sipclusters' | 'sipdns') => ({ group: API_GROUP, version: 'v1alpha1', namespace: NS, plural });
  return {
    create: (plural: 'sipclusters' | 'sipdns', body: object) => custom.createNamespacedCustomObject({ ...ref(plural), body }) as Promise<Record<string, unknown>>,
    get: (plural: 'sipclusters' | 'sipdns', name: string) => custom.getNamespacedCustomObject({ ...ref(plural), name }) as Promise<Record<string, unknown>>,
    patch: (plural: 'sipclusters' | 'sipdns', name: string, body: object) => api.mergePatch(`/apis/${API_GROUP}/v1alpha1/namespaces/${NS}/${plural}/${name}`, body),
    delete: (plural: 'sipclusters' | 'sipdns', name: string) => custom.deleteNamespacedCustomObject({ ...ref(plural), name }),
  };
}
