export { TlibClient, TlibConnectError, TlibError } from './client.js';
export type { CallParams, DialParams, DNParams, KeyValue, PartyParams, QueryParams, TlibClientEvents, TlibClientOptions } from './client.js';
export type { TEvent, TRequest } from '../../common/tlib/messages.js';
export { CdrAccessError, cdrUrl, followCdrs, listCdrs } from './cdr.js';
export type { CdrQuery } from './cdr.js';
export type { CallDetailRecord, CdrListenDisconnect, CdrParty, CdrRelease } from '../../common/nats/cdr-contract.js';
