/**
 * What a component (signaling, media-controller, T-Library gateway) gets to run with, whether it
 * runs alone in a pod (common/process/run-component.ts) or beside the others under `npm start`
 * (bin/start.ts).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { LiveConfig } from '../nats/config-kv.js';
import type { ReadinessCheck } from './http.js';
import type { Component } from './lifecycle.js';

export interface ComponentContext {
  /** Cluster options and DNs, kept current from the config bucket. Read at the moment of use. */
  config: LiveConfig;
  /** Directory music option values are resolved against (see resolveMusic). */
  musicRoot: string;
  nc: NatsConnection;
  registry: Registry;
  log: Logger;
  addReadiness(name: string, check: ReadinessCheck): void;
  /** rtpengine ng addresses for media-controller (embedded or from spec.media.rtpengine). */
  rtpengines: string[];
  /** Unique name of this process instance (pod name or host-pid). */
  instance: string;
}

export type ComponentFactory = (ctx: ComponentContext) => Promise<Component & { endpoints?: string[] }>;
