/**
 * The bridges of this site in the huddle-media JetStream KV bucket, one key per bridge, so that
 * another media-controller can adopt a bridge whose instance died (bridge.adopt). Every write
 * compares the revision (see BridgeStore).
 */
import type { KV } from '@nats-io/kv';
import { decodeJson, encodeJson } from '../common/nats/codec.js';
import { MediaKeys } from '../common/nats/subjects.js';
import type { BridgeStore, StoredBridge } from './controller.js';

/** JetStream refuses a write whose expected revision is not the key's last one. */
function isConflict(err: unknown): boolean {
  return /wrong last sequence/i.test((err as Error).message ?? '');
}

export function kvBridgeStore(kv: KV, location: string): BridgeStore {
  return {
    save: async (bridgeId, bridge, revision) => {
      const key = MediaKeys.bridge(location, bridgeId);
      const value = encodeJson(bridge);
      try {
        return revision === undefined ? await kv.create(key, value) : await kv.update(key, value, revision);
      } catch (err) {
        if (isConflict(err)) return undefined;
        throw err;
      }
    },
    load: async (bridgeId) => {
      const entry = await kv.get(MediaKeys.bridge(location, bridgeId));
      // Written only by media-controllers of this site, in this shape.
      return entry?.operation === 'PUT' ? { bridge: decodeJson(entry.value) as StoredBridge, revision: entry.revision } : undefined;
    },
    remove: async (bridgeId, revision) => {
      if (revision === undefined) return true;
      try {
        await kv.delete(MediaKeys.bridge(location, bridgeId), { previousSeq: revision });
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    },
  };
}
