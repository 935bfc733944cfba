export { CallModel } from './call-model.js';
export { counterIds } from './ids.js';
export type * from './types.js';
