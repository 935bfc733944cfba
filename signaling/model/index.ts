export { CallModel } from './call-model.js';
export { counterIds } from './ids.js';
export type * from './types.js';
export type { GroupSnapshot, CallRecord, LegRecord } from './snapshot.js';
