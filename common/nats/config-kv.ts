/**
 * Configuration in a JetStream KV bucket. The launcher (from the local file) or the operator (from
 * the SipCluster / SipDN resources) writes it; running processes watch it, so an option change
 * reaches them without a restart.
 */
import { EventEmitter } from 'node:events';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { SipCluster, SipDN } from '../config/schema.js';
import { digestHa1 } from '../config/digest-verifier.js';
import { tokenVerifier } from '../config/token-verifier.js';
import { validateDocument } from '../config/validate.js';
import { openBucket, type BucketOptions } from './buckets.js';
import { ConfigKeys } from './subjects.js';
import { decodeJson, encodeJson } from './codec.js';

/** `options.replicas`: the site's bucket replicas, given by the writers (launcher, operator); readers leave it out. */
export async function openConfigBucket(nc: NatsConnection, bucket: string = ConfigKeys.defaultBucket, options: Pick<BucketOptions, 'replicas' | 'log'> = {}): Promise<KV> {
  return openBucket(nc, bucket, { history: 5, ...options });
}

/** Writes a cluster and its DNs; DNs no longer present are deleted. Unchanged values are not rewritten. */
export async function publishConfig(kv: KV, cluster: SipCluster, dns: SipDN[]): Promise<void> {
  const name = cluster.metadata.name;
  await putIfChanged(kv, ConfigKeys.cluster(name), withTokenVerifiers({ ...cluster, status: undefined }));
  const wanted = new Set<string>();
  for (const dn of dns) {
    const key = ConfigKeys.dn(name, dn.spec.number);
    wanted.add(key);
    await putIfChanged(kv, key, { ...withoutClearPassword(dn, cluster.spec.location), status: undefined });
  }
  const keys = await kv.keys(`${ConfigKeys.dnPrefix(name)}>`);
  for await (const key of keys) {
    if (!wanted.has(key)) await kv.delete(key);
  }
}

/**
 * The bucket is readable by every component: a DN's inline password is replaced by its digest HA1
 * verifiers (user = DN number, realm = the site's location), all signaling needs to check a response.
 */
function withoutClearPassword(dn: SipDN, realm: string): SipDN {
  const value = dn.spec.options.password?.value;
  if (value === undefined) return dn;
  const { value: _clear, ...password } = dn.spec.options.password!;
  const ha1 = { realm, md5: digestHa1('MD5', dn.spec.number, realm, value), sha256: digestHa1('SHA-256', dn.spec.number, realm, value) };
  return { ...dn, spec: { ...dn.spec, options: { ...dn.spec.options, password: { ...password, ha1 } } } };
}

/** Every process may read the bucket: agent tokens go there as verifiers only. */
function withTokenVerifiers(cluster: SipCluster): SipCluster {
  const gateway = cluster.spec.gateway;
  return { ...cluster, spec: { ...cluster.spec, gateway: { ...gateway, tokens: gateway.tokens.map((t) => ({ ...t, token: tokenVerifier(t.token) })) } } };
}

async function putIfChanged(kv: KV, key: string, value: unknown): Promise<void> {
  const encoded = encodeJson(value);
  const current = await kv.get(key);
  if (current && current.operation === 'PUT' && Buffer.from(current.value).equals(Buffer.from(encoded))) return;
  await kv.put(key, encoded);
}

export interface LiveConfigEvents {
  cluster: [SipCluster];
  dn: [SipDN];
  'dn-removed': [string];
}

/**
 * The current cluster and DNs of one SipCluster, kept up to date from the bucket.
 * Readers take `cluster` / `dn(number)` at the moment they need them (e.g. for the next
 * ListenDisconnect), so changes apply without restarting anything.
 */
export class LiveConfig extends EventEmitter<LiveConfigEvents> {
  private clusterDoc: SipCluster | undefined;
  private readonly dnDocs = new Map<string, SipDN>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly clusterName: string,
    private readonly log?: Logger,
  ) {
    super();
  }

  /**
   * `nc`, the connection `kv` is on: given, the watch is made again (from the last revision seen)
   * whenever the connection moves to another server or the servers of the NATS cluster change. The
   * watch's consumer lives on one server; without this, a watch whose server died would see
   * changes only after its idle-heartbeat checks notice, 10 to 60 s later.
   */
  static async watch(kv: KV, clusterName: string, log?: Logger, nc?: NatsConnection): Promise<LiveConfig> {
    const live = new LiveConfig(clusterName, log);
    let resolveReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    let lastRevision = 0;
    let stopped = false;
    let current: { stop(): void } | undefined;
    const start = async (): Promise<void> => {
      const watch = await kv.watch({ key: ConfigKeys.allOf(clusterName), ...(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {}) });
      current?.stop();
      current = watch;
      if (stopped) watch.stop();
      void (async () => {
        for await (const entry of watch) {
          // A watch made again replays from the last revision: nothing is applied twice or out of order.
          if (entry.revision <= lastRevision) continue;
          lastRevision = entry.revision;
          live.apply(entry.key, entry.operation, entry.value);
          if (entry.delta === 0) resolveReady();
        }
      })();
    };
    await start();
    live.stopWatch = () => {
      stopped = true;
      current?.stop();
    };
    if (nc) {
      let restarting: Promise<void> = Promise.resolve();
      const restart = () => {
        restarting = restarting.then(async () => {
          while (!stopped) {
            try {
              await start();
              return;
            } catch (err) {
              log?.warn({ err: (err as Error).message }, 'config watch not made again yet; retrying');
              await new Promise((r) => setTimeout(r, 1000));
            }
          }
        });
      };
      void (async () => {
        for await (const s of nc.status()) {
          if (stopped) break;
          // 'update': the cluster's servers changed (one left or came back); its list of removed
          // servers leaves out those the client was configured with, so any change counts.
          if (s.type === 'reconnect' || s.type === 'update') restart();
        }
      })();
    }
    // An empty bucket never yields an entry with delta 0: bound the wait on initial values.
    await Promise.race([ready, new Promise((r) => setTimeout(r, 500))]);
    if (!live.clusterDoc) await Promise.race([new Promise((r) => live.once('cluster', r)), new Promise((r) => setTimeout(r, 5000))]);
    if (!live.clusterDoc) throw new Error(`no configuration for SipCluster "${clusterName}" in the config bucket`);
    return live;
  }

  get cluster(): SipCluster {
    if (!this.clusterDoc) throw new Error('configuration not loaded');
    return this.clusterDoc;
  }

  dn(number: string): SipDN | undefined {
    return this.dnDocs.get(number);
  }

  get dns(): SipDN[] {
    return [...this.dnDocs.values()];
  }

  stop(): void {
    this.stopWatch?.();
  }

  private apply(key: string, operation: string, value: Uint8Array): void {
    if (operation !== 'PUT') {
      const prefix = ConfigKeys.dnPrefix(this.clusterName);
      if (key.startsWith(prefix)) {
        for (const [number] of this.dnDocs) {
          if (ConfigKeys.dn(this.clusterName, number) === key) {
            this.dnDocs.delete(number);
            this.emit('dn-removed', number);
          }
        }
      }
      return;
    }
    let doc: unknown;
    try {
      doc = decodeJson(value);
    } catch (err) {
      this.log?.error({ key, err: (err as Error).message }, 'config value is not JSON; ignored');
      return;
    }
    const kind = key === ConfigKeys.cluster(this.clusterName) ? 'SipCluster' : 'SipDN';
    const problems = validateDocument(kind, doc);
    if (problems.length > 0) {
      this.log?.error({ key, problems }, 'invalid config value ignored');
      return;
    }
    if (kind === 'SipCluster') {
      this.clusterDoc = doc as SipCluster;
      this.emit('cluster', this.clusterDoc);
    } else {
      const dn = doc as SipDN;
      this.dnDocs.set(dn.spec.number, dn);
      this.emit('dn', dn);
    }
  }
}
