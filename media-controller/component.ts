import type { ComponentFactory } from '../common/process/component.js';

// PLACEHOLDER: replaced by the component's implementation.
export const startMediaController: ComponentFactory = async (ctx) => {
  ctx.log.info('media-controller placeholder started');
  return { name: 'media-controller', stop: async () => undefined };
};
