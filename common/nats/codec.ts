/** JSON payloads on NATS, with the same explicit failure everywhere. */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Static, TSchema } from '@sinclair/typebox';
import type { Checker } from '../config/check.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson(data: Uint8Array): unknown {
  const text = decoder.decode(data);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`not JSON: ${text.slice(0, 80)}`);
  }
}

/** An event payload checked against its contract schema; throws naming what is wrong. */
export function decodeChecked<T extends TSchema>(data: Uint8Array, check: Checker<T>): Static<T> {
  const value = decodeJson(data);
  if (!check(value)) throw new Error(`does not match the contract: ${check.problem()}`);
  return value;
}

/**
 * Subscribes to `subject`, handing `onMessage` each payload that matches its contract; one that
 * does not goes to `onBad` (or is dropped), so a stranger's or an old version's message never reaches a handler.
 */
export function subscribeChecked<T extends TSchema>(
  nc: NatsConnection,
  subject: string,
  check: Checker<T>,
  onMessage: (value: Static<T>) => void,
  opts: { queue?: string; onBad?: (err: Error, subject: string) => void } = {},
): Subscription {
  return nc.subscribe(subject, {
    ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
    callback: (err, msg) => {
      if (err) return;
      let value: Static<T>;
      try {
        value = decodeChecked(msg.data, check);
      } catch (e) {
        opts.onBad?.(e as Error, msg.subject);
        return;
      }
      onMessage(value);
    },
  });
}
