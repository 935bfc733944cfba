import type { ComponentFactory } from '../../common/process/component.js';

// PLACEHOLDER: replaced by the component's implementation.
export const startGateway: ComponentFactory = async (ctx) => {
  ctx.log.info('tlib-gateway placeholder started');
  return { name: 'tlib-gateway', stop: async () => undefined };
};
