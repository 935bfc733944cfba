/**
 * The bridges of this site in the huddle-media JetStream KV bucket, one key per bridge, so that
 * another media-controller can adopt a bridge whose instance died (bridge.adopt).
 */
import type { KV } from '@nats-io/kv';
import { decodeJson, encodeJson } from '../common/nats/codec.js';
import { MediaKeys } from '../common/nats/subjects.js';
import type { BridgeStore, StoredBridge } from './controller.js';

export function kvBridgeStore(kv: KV, location: string): BridgeStore {
  return {
    save: async (bridgeId, bridge) => {
      await kv.put(MediaKeys.bridge(location, bridgeId), encodeJson(bridge));
    },
    load: async (bridgeId) => {
      const entry = await kv.get(MediaKeys.bridge(location, bridgeId));
      // Written only by media-controllers of this site, in this shape.
      return entry?.operation === 'PUT' ? (decodeJson(entry.value) as StoredBridge) : undefined;
    },
    remove: async (bridgeId) => {
      await kv.delete(MediaKeys.bridge(location, bridgeId));
    },
  };
}
