/** JSON payloads on NATS, with the same explicit failure everywhere. */
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
