import type { ComponentFactory } from '../../common/process/component.js';
import { jwtKeysFromEnv } from './auth.js';
import { createGateway } from './gateway.js';

/** The T-Library gateway as a component: listens on spec.gateway.listen; JWT keys and the token file come from the environment. */
export const startGateway: ComponentFactory = (ctx) =>
  createGateway(ctx, {
    jwtKeys: jwtKeysFromEnv(process.env),
    ...(process.env.HUDDLE_GATEWAY_TOKENS_FILE ? { tokenFile: process.env.HUDDLE_GATEWAY_TOKENS_FILE } : {}),
  });
