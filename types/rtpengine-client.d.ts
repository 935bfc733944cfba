/**
 * Types for rtpengine-client 0.4.12 (the package ships none). Only the UDP Client and the ng
 * commands the media controller uses are declared. Values are bencoded: strings, integers,
 * lists and dictionaries (binary `blob` values get corrupted by the package: use `file`).
 */
declare module 'rtpengine-client' {
  import { EventEmitter } from 'node:events';

  export type NgValue = string | number | NgValue[] | { [key: string]: NgValue };
  export type NgParams = Record<string, NgValue>;

  export interface NgResponse {
    result: string;
    'error-reason'?: string;
    warning?: string;
    sdp?: string;
    [key: string]: unknown;
  }

  export interface ClientOptions {
    localPort?: number;
    localAddress?: string;
    /** ms; a command without a reply by then rejects with RtpEngineError "rtpengine timeout ...". */
    timeout?: number;
    /** Reject (with the error reason string) instead of resolving result "error". */
    rejectOnError?: boolean;
  }

  type Command = (port: number, host: string, params?: NgParams) => Promise<NgResponse>;

  export class Client extends EventEmitter {
    constructor(opts?: ClientOptions);
    ping: Command;
    offer: Command;
    answer: Command;
    delete: Command;
    query: Command;
    list: Command;
    statistics: Command;
    blockMedia: Command;
    unblockMedia: Command;
    silenceMedia: Command;
    unsilenceMedia: Command;
    playMedia: Command;
    stopMedia: Command;
    close(): void;
  }

  export class RtpEngineError extends Error {}
}
