/**
 * A Kubernetes API server emulator over node:http, faithful enough for @kubernetes/client-node
 * and the operator: discovery, list/watch with resourceVersion (replay from a bounded event log,
 * 410 Expired once compacted), 409 on a stale resourceVersion and on create of an existing name,
 * the status subresource, generation bumped on spec changes only, finalizers -> deletionTimestamp,
 * garbage collection of owned objects, CRD schema validation with defaults and pruning (from
 * the generated CRD YAML, CEL rules included), and fault injection.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { evalCel, parseCel } from './cel.js';

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  ownerReferences?: { uid: string }[];
  [k: string]: unknown;
}
export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: unknown;
  status?: unknown;
  [k: string]: unknown;
}

interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  statusSubresource: boolean;
  validate?: (obj: StoredObject) => string[];
}

interface WatchEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  plural: string;
  groupVersion: string;
  object: StoredObject;
}

interface Watcher {
  res: http.ServerResponse;
  type: ResourceType;
  namespace?: string;
  selector: [string, string][];
}

export interface Fault {
  method?: string;
  path?: RegExp;
  status: number;
  times: number;
}

const BUILTIN: Omit<ResourceType, 'statusSubresource'>[] = [
  { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true },
  { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true },
  { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true },
  { group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets', namespaced: true },
  { group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', namespaced: true },
  { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', plural: 'networkpolicies', namespaced: true },
  { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true },
  { group: 'monitoring.coreos.com', version: 'v1', kind: 'ServiceMonitor', plural: 'servicemonitors', namespaced: true },
];
const WITH_STATUS = new Set(['Deployment', 'StatefulSet', 'PodDisruptionBudget', 'Service']);
const EVENT_LOG_SIZE = 500;

function groupVersion(t: { group: string; version: string }): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes: { field: string; message: string }[] = [],
  ) {
    super(message);
  }
}

function statusBody(err: HttpError) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: err.reason,
    code: err.code,
    ...(err.causes.length > 0 ? { details: { causes: err.causes.map((c) => ({ reason: 'FieldValueInvalid', ...c })) } } : {}),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

type Schema = Record<string, unknown>;

/** Structural pruning: fields the schema does not declare are dropped, as the real server does. */
function prune(value: unknown, schema: Schema | undefined): void {
  if (!schema || schema['x-kubernetes-preserve-unknown-fields'] === true) return;
  if (Array.isArray(value)) {
    for (const v of value) prune(v, schema.items as Schema | undefined);
    return;
  }
  if (!isObject(value)) return;
  const props = schema.properties as Record<string, Schema> | undefined;
  const additional = schema.additionalProperties as Schema | undefined;
  for (const key of Object.keys(value)) {
    if (props) {
      if (props[key]) prune(value[key], props[key]);
      else delete value[key];
    } else if (additional) prune(value[key], additional);
  }
}

/** Every x-kubernetes-validations rule with the path of the node it sits on. */
function collectRules(schema: Schema, at: string[], out: { at: string[]; rule: ReturnType<typeof parseCel>; message: string; fieldPath?: string }[]) {
  for (const r of (schema['x-kubernetes-validations'] as { rule: string; message: string; fieldPath?: string }[] | undefined) ?? [])
    out.push({ at, rule: parseCel(r.rule), message: r.message, fieldPath: r.fieldPath });
  for (const [k, v] of Object.entries((schema.properties as Record<string, Schema> | undefined) ?? {})) collectRules(v, [...at, k], out);
  return out;
}

function crdValidator(schema: Schema, kind: string): (obj: StoredObject) => string[] {
  const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false, validateFormats: false });
  const validate: ValidateFunction = ajv.compile({ ...schema, properties: { ...(schema.properties as object), metadata: { type: 'object' } } });
  const rules = collectRules(schema, [], []);
  return (obj) => {
    prune(obj, schema);
    if (!validate(obj)) {
      return (validate.errors ?? []).map((e) => {
        const field = e.instancePath.split('/').filter(Boolean).join('.');
        const extra = e.keyword === 'required' ? `.${(e.params as { missingProperty: string }).missingProperty}` : '';
        const what = e.keyword === 'enum' ? `Unsupported value: supported values: ${(e.params as { allowedValues: string[] }).allowedValues.map((v) => `"${v}"`).join(', ')}` : (e.message ?? e.keyword);
        return `${field}${extra}: ${e.keyword === 'required' ? 'Required value' : what}`;
      });
    }
    const problems: string[] = [];
    for (const r of rules) {
      let self: unknown = obj;
      for (const p of r.at) self = isObject(self) ? self[p] : undefined;
      if (self === undefined) continue;
      let ok: unknown;
      try {
        ok = evalCel(r.rule, self);
      } catch (err) {
        ok = `${kind}: ${(err as Error).message}`;
      }
      if (ok !== true) {
        const field = [...r.at, ...(r.fieldPath ?? '').replace(/\['([^']+)'\]/g, '.$1').split('.').filter(Boolean)].join('.');
        problems.push(`${field}: Invalid value: ${r.message}`);
      }
    }
    return problems;
  };
}

function loadCrds(dir: string): ResourceType[] {
  return ['sipclusters.yaml', 'sipdns.yaml'].map((file) => {
    const crd = parse(readFileSync(path.join(dir, file), 'utf8')) as {
      spec: { group: string; names: { kind: string; plural: string }; scope: string; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
    };
    const v = crd.spec.versions[0];
    if (!v) throw new Error(`${file}: no version`);
    return {
      group: crd.spec.group,
      version: v.name,
      kind: crd.spec.names.kind,
      plural: crd.spec.names.plural,
      namespaced: crd.spec.scope === 'Namespaced',
      statusSubresource: true,
      validate: crdValidator(v.schema.openAPIV3Schema, crd.spec.names.kind),
    };
  });
}

function specOf(obj: StoredObject): string {
  const { metadata: _m, status: _s, ...rest } = obj;
  return JSON.stringify(rest);
}

export class FakeApiServer {
  readonly types: ResourceType[];
  private readonly server: http.Server;
  private readonly objects = new Map<string, StoredObject>();
  private readonly log: WatchEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly faults: Fault[] = [];
  private rv = 1;
  /** Oldest resourceVersion a watch may resume from; older ones get 410 Gone. */
  private compactedRv = 0;
  /** Requests seen, for assertions ("no PATCH of the Deployment"). */
  readonly requests: { method: string; path: string }[] = [];
  url = '';

  /** `without`: built-in kinds this server does not serve (a cluster without the prometheus-operator CRDs). */
  constructor(opts: { crdDir?: string; without?: string[] } = {}) {
    const crdDir = opts.crdDir ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../crds');
    const builtin = BUILTIN.filter((t) => !opts.without?.includes(t.kind));
    this.types = [...builtin.map((t) => ({ ...t, statusSubresource: WITH_STATUS.has(t.kind) })), ...loadCrds(crdDir)];
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.dropWatches();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  kubeConfig(namespace = 'default'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'emulator', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'operator', token: 'test' }],
      contexts: [{ name: 'emulator', cluster: 'emulator', user: 'operator', namespace }],
      currentContext: 'emulator',
    });
    return kc;
  }

  /** `kubectl patch --type merge` over HTTP, as a person editing a resource would. */
  async mergePatch(path: string, body: object): Promise<StoredObject> {
    const res = await fetch(`${this.url}${path}`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify(body) });
    const json = (await res.json()) as StoredObject & { message?: string };
    if (!res.ok) throw new Error(`PATCH ${path}: ${res.status} ${json.message ?? ''}`);
    return json;
  }

  /** The next `times` requests matching method/path answer `status`. */
  injectFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  /** Watches currently open. */
  get watchCount(): number {
    return this.watchers.size;
  }

  /** Ends every open watch, as a load balancer or API server restart would. */
  dropWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  /**
   * Forgets the event log and ends open watches cleanly (as a watch timeout does): a watch resuming
   * from any resourceVersion seen so far gets 410 Gone and the client must re-list.
   */
  compact(): void {
    this.rv += 1;
    this.compactedRv = this.rv;
    this.log.length = 0;
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): StoredObject | undefined {
    const t = this.typeByKind(apiVersion, kind);
    const o = this.objects.get(this.key(t, namespace, name));
    return o ? structuredClone(o) : undefined;
  }

  list(apiVersion: string, kind: string, namespace?: string): StoredObject[] {
    const t = this.typeByKind(apiVersion, kind);
    return [...this.objects.values()].filter((o) => o.apiVersion === groupVersion(t) && o.kind === t.kind && (!namespace || o.metadata.namespace === namespace)).map((o) => structuredClone(o));
  }

  /** Plays the Deployment / StatefulSet controllers: every workload reports all replicas ready. */
  markWorkloadsReady(namespace: string): void {
    for (const kind of ['Deployment', 'StatefulSet']) {
      for (const o of this.list('apps/v1', kind, namespace)) {
        const replicas = (o.spec as { replicas?: number }).replicas ?? 1;
        const status = { observedGeneration: o.metadata.generation, replicas, readyReplicas: replicas, updatedReplicas: replicas, availableReplicas: replicas };
        if (JSON.stringify(o.status) === JSON.stringify(status)) continue;
        this.write(this.typeByKind('apps/v1', kind), { ...o, status }, 'MODIFIED');
      }
    }
  }

  private typeByKind(apiVersion: string, kind: string): ResourceType {
    const t = this.types.find((x) => groupVersion(x) === apiVersion && x.kind === kind);
    if (!t) throw new Error(`emulator: unknown ${apiVersion} ${kind}`);
    return t;
  }

  private key(t: ResourceType, namespace: string | undefined, name: string): string {
    return `${groupVersion(t)}/${t.plural}/${namespace ?? ''}/${name}`;
  }

  private write(t: ResourceType, obj: StoredObject, type: WatchEvent['type']): StoredObject {
    this.rv += 1;
    obj.metadata.resourceVersion = String(this.rv);
    const k = this.key(t, obj.metadata.namespace, obj.metadata.name);
    if (type === 'DELETED') this.objects.delete(k);
    else this.objects.set(k, obj);
    const event: WatchEvent = { rv: this.rv, type, plural: t.plural, groupVersion: groupVersion(t), object: structuredClone(obj) };
    this.log.push(event);
    if (this.log.length > EVENT_LOG_SIZE) this.compactedRv = this.log.shift()?.rv ?? this.compactedRv;
    for (const w of this.watchers) this.send(w, event);
    if (type === 'DELETED') this.collectGarbage(obj.metadata.uid);
    return obj;
  }

  /** Background cascading deletion of what the deleted object owned. */
  private collectGarbage(ownerUid: string | undefined): void {
    if (!ownerUid) return;
    for (const o of [...this.objects.values()]) {
      if (o.metadata.ownerReferences?.some((r) => r.uid === ownerUid)) this.remove(this.typeByKind(o.apiVersion, o.kind), o);
    }
  }

  private remove(t: ResourceType, current: StoredObject): StoredObject {
    if ((current.metadata.finalizers ?? []).length > 0) {
      if (current.metadata.deletionTimestamp) return current;
      return this.write(t, { ...structuredClone(current), metadata: { ...current.metadata, deletionTimestamp: new Date().toISOString() } }, 'MODIFIED');
    }
    return this.write(t, structuredClone(current), 'DELETED');
  }

  private matches(w: Watcher, e: WatchEvent): boolean {
    if (e.plural !== w.type.plural || e.groupVersion !== groupVersion(w.type)) return false;
    if (w.namespace && e.object.metadata.namespace !== w.namespace) return false;
    return w.selector.every(([k, v]) => e.object.metadata.labels?.[k] === v);
  }

  private send(w: Watcher, e: WatchEvent): void {
    if (this.matches(w, e)) w.res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const method = req.method ?? 'GET';
      this.requests.push({ method, path: url.pathname });
      try {
        const fault = this.faults.find((f) => (!f.method || f.method === method) && (!f.path || f.path.test(url.pathname)) && f.times > 0);
        if (fault) {
          fault.times -= 1;
          throw new HttpError(fault.status, 'InternalError', `injected fault ${fault.status}`);
        }
        const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
        const result = this.route(method, url, body, req.headers['content-type'] ?? '', res);
        if (result === undefined) return;
        res.writeHead(result.code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(result.body));
      } catch (err) {
        const e = err instanceof HttpError ? err : new HttpError(500, 'InternalError', (err as Error).message);
        res.writeHead(e.code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(statusBody(e)));
      }
    });
  }

  private route(method: string, url: URL, body: unknown, contentType: string, res: http.ServerResponse): { code: number; body: unknown } | undefined {
    const parts = url.pathname.split('/').filter(Boolean);
    // Discovery: /api/v1, /apis/<group>/<version>
    const gvLen = parts[0] === 'api' ? 2 : 3;
    const gv = parts[0] === 'api' ? { group: '', version: parts[1] ?? '' } : { group: parts[1] ?? '', version: parts[2] ?? '' };
    const rest = parts.slice(gvLen);
    if (rest.length === 0 && method === 'GET') {
      const resources = this.types.filter((t) => t.group === gv.group && t.version === gv.version);
      if (resources.length === 0) throw new HttpError(404, 'NotFound', `no API group ${gv.group}/${gv.version}`);
      return {
        code: 200,
        body: {
          kind: 'APIResourceList',
          apiVersion: 'v1',
          groupVersion: groupVersion(gv),
          resources: resources.flatMap((t) => [
            { name: t.plural, singularName: t.kind.toLowerCase(), namespaced: t.namespaced, kind: t.kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
            ...(t.statusSubresource ? [{ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] }] : []),
          ]),
        },
      };
    }
    let namespace: string | undefined;
    let r = rest;
    if (r[0] === 'namespaces' && r.length >= 3) {
      namespace = r[1];
      r = r.slice(2);
    }
    const [plural, name, sub] = r;
    const t = this.types.find((x) => x.group === gv.group && x.version === gv.version && x.plural === plural);
    if (!t) throw new HttpError(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    if (!name) {
      if (method === 'GET') return url.searchParams.get('watch') === 'true' ? this.watch(t, namespace, url, res) : this.listResponse(t, namespace, url);
      if (method === 'POST') return { code: 201, body: this.create(t, namespace, body as StoredObject) };
      throw new HttpError(405, 'MethodNotAllowed', `${method} on a collection`);
    }
    if (sub !== undefined && (sub !== 'status' || !t.statusSubresource)) throw new HttpError(404, 'NotFound', `no subresource ${sub}`);
    const k = this.key(t, namespace, name);
    const current = this.objects.get(k);
    if (!current) throw new HttpError(404, 'NotFound', `${t.plural}.${t.group || 'core'} "${name}" not found`);
    switch (method) {
      case 'GET':
        return { code: 200, body: current };
      case 'DELETE': {
        const uid = (body as { preconditions?: { uid?: string } } | undefined)?.preconditions?.uid;
        if (uid !== undefined && uid !== current.metadata.uid)
          throw new HttpError(409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata.uid ?? ''}`);
        return { code: 200, body: this.remove(t, current) };
      }
      case 'PUT':
        return { code: 200, body: this.update(t, current, body as StoredObject, sub === 'status') };
      case 'PATCH': {
        if (!/merge-patch\+json|strategic-merge-patch\+json/.test(contentType)) throw new HttpError(415, 'UnsupportedMediaType', `unsupported patch type ${contentType}`);
        const patched = applyMergePatch(current, body) as StoredObject;
        const rv = (body as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
        patched.metadata.resourceVersion = rv ?? current.metadata.resourceVersion;
        return { code: 200, body: this.update(t, current, patched, sub === 'status') };
      }
      default:
        throw new HttpError(405, 'MethodNotAllowed', method);
    }
  }

  private listResponse(t: ResourceType, namespace: string | undefined, url: URL) {
    const selector = parseSelector(url.searchParams.get('labelSelector'));
    const items = [...this.objects.values()].filter(
      (o) => o.kind === t.kind && o.apiVersion === groupVersion(t) && (!namespace || o.metadata.namespace === namespace) && selector.every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    return { code: 200, body: { kind: `${t.kind}List`, apiVersion: groupVersion(t), metadata: { resourceVersion: String(this.rv) }, items } };
  }

  private watch(t: ResourceType, namespace: string | undefined, url: URL, res: http.ServerResponse): undefined {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // client-node waits for the response headers before it counts the watch as started.
    res.flushHeaders();
    if (from > 0 && from < this.compactedRv) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${from} (${this.compactedRv})` } })}\n`);
      return undefined;
    }
    const w: Watcher = { res, type: t, namespace, selector: parseSelector(url.searchParams.get('labelSelector')) };
    if (from > 0) for (const e of this.log) if (e.rv > from) this.send(w, e);
    if (from === 0) {
      for (const o of this.listResponse(t, namespace, url).body.items)
        this.send(w, { rv: Number(o.metadata.resourceVersion), type: 'ADDED', plural: t.plural, groupVersion: groupVersion(t), object: o });
    }
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    if (timeout > 0) setTimeout(() => res.end(), timeout * 1000).unref();
    return undefined;
  }

  private validated(t: ResourceType, obj: StoredObject): StoredObject {
    const problems = t.validate?.(obj) ?? [];
    if (problems.length > 0) {
      const causes = problems.map((p) => ({ field: p.slice(0, p.indexOf(':')), message: p.slice(p.indexOf(':') + 2) }));
      throw new HttpError(422, 'Invalid', `${t.kind}.${t.group} "${obj.metadata.name}" is invalid: ${problems.join(', ')}`, causes);
    }
    return obj;
  }

  private create(t: ResourceType, namespace: string | undefined, body: StoredObject): StoredObject {
    const obj = structuredClone(body);
    if (!obj.metadata?.name) throw new HttpError(422, 'Invalid', 'metadata.name: Required value');
    obj.apiVersion = groupVersion(t);
    obj.kind = t.kind;
    if (t.namespaced) obj.metadata.namespace = namespace ?? obj.metadata.namespace ?? 'default';
    if (this.objects.has(this.key(t, obj.metadata.namespace, obj.metadata.name)))
      throw new HttpError(409, 'AlreadyExists', `${t.plural}.${t.group || 'core'} "${obj.metadata.name}" already exists`);
    if (t.statusSubresource) delete obj.status;
    obj.metadata = { ...obj.metadata, uid: randomUUID(), generation: 1, creationTimestamp: new Date().toISOString() };
    delete obj.metadata.deletionTimestamp;
    return this.write(t, this.validated(t, obj), 'ADDED');
  }

  private update(t: ResourceType, current: StoredObject, body: StoredObject, statusOnly: boolean): StoredObject {
    const rv = body.metadata?.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion)
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${t.plural}.${t.group || 'core'} "${current.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`);
    let next: StoredObject;
    if (statusOnly) next = { ...structuredClone(current), status: structuredClone(body.status) };
    else {
      next = structuredClone(body);
      next.apiVersion = current.apiVersion;
      next.kind = current.kind;
      // Identity and bookkeeping stay the server's; deletionTimestamp cannot be set or cleared by a write.
      next.metadata = {
        ...next.metadata,
        name: current.metadata.name,
        namespace: current.metadata.namespace,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        generation: current.metadata.generation,
        deletionTimestamp: current.metadata.deletionTimestamp,
      };
      if (next.metadata.deletionTimestamp === undefined) delete next.metadata.deletionTimestamp;
      if (t.statusSubresource) next.status = structuredClone(current.status);
      if (next.status === undefined) delete next.status;
      this.validated(t, next);
      if (specOf(next) !== specOf(current)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    }
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) return this.write(t, next, 'DELETED');
    if (JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: '' } }) === JSON.stringify({ ...current, metadata: { ...current.metadata, resourceVersion: '' } }))
      return current;
    return this.write(t, next, 'MODIFIED');
  }
}

function parseSelector(value: string | null): [string, string][] {
  if (!value) return [];
  return value.split(',').map((pair) => {
    const [k, v] = pair.split('=');
    return [k ?? '', v ?? ''];
  });
}
