import type { ComponentFactory } from '../common/process/component.js';

// PLACEHOLDER: replaced by the component's implementation.
export const startSignaling: ComponentFactory = async (ctx) => {
  ctx.log.info('signaling placeholder started');
  return { name: 'signaling', stop: async () => undefined };
};
