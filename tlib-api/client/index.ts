export { TlibClient, TlibConnectError, TlibError } from './client.js';
export type { CallParams, DialParams, DNParams, KeyValue, PartyParams, QueryParams, TlibClientEvents, TlibClientOptions } from './client.js';
export type { TEvent, TRequest } from '../../common/tlib/messages.js';
