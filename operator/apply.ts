/**
 * Idempotent apply: create what is missing; for what exists, send a JSON merge patch holding only
 * the fields that differ from the desired object, or nothing at all. Fields the API server
 * defaults (and fields others own) are left alone, so a second apply is a no-op and drift in
 * a field we own is repaired.
 */
import { PatchStrategy, type KubernetesObject, type KubernetesObjectApi } from '@kubernetes/client-node';
// Not re-exported by the package index; the same serializer KubernetesObjectApi itself uses.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { FIELD_MANAGER } from './resources.js';

export type ApplyResult = 'created' | 'patched' | 'unchanged';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** True when every field of `desired` is present with the same value in `live` (arrays element-wise). */
export function covers(live: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => covers(live[i], d));
  if (isObject(desired)) return isObject(live) && Object.entries(desired).every(([k, v]) => v === undefined || covers(live[k], v));
  if (live instanceof Date && typeof desired === 'string') return live.toISOString() === new Date(desired).toISOString();
  return live === desired;
}

/** The smallest merge patch (RFC 7386) that makes `live` cover `desired`; undefined when it already does. */
export function mergePatchFor(live: unknown, desired: unknown): Json | undefined {
  if (covers(live, desired)) return undefined;
  if (isObject(desired) && isObject(live)) {
    const patch: Record<string, Json> = {};
    for (const [k, v] of Object.entries(desired)) {
      if (v === undefined) continue;
      const sub = mergePatchFor(live[k], v);
      if (sub !== undefined) patch[k] = sub;
    }
    return patch;
  }
  return structuredClone(desired) as Json;
}

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** "HTTP 409 Conflict: <the API server's message>" instead of client-node's dump of headers and body. */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  if (code === undefined) return (err as Error)?.message ?? String(err);
  const body = (err as { body?: unknown }).body;
  let message: string | undefined;
  try {
    const parsed: unknown = typeof body === 'string' ? JSON.parse(body) : body;
    message = (parsed as { message?: string } | undefined)?.message;
  } catch {
    message = typeof body === 'string' ? body : undefined;
  }
  return `HTTP ${code}${message ? `: ${message}` : ''}`;
}

/** client-node's model name for a kind ("networking.k8s.io/v1" NetworkPolicy: V1NetworkPolicy). */
function modelType(obj: { apiVersion: string; kind: string }): string {
  const version = obj.apiVersion.slice(obj.apiVersion.lastIndexOf('/') + 1);
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
}

/**
 * KubernetesObjectApi writes bodies through client-node's models, which rename some JSON fields
 * (a NetworkPolicy rule's `from` is `_from`): plain JSON would lose them on the way out (an ingress
 * rule without `from` admits everyone), and reads come back renamed. Desired objects and patches are
 * JSON as the API server speaks it, so they cross this boundary converted, both ways.
 */
const toModel = <T extends KubernetesObject>(json: T, type: string): T => ObjectSerializer.deserialize(json, type) as T;
const toJson = (model: KubernetesObject, type: string): KubernetesObject => ObjectSerializer.serialize(model, type) as KubernetesObject;

export async function applyObject(api: KubernetesObjectApi, desired: KubernetesObject): Promise<ApplyResult> {
  const header = { apiVersion: desired.apiVersion ?? 'v1', kind: desired.kind ?? '', metadata: { name: desired.metadata?.name ?? '', namespace: desired.metadata?.namespace ?? '' } };
  const type = modelType(header);
  let live: KubernetesObject;
  try {
    live = toJson(await api.read(header), type);
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
    await api.create(toModel(structuredClone(desired), type), undefined, undefined, FIELD_MANAGER);
    return 'created';
  }
  const patch = mergePatchFor(live, desired);
  if (patch === undefined) return 'unchanged';
  await api.patch(toModel({ ...(patch as object), ...header } as KubernetesObject, type), undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch);
  return 'patched';
}
