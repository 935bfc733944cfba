export { CallModel } from './call-model.js';
export { counterIds, ConnIDRe } from './ids.js';
export type * from './types.js';
